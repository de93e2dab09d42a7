"""What the provider keeps, and what it never lets into Pulumi's state: the backend and the token."""

from __future__ import annotations

import base64

import dill
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider

from provider.client import HttpClient
from provider.connect import DEFAULT_BACKEND
from provider.pulumi.providers import TenancyProvider, client_for

TOKEN = "tnc_do-not-leak-0123456789abcdef"
BACKEND = "https://tenancy.internal.example:8443"


def _configured(config: dict[str, str]) -> TenancyProvider:
    provider = TenancyProvider("User")
    provider.configure(ConfigureRequest(Config(config, "pulumi-demo")))
    return provider


def test_a_configured_provider_pickles_without_backend_or_token():
    provider = _configured({"tenancy:backend": BACKEND, "tenancy:token": TOKEN})
    assert isinstance(provider.client, HttpClient)  # built and cached: it must not travel either
    blob = base64.b64decode(serialize_provider(provider))
    assert TOKEN.encode() not in blob and BACKEND.encode() not in blob
    restored = dill.loads(blob)
    assert restored.kind_name == "User" and restored.settings()[1] != TOKEN


def test_config_comes_first(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TENANCY_BACKEND", "http://env.example")
    monkeypatch.setenv("TENANCY_TOKEN", "env-token")
    assert _configured({"tenancy:backend": BACKEND, "tenancy:token": TOKEN}).settings() == (BACKEND, TOKEN)


def test_the_environment_is_the_fallback(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TENANCY_BACKEND", "http://env.example")
    monkeypatch.setenv("TENANCY_TOKEN", "env-token")
    assert _configured({}).settings() == ("http://env.example", "env-token")


def test_the_default_backend_is_the_clis(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TENANCY_BACKEND", raising=False)
    monkeypatch.delenv("TENANCY_TOKEN", raising=False)
    assert _configured({}).settings() == (DEFAULT_BACKEND, None)


def test_one_client_per_backend_and_token():
    first = client_for(BACKEND, TOKEN)
    assert client_for(BACKEND, TOKEN) is first
    assert client_for(BACKEND, "another") is not first


def test_a_missing_token_for_an_http_backend_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TENANCY_TOKEN", raising=False)
    from provider.errors import ConfigError

    with pytest.raises(ConfigError, match="pulumi config set --secret tenancy:token"):
        _configured({"tenancy:backend": "http://127.0.0.1:1"}).client  # noqa: B018
