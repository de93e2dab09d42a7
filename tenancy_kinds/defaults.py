"""Defaults both halves share: where the backend keeps its data when nobody says (the embedded backend of
`tenancy plan/apply`, `tenancy serve`, `tenancy token`, the API's `TENANCY_DB`)."""

from __future__ import annotations

import re

DEFAULT_DATABASE_URL = "sqlite:///.tenancy/tenancy.db"
# Failed authentications per (client address, credential) pair per minute before the API answers 429
# (`tenancy serve --auth-failure-limit`, TENANCY_AUTH_FAILURE_LIMIT).
DEFAULT_AUTH_FAILURE_LIMIT = 30

_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@")


def redact_url(url: str) -> str:
    """A backend's or a database's URL with its password hidden (`scheme://user:***@host/...`), for every
    message and log that names it."""
    return _PASSWORD.sub(r"\1:***@", url)


__all__ = ["DEFAULT_AUTH_FAILURE_LIMIT", "DEFAULT_DATABASE_URL", "redact_url"]
