#!/usr/bin/env python3
"""Independent known-answer vectors for apikey-gen (Python standard library only).

Run from this directory:  python3 gen_vectors.py
It rewrites checksum.txt and hash.txt.
"""
import hashlib
import hmac
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b62(value, width):
    out = ""
    for _ in range(width):
        out = ALPHABET[value % 62] + out
        value //= 62
    assert value == 0
    return out


# (prefix, timestamp seconds or None, body): fixed, human-chosen bodies.
CASES = [
    ("sk_live", None, "0123456789ABCDEFGHIJKLMNOPQRSTUV"),
    ("sk_live", None, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
    ("sk_test", None, "00000000000000000000000000000000"),
    ("pk", None, "aB3dE5gH7jK9mN1pQ3sT5vX7zB"),
    ("ghp", None, "Q2FuIHlvdSByZWFkIHRoaXMgYm9keQ"),
    ("sk_live", 1763870400, "Xy7Kp2Lm9Qr4St6Uv8Wx0Yz1Ab3Cd5Ef"),
    ("a", 0, "0000000000000000000000"),
    ("svc_2", 1700000000, "HelloWorld0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"),
]

PEPPER = bytes(range(32))  # 000102...1f

with open("checksum.txt", "w") as f:
    f.write("# <key> <crc32 of everything before the checksum, hex> <timestamp seconds or ->\n")
    for prefix, ts, body in CASES:
        head = prefix + "_" + ("" if ts is None else b62(ts, 6)) + body
        crc = zlib.crc32(head.encode()) & 0xFFFFFFFF
        f.write(f"{head + b62(crc, 6)} {crc:08x} {'-' if ts is None else ts}\n")

LEGACY = [
    "",
    "abc",
    "aB3dE5gH7jK9mN1pQ3sT5vX7zB9cD1eF",  # a 32-character raw token, as the original issued
]

with open("hash.txt", "w") as f:
    f.write("# pepper (hex): " + PEPPER.hex() + "\n")
    f.write("# <key> <sha256 hex> <hmac-sha256(pepper, key) hex>\n")
    keys = []
    for prefix, ts, body in CASES:
        head = prefix + "_" + ("" if ts is None else b62(ts, 6)) + body
        keys.append(head + b62(zlib.crc32(head.encode()) & 0xFFFFFFFF, 6))
    for key in LEGACY + keys:
        sha = hashlib.sha256(key.encode()).hexdigest()
        mac = hmac.new(PEPPER, key.encode(), hashlib.sha256).hexdigest()
        f.write(f"{key or '<empty>'} {sha} {mac}\n")
