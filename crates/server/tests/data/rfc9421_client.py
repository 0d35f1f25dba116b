"""A service signing its calls with RFC 9421 HTTP Message Signatures through the third-party
PyPI package `http-message-signatures`, as docs/api.md shows.

    python3 rfc9421_client.py BASE KEY_ID SIGNING_SECRET

Prints "all checks passed" when every check holds; fails with the first that does not.
"""

import datetime
import secrets
import sys

import requests
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

BASE, KEY_ID, SECRET = sys.argv[1:4]
TARGET = ("@method", "@authority", "@path", "@query")


class Key(HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id):
        assert key_id == KEY_ID
        return SECRET.encode()  # the signing secret's text is the HMAC key


def signed(method, path, body=b"", covered=TARGET, secret_key=None):
    headers = {"Content-Type": "application/json"} if body else {}
    request = requests.Request(method, BASE + path, data=body or None, headers=headers).prepare()
    HTTPMessageSigner(signature_algorithm=algorithms.HMAC_SHA256, key_resolver=secret_key or Key()).sign(
        request,
        key_id=KEY_ID,
        created=datetime.datetime.now(datetime.timezone.utc),
        nonce=secrets.token_urlsafe(16),
        covered_component_ids=covered,
        body=body or None,
    )
    return request


def send(request):
    with requests.Session() as session:
        return session.send(request, timeout=10)


def check(what, reply, status, **fields):
    body = reply.json()
    assert reply.status_code == status, f"{what}: {reply.status_code} {body}"
    for name, value in fields.items():
        assert body.get(name) == value, f"{what}: {name} is {body.get(name)!r}, not {value!r}"
    print("ok:", what)


body = b'{"number": 172983479832623897492387592384682937659382477}'
request = signed("POST", "/check-prime", body)
assert "content-digest" in request.headers["Signature-Input"], request.headers["Signature-Input"]
check("signed check-prime", send(request), 200, isPrime=False, verdict="composite")
check("the same request again", send(request), 401, detail="request replayed")

check("whoami", send(signed("GET", "/whoami")), 200, auth_method="signed_rfc9421", key_id=KEY_ID)

narrow = send(signed("POST", "/check-prime", body, covered=("@method",)))
check("a signature over the method only", narrow, 401,
      detail="the signature does not cover @target-uri (or @authority, @path and @query)")

tampered = signed("POST", "/check-prime", body)
tampered.body = b'{"number": 4}'
tampered.headers["Content-Length"] = str(len(tampered.body))
check("a body changed after signing", send(tampered), 401,
      detail="Content-Digest does not match the body")


class Wrong(HTTPSignatureKeyResolver):
    def resolve_private_key(self, key_id):
        return b"a secret this key never had"


check("another secret", send(signed("GET", "/whoami", secret_key=Wrong())), 401, detail="bad signature")
print("all checks passed")
