"""Fixtures of the SCIM tests: a real `tenancy serve` on SQLite and one on PostgreSQL (one each for the
whole package), and a fresh paid organization per test on either, with a token scoped to it."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests` is not a package on every path; make `tests.support` importable
    sys.path.insert(0, str(REPO))

from tests.support import Server, create_token, new_pg_database, start_server  # noqa: E402 - after the path is set

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass
class Org:
    """A paid organization on a running server, seen through SCIM with a token scoped to it."""

    server: Server
    name: str
    domain: str
    token: str
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def base(self) -> str:
        return f"{self.server.url}/scim/v2/{self.name}"

    def scim(self, method: str, path: str, body: Any = None, **headers: str) -> requests.Response:
        """A SCIM request to this organization's base URL, with its token."""
        sent = {"Authorization": f"Bearer {self.token}", "Content-Type": SCIM_JSON, **headers}
        return self.session.request(method, self.base + path, json=body, headers=sent, timeout=30)

    def v1(self, method: str, path: str, body: Any = None) -> requests.Response:
        """A /v1 request with the server's root token."""
        return self.session.request(
            method, self.server.url + path, json=body, headers=self.server.headers(), timeout=30
        )

    def user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        """Create a user over SCIM (201 asserted); its SCIM document."""
        body = {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}
        created = self.scim("POST", "/Users", body)
        assert created.status_code == 201, created.text
        return created.json()  # type: ignore[no-any-return]

    def users(self) -> dict[str, dict[str, Any]]:
        """The organization's User documents over /v1, by name."""
        listed = self.v1("GET", f"/v1/organizations/{self.name}/users?limit=1000")
        return {u["metadata"]["name"]: u for u in listed.json()["items"]}


def organization(name: str, domain: str, **spec: Any) -> dict[str, Any]:
    body = {"displayName": name.title(), "plan": "pro", "domains": [domain], **spec}
    return {"apiVersion": "tenancy/v1", "kind": "Organization", "metadata": {"name": name}, "spec": body}


def new_org(server: Server, prefix: str = "o", **spec: Any) -> Org:
    """A fresh paid organization (created over /v1) and a token scoped to it."""
    name = f"{prefix}-{secrets.token_hex(4)}"  # unique on the shared servers
    domain = f"{name}.example"
    session = requests.Session()
    created = session.post(
        server.url + "/v1/organizations", json=organization(name, domain, **spec), headers=server.headers(), timeout=30
    )
    assert created.status_code == 201, created.text
    return Org(server, name, domain, create_token(server.db_url, name), session)


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("scim") / "tenancy.db"
    with start_server(f"sqlite:///{db}", extra_args=("--auth-failure-limit", "0")) as srv:
        yield srv


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    with start_server(new_pg_database(), extra_args=("--auth-failure-limit", "0")) as srv:
        yield srv


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest) -> Server:
    """The SQLite server, then the PostgreSQL one."""
    return request.getfixturevalue("sqlite_server" if request.param == "sqlite" else "postgres_server")


@pytest.fixture
def org(server: Server) -> Org:
    """A fresh paid organization on each database."""
    return new_org(server)
