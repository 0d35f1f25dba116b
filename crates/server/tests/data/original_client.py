"""A client written the way users of the original Flask service wrote theirs.

Usage: python3 original_client.py BASE_URL API_KEY SHARED_SECRET [--signing-only]
Exits non-zero (with the failing check printed) if the server breaks any of them. With
--signing-only, only the v0 signing checks run (a second client, on another shared secret).
"""
import hashlib
import hmac
import json
import sys
import time

import requests

base, api_key, shared_secret = sys.argv[1], sys.argv[2], sys.argv[3]
signing_only = sys.argv[4:] == ["--signing-only"]


def check(name, condition, response):
    if not condition:
        print(f"FAILED {name}: {response.status_code} {response.text}")
        sys.exit(1)
    print(f"ok {name}")


def v0_checks():
    """v0 signing with hmac and hashlib, as the original's service-to-service clients did."""
    timestamp = str(int(time.time()))
    signature = hmac.new(shared_secret.encode(), (api_key + timestamp).encode(), hashlib.sha256).hexdigest()
    headers = {"X-API-Key": api_key, "X-API-Timestamp": timestamp, "X-API-Signature": signature}
    r = requests.post(f"{base}/get-current-time", headers=headers)
    check("v0 signed request", r.status_code == 200, r)
    r = requests.post(f"{base}/get-current-time", headers=headers)
    check("v0 replay is refused", r.status_code == 401, r)
    old = str(int(time.time()) - 301)
    stale = hmac.new(shared_secret.encode(), (api_key + old).encode(), hashlib.sha256).hexdigest()
    r = requests.post(f"{base}/get-current-time",
                      headers={"X-API-Key": api_key, "X-API-Timestamp": old, "X-API-Signature": stale})
    check("v0 older than 5 minutes is refused", r.status_code == 401, r)


if signing_only:
    v0_checks()
    print(json.dumps({"result": "all checks passed"}))
    sys.exit(0)

# The raw key in the Authorization header, no scheme.
r = requests.post(f"{base}/get-current-time", headers={"Authorization": api_key})
check("get-current-time", r.status_code == 200 and len(r.json()["currentTime"]) == 19, r)

# A big integer as a bare JSON number; the answer keeps every digit.
number = 172983479832623897492387592384682937659382477
r = requests.post(f"{base}/check-prime", headers={"Authorization": api_key}, json={"number": number})
check("check-prime big number", r.status_code == 200 and r.json()["number"] == number
      and r.json()["isPrime"] is False, r)
r = requests.post(f"{base}/check-prime", headers={"Authorization": api_key}, json={"number": 2**127 - 1})
check("check-prime Mersenne prime", r.status_code == 200 and r.json()["isPrime"] is True, r)

# An unknown key.
r = requests.post(f"{base}/get-current-time", headers={"Authorization": "not-a-key"})
check("unknown key is 401", r.status_code == 401, r)

v0_checks()

# Register, login, protected.
user = {"username": "pyclient", "password": "python client password"}
r = requests.post(f"{base}/register", json=user)
check("register", r.status_code == 201, r)
r = requests.post(f"{base}/login", json=user)
check("login", r.status_code == 200 and "access_token" in r.json(), r)
token = r.json()["access_token"]
r = requests.get(f"{base}/protected", headers={"Authorization": f"Bearer {token}"})
check("protected", r.status_code == 200 and r.json()["logged_in_as"] == "pyclient", r)
r = requests.post(f"{base}/login", json={"username": "pyclient", "password": "wrong password"})
check("wrong password is 401", r.status_code == 401 and r.headers["Content-Type"] == "application/problem+json", r)
print(json.dumps({"result": "all checks passed"}))
