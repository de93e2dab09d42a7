"""API tokens: made (shown once, only their sha256 stored), revoked, and turned into the scope they grant."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, select

from tenancy_backend.db import tokens
from tenancy_backend.documents import iso, parse_iso
from tenancy_backend.errors import Invalid, NotFound, Unauthorized
from tenancy_backend.scope import Scope
from tenancy_backend.transaction import Tx

TOKEN_PREFIX = "tnc_"
# Every token `create` makes: the prefix and `secrets.token_urlsafe(32)` (43 characters, 256 bits).
TOKEN_PATTERN = "^" + TOKEN_PREFIX + "[A-Za-z0-9_-]{43}$"

_TOKEN = select(tokens).where(tokens.c.token_hash == bindparam("token_hash"))


def create(
    tx: Tx, organization: str | None, legal_representative: bool, expires_in: float | timedelta | None
) -> str:
    """A new API token, scoped to `organization` or root."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    if organization is not None:
        tx.require_organization(organization)
    expires_at = None
    if expires_in is not None:
        delta = expires_in if isinstance(expires_in, timedelta) else timedelta(seconds=float(expires_in))
        if delta <= timedelta(0):
            raise Invalid("expires_in must be positive")
        expires_at = iso(tx.now + delta)
    tx.conn.execute(
        tokens.insert().values(
            token_hash=token_hash(token),
            organization=organization,
            legal_representative=legal_representative,
            created_at=iso(tx.now),
            expires_at=expires_at,
        )
    )
    return token


def revoke(tx: Tx, token: str) -> None:
    result = tx.conn.execute(
        tokens.update()
        .where(tokens.c.token_hash == token_hash(token), tokens.c.revoked_at.is_(None))
        .values(revoked_at=iso(tx.now))
    )
    if result.rowcount == 0:
        known = tx.conn.execute(select(tokens.c.id).where(tokens.c.token_hash == token_hash(token))).first()
        if known is None:
            raise NotFound("no such token (it may have been mistyped)")


def require_given(token: str | None) -> str:
    if not token:
        raise Unauthorized("missing bearer token: send `Authorization: Bearer <token>` (tenancy token create)")
    return token


def find(tx: Tx, token: str) -> Row[Any] | None:
    return tx.conn.execute(_TOKEN, {"token_hash": token_hash(token)}).first()


def scope_of(row: Row[Any] | None, now: datetime) -> Scope:
    """The scope a token's row grants; Unauthorized when it is unknown (None), revoked or expired."""
    if row is None:
        raise Unauthorized("invalid token: it is not known to this backend")
    if row.revoked_at is not None:
        raise Unauthorized("this token was revoked; create a new one with `tenancy token create`")
    if row.expires_at is not None and parse_iso(row.expires_at) <= now:
        raise Unauthorized("this token has expired; create a new one with `tenancy token create`")
    principal = f"token:{row.id}"
    if row.organization is None:
        return Scope(None, bool(row.legal_representative), principal)
    return Scope.of_organization(
        row.organization, legal_representative=bool(row.legal_representative), principal=principal
    )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


__all__ = ["TOKEN_PATTERN", "TOKEN_PREFIX", "create", "find", "require_given", "revoke", "scope_of", "token_hash"]
