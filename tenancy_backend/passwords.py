"""Password storage: only a slow salted hash (scrypt) is kept, the clear value never is."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$key`, salt and key base64; a fresh random salt each time."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(
        ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(key)]
    )


def fingerprint(password: str, pepper: int) -> str:
    """The same for the same password within one database (its pepper as the salt), so that a password
    used in another organization can be found without keeping any password in clear. SPEC §2 asks for
    that refusal; the price is that these fingerprints, unlike the salted hashes, can be tried against a
    list of guesses all at once, each guess costing one scrypt."""
    return _derive(password, pepper.to_bytes(8, "big"), SCRYPT_N, SCRYPT_R, SCRYPT_P).hex()


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a hash made by `hash_password` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(candidate, base64.b64decode(key))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


__all__ = ["fingerprint", "hash_password", "verify_password"]
