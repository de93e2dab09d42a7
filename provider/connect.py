"""Choosing a backend from a URL: `http(s)://` is the HTTP API, `sqlite:///` and `postgresql://` embedded."""

from __future__ import annotations

import os

from provider.client import Client, HttpClient
from provider.errors import ConfigError
from tenancy_kinds.defaults import DEFAULT_DATABASE_URL, redact_url

DEFAULT_BACKEND = DEFAULT_DATABASE_URL  # the embedded backend on the default database
EMBEDDED_SCHEMES = ("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")


def backend_url(option: str | None) -> str:
    return option or os.environ.get("TENANCY_BACKEND") or DEFAULT_BACKEND


def connect(url: str, token: str | None = None) -> Client:
    """A client for the backend at `url`; the token (HTTP only) defaults to TENANCY_TOKEN."""
    if url.startswith(("http://", "https://")):
        token = token or os.environ.get("TENANCY_TOKEN")
        if not token:
            raise ConfigError(
                f"the backend {redact_url(url)} needs an API token: set TENANCY_TOKEN (create one with "
                "`tenancy token create --db <database url>` on the backend's machine)"
            )
        return HttpClient(url, token)
    if url.startswith(EMBEDDED_SCHEMES):
        from provider.embedded import EmbeddedClient

        return EmbeddedClient(url.replace("postgres://", "postgresql://", 1))
    raise ConfigError(
        f"unknown backend {redact_url(url)!r}: use http(s)://HOST:PORT for the HTTP API, sqlite:///PATH or "
        "postgresql://USER@HOST/DB for the embedded backend"
    )
