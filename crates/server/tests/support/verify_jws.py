"""Verifies a Consentry receipt (a compact JWS, EdDSA) against a JWKS with an implementation independent
of Consentry's: Python's `cryptography`. Prints the payload as JSON on success; exits non-zero otherwise.

Usage: verify_jws.py JWS_FILE JWKS_FILE
"""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main() -> int:
    jws = open(sys.argv[1], encoding="ascii").read().strip()
    jwks = json.load(open(sys.argv[2], encoding="utf-8"))
    header_b64, payload_b64, signature_b64 = jws.split(".")
    header = json.loads(b64url(header_b64))
    if header.get("alg") != "EdDSA":
        print("unexpected alg", header.get("alg"), file=sys.stderr)
        return 2
    keys = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")]
    if len(keys) != 1 or keys[0].get("kty") != "OKP" or keys[0].get("crv") != "Ed25519":
        print("no matching Ed25519 key for kid", header.get("kid"), file=sys.stderr)
        return 3
    public = Ed25519PublicKey.from_public_bytes(b64url(keys[0]["x"]))
    try:
        public.verify(b64url(signature_b64), f"{header_b64}.{payload_b64}".encode("ascii"))
    except InvalidSignature:
        print("bad signature", file=sys.stderr)
        return 4
    print(json.dumps(json.loads(b64url(payload_b64))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
