"""The third-party side of the RFC 9421 interoperability test, with the PyPI package
`http-message-signatures` (and `requests` for the message type).

    python3 rfc9421_peer.py sign   < job.json   prints the signed request's headers as JSON
    python3 rfc9421_peer.py verify < job.json   prints the verified signature's label

A job is {"alg", "key_id", "key" (hex: the HMAC secret, or the Ed25519 seed or public key),
"method", "url", "body" (text), "headers" (for verify)}.
"""

import datetime
import json
import sys

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from http_message_signatures import HTTPMessageSigner, HTTPMessageVerifier
from http_message_signatures.algorithms import ED25519, HMAC_SHA256
from http_message_signatures.resolvers import HTTPSignatureKeyResolver


class Keys(HTTPSignatureKeyResolver):
    def __init__(self, job):
        self.job = job

    def _key(self, private):
        raw = bytes.fromhex(self.job["key"])
        if self.job["alg"] == "hmac-sha256":
            return raw
        if private:
            return Ed25519PrivateKey.from_private_bytes(raw)
        return Ed25519PublicKey.from_public_bytes(raw)

    def resolve_private_key(self, key_id):
        assert key_id == self.job["key_id"]
        return self._key(private=True)

    def resolve_public_key(self, key_id):
        assert key_id == self.job["key_id"]
        return self._key(private=False)


def main():
    mode = sys.argv[1]
    job = json.load(sys.stdin)
    algorithm = HMAC_SHA256 if job["alg"] == "hmac-sha256" else ED25519
    body = job["body"].encode()
    request = requests.Request(job["method"], job["url"], data=body or None).prepare()
    if mode == "sign":
        signer = HTTPMessageSigner(signature_algorithm=algorithm, key_resolver=Keys(job))
        signer.sign(
            request,
            key_id=job["key_id"],
            created=datetime.datetime.now(datetime.timezone.utc),
            nonce=job["nonce"],
            label="py",
            covered_component_ids=("@method", "@authority", "@path", "@query"),
            body=body,
        )
        names = ("Content-Digest", "Signature-Input", "Signature")
        print(json.dumps({n: request.headers[n] for n in names if n in request.headers}))
    elif mode == "verify":
        for name, value in job["headers"].items():
            request.headers[name] = value
        verifier = HTTPMessageVerifier(signature_algorithm=algorithm, key_resolver=Keys(job))
        results = verifier.verify(
            request,
            max_age=datetime.timedelta(minutes=5),
            require_components=("@method", "@authority", "@path", "@query"),
            body=body,
        )
        print(results[0].label)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
