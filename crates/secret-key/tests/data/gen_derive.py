#!/usr/bin/env python3
"""Independent vectors for SecretKey::derive (HKDF-SHA256, empty salt, info = purpose label,
32-byte output) and Keyring::sign (HMAC-SHA256 with the current key). Standard library only.

Run from this directory:  python3 gen_derive.py > derive.txt
"""
import hashlib
import hmac

MASTER = hashlib.sha512(b"secret-key test master").digest()


def hkdf(ikm, info, length, salt=b""):
    prk = hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


print("# master (hex): " + MASTER.hex())
print("# derive <purpose> <subkey hex>")
for purpose in ["jwt-signing", "apikey-pepper", "signing-secret-encryption", "session"]:
    print(f"derive {purpose} {hkdf(MASTER, purpose.encode(), 32).hex()}")
print("# sign <message> <HMAC-SHA256(master, message) hex>")
for message in ["session=42", "hello"]:
    print(f"sign {message} {hmac.new(MASTER, message.encode(), hashlib.sha256).hexdigest()}")
