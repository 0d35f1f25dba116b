"""Writes the seeds of the `jwt` target (run from fuzz/: python3 gen_jwt_seeds.py).

The tokens are HS256 JWTs with the target's fixed key, byte for byte what `Tokens::issue`
gives for their claims (jsonwebtoken's header and serde's field order): the `jwt` target
checks exactly that for every token that verifies.
"""
import base64, hashlib, hmac, json, os

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))
KEY = b"secure-api fuzz target jwt key, never used elsewhere"
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def token(claims, header='{"typ":"JWT","alg":"HS256"}', mac=hashlib.sha256):
    si = b64(header.encode()) + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
    return si + "." + b64(hmac.new(KEY, si.encode(), mac).digest())
def claims(kind, ttl, jti):
    return {"sub": "user-1", "name": "alice", "iat": 1700000000, "exp": 1700000000 + ttl, "jti": jti, "typ": kind}
acc = token(claims("access", 900, "5f2b8c0e9a7d4e13b6c1f0a2d3e4f5a6"))
ref = token(claims("refresh", 30 * 86400, "0c1d2e3f405162738495a6b7c8d9eaf0"))
good_claims = json.dumps(claims("access", 900, "x"), separators=(",", ":"))
def seed(name, *fields):
    open("jwt/seed-" + name, "w").write("\n".join(str(f) for f in fields))
seed("access-token-valid", acc, "Bearer " + acc, '{"typ":"JWT","alg":"HS256"}', good_claims, 60, 1)
seed("refresh-token-as-bearer-lowercase", ref, "bearer   " + ref + "  ", '{"alg":"HS256","kid":"k1"}', good_claims, 86400, 2)
seed("access-token-expired", acc, "Bearer " + acc, '{"alg":"HS256"}', good_claims, 900, 3)
seed("alg-none", b64(b'{"alg":"none","typ":"JWT"}') + "." + acc.split(".")[1] + ".", "Bearer", '{"alg":"none","typ":"JWT"}', good_claims, 1, 4)
seed("alg-hs512", token(claims("access", 900, "y"), '{"typ":"JWT","alg":"HS512"}', hashlib.sha512), "Basic YWxpY2U6cHc=", '{"typ":"JWT","alg":"HS512"}', good_claims, 1, 5)
seed("alg-rs256-and-garbage", "not.a.jwt", "Bearer\tnot.a.jwt", '{"alg":"RS256","typ":"JWT"}', "alice \u00e9", 0, 6)
