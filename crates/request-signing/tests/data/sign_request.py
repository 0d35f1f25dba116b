import hashlib
import hmac
import sys
import time


def sign_v1(key_id, secret, method, path, query, body):
    """Headers for scheme v1. `path` and `query` must already be canonical:
    unreserved characters literal, everything else %XX, query pairs sorted."""
    timestamp = str(int(time.time()))
    # Any 16 to 128 characters of A-Z a-z 0-9 - _, never reused (secrets.token_hex(16) is ideal).
    nonce = hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:32]
    canonical = "\n".join([
        "v1", timestamp, nonce, method.upper(), path, query,
        hashlib.sha256(body).hexdigest(), key_id,
    ])
    mac = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return {"X-API-Key": key_id, "X-API-Timestamp": timestamp,
            "X-API-Nonce": nonce, "X-API-Signature": "v1=" + mac}


def sign_v0(api_key, secret):
    """Headers for the legacy scheme v0 (covers neither method, path nor body)."""
    timestamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), (api_key + timestamp).encode(), hashlib.sha256).hexdigest()
    return {"X-API-Key": api_key, "X-API-Timestamp": timestamp, "X-API-Signature": mac}


if __name__ == "__main__":
    key_id, secret, method, path, query = sys.argv[1:6]
    body = sys.stdin.buffer.read()
    for headers in (sign_v1(key_id, secret, method, path, query, body), sign_v0(key_id, secret)):
        for name, value in headers.items():
            print(f"{name}: {value}")
        print()
