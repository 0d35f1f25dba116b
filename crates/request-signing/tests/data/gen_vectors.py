#!/usr/bin/env python3
"""Generates v0_vectors.txt and v1_vectors.txt independently of the Rust code.

Uses only the Python standard library (hmac, hashlib, urllib.parse). Run from this directory:
    python3 gen_vectors.py
Each vector is a block of `field: value` lines; blocks are separated by a blank line.
`body_hex` is the body in hex; `canonical` is the v1 canonical string with "\\n" for newlines.
"""
import hashlib
import hmac
from urllib.parse import quote, unquote_to_bytes

UNRESERVED = "-._~"  # plus ASCII letters and digits, which quote() never encodes


def enc(b: bytes) -> str:
    return quote(b, safe=UNRESERVED)


def canonical_path(path: str) -> str:
    if path == "":
        return "/"
    return "/".join(enc(unquote_to_bytes(seg)) for seg in path.split("/"))


def canonical_query(query: str) -> str:
    pairs = []
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        dec = lambda s: unquote_to_bytes(s.replace("+", " "))
        pairs.append((dec(name), dec(value)))
    pairs.sort()
    return "&".join(enc(n) + "=" + enc(v) for n, v in pairs)


def split_target(target: str):
    target = target.split("#", 1)[0]
    if not target.startswith("/"):
        after = target.split("://", 1)[1]
        cut = min([i for i in (after.find("/"), after.find("?")) if i >= 0] or [len(after)])
        target = after[cut:]
    path, _, query = target.partition("?")
    return path, query


def canonical_v1(key_id, ts, nonce, method, target, body):
    path, query = split_target(target)
    return "\n".join([
        "v1", str(ts), nonce, method.upper(), canonical_path(path), canonical_query(query),
        hashlib.sha256(body).hexdigest(), key_id,
    ])


V1 = [
    ("get-root", "svc-orders", "s3cret-orders-0123456789abcdef", 1700000000,
     "f3a9c2e17b6d4e0a9c5b8d7e6f1a2b3c", "GET", "/", b""),
    ("post-json", "svc-orders", "s3cret-orders-0123456789abcdef", 1700000000,
     "0b9e2f6a4c8d1e3f5a7b9c0d2e4f6a8b", "POST", "/v1/orders", b'{"item":"book","qty":1}'),
    ("normalized-query", "svc-weather", "weather-secret", 1712345678,
     "nonce_with-dashes_and_underscores", "get",
     "https://api.example.com:8443/weather/caf%c3%a9?q=New+York&units=metric&b=2&a=%7e&a=1#frag",
     b""),
    ("encoded-path", "k1", "k", 1, "AAAAAAAAAAAAAAAA", "DELETE", "/files/a%2Fb/%41 c?x&&y=", b""),
    ("binary-body", "svc-binary", "\u00e9t\u00e9", 4102444800,
     "0123456789abcdef0123456789abcdef", "PUT", "/upload?name=x.bin", bytes(range(256))),
]

V0 = [
    ("tutorial", "my-api-key", "my-shared-secret", 1700000000),
    ("long-key", "ak_4eC39HqLyjWDarjtT1zdp7dc", "shared_MfKQ9r8GKYqrTwjUPD8ILPZIo2", 1712345678),
    ("zero", "k", "s", 0),
]


def main():
    with open("v1_vectors.txt", "w") as f:
        for name, key_id, secret, ts, nonce, method, target, body in V1:
            canon = canonical_v1(key_id, ts, nonce, method, target, body)
            sig = hmac.new(secret.encode(), canon.encode(), hashlib.sha256).hexdigest()
            f.write(f"name: {name}\nkey_id: {key_id}\nsecret: {secret}\ntimestamp: {ts}\n"
                    f"nonce: {nonce}\nmethod: {method}\ntarget: {target}\nbody_hex: {body.hex()}\n"
                    f"canonical: {canon.replace(chr(10), chr(92) + 'n')}\nsignature: v1={sig}\n\n")
    with open("v0_vectors.txt", "w") as f:
        for name, key, secret, ts in V0:
            sig = hmac.new(secret.encode(), (key + str(ts)).encode(), hashlib.sha256).hexdigest()
            f.write(f"name: {name}\napi_key: {key}\nsecret: {secret}\ntimestamp: {ts}\n"
                    f"signature: {sig}\n\n")


if __name__ == "__main__":
    main()
