"""Defaults both halves share: where the backend keeps its data when nobody says (the embedded backend of
`tenancy plan/apply`, `tenancy serve`, `tenancy token`, the API's `TENANCY_DB`)."""

from __future__ import annotations

DEFAULT_DATABASE_URL = "sqlite:///.tenancy/tenancy.db"
# Failed authentications per (client address, credential) pair per minute before the API answers 429
# (`tenancy serve --auth-failure-limit`, TENANCY_AUTH_FAILURE_LIMIT).
DEFAULT_AUTH_FAILURE_LIMIT = 30

__all__ = ["DEFAULT_AUTH_FAILURE_LIMIT", "DEFAULT_DATABASE_URL"]
