"""Idempotency keys: a write sent again with the same key and the same request gets the first response
(for 24 hours, per principal); the same key with a different request is refused."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, select

from tenancy_backend.db import idempotency_keys
from tenancy_backend.documents import iso
from tenancy_backend.errors import Invalid
from tenancy_backend.transaction import Tx

IDEMPOTENCY_TTL = timedelta(hours=24)

# Statements of every request, built once (building one costs more than SQLite takes to run it).
_REPLAY = select(idempotency_keys.c.fingerprint, idempotency_keys.c.response).where(
    idempotency_keys.c.principal == bindparam("principal"), idempotency_keys.c.key == bindparam("key")
)
_EXPIRE_KEYS = delete(idempotency_keys).where(idempotency_keys.c.created_at < bindparam("before"))
_REMEMBER = idempotency_keys.insert()


def fingerprint(op: str, kind: str, organization: str | None, name: str | None, payload: Any) -> str:
    """A digest of the request; clear passwords are masked (the digest is stored)."""
    masked = payload if _surely_no_password(payload) else _masked(payload)
    data = json.dumps([op, kind, organization, name, masked], sort_keys=True, default=str)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def _surely_no_password(value: Any) -> bool:
    """Whether no object inside holds a `password` key, decided by one C pass over the value (masking walks
    and copies it in Python: 4 % of a bulk create's CPU); in doubt (the word appears anywhere, or orjson
    cannot encode the value), False: the value is masked, and the digest is the same either way."""
    try:
        return b'"password"' not in orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return False


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<secret>" if k == "password" else _masked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _check_key(key: str) -> None:
    if not (1 <= len(key) <= 255) or not key.isprintable() or not key.isascii():
        message = "Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID is a good choice)"
        raise Invalid(message, [{"path": "Idempotency-Key", "message": message}])


def replay(tx: Tx, key: str | None, fingerprint: str) -> Any:
    if key is None:
        return None
    _check_key(key)
    row = tx.conn.execute(_REPLAY, {"principal": tx.scope.principal, "key": key}).first()
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        message = (
            f"Idempotency-Key {key!r} was already used for a different request; "
            "use a new key for a new request"
        )
        raise Invalid(message, [{"path": "Idempotency-Key", "message": message}])
    return row.response


def remember(tx: Tx, key: str | None, fingerprint: str, response: Any) -> None:
    if key is None:
        return
    tx.conn.execute(_EXPIRE_KEYS, {"before": iso(tx.now - IDEMPOTENCY_TTL)})
    tx.conn.execute(
        _REMEMBER,
        {
            "principal": tx.scope.principal,
            "key": key,
            "fingerprint": fingerprint,
            "response": response,
            "created_at": iso(tx.now),
        },
    )


__all__ = ["IDEMPOTENCY_TTL", "fingerprint", "remember", "replay"]
