"""`tenancy serve`, `token create|revoke` and `billing deposit` (click's runner on the backend's commands)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from provider.cli import backend
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tests.support import Server

from tests.builders import org


@pytest.fixture
def tenancy() -> click.Group:
    group = click.Group("tenancy")
    backend.register(group)
    return group


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli' / 'tenancy.db'}"


def test_token_create_prints_the_token_alone_on_stdout(tenancy: click.Group, db: str) -> None:
    result = CliRunner().invoke(tenancy, ["token", "create", "--db", db])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"tnc_[A-Za-z0-9_-]{40,}\n", result.stdout)
    assert "shown once" in result.stderr
    service = Service(db)
    assert service.authenticate(result.stdout.strip()).is_root
    service.create(Scope.root(), "Organization", None, org("acme"))
    scoped = CliRunner().invoke(
        tenancy, ["token", "create", "--organization", "acme", "--legal-representative", "--expires-in", "1h30m"],
        env={"TENANCY_DB": db},
    )
    assert scoped.exit_code == 0, scoped.output
    scope = service.authenticate(scoped.stdout.strip())
    assert scope.organization == "acme" and scope.legal_representative
    revoked = CliRunner().invoke(tenancy, ["token", "revoke", scoped.stdout.strip(), "--db", db])
    assert revoked.exit_code == 0 and revoked.stdout == ""
    with pytest.raises(Exception, match="revoked"):
        service.authenticate(scoped.stdout.strip())
    service.close()


def test_token_errors_exit_1_with_a_message(tenancy: click.Group, db: str) -> None:
    result = CliRunner().invoke(tenancy, ["token", "create", "--organization", "ghost", "--db", db])
    assert result.exit_code == 1 and "organization 'ghost' not found" in result.stderr and result.stdout == ""
    bad_url = CliRunner().invoke(tenancy, ["token", "create", "--db", "mysql://x/y"])
    assert bad_url.exit_code == 1 and "unsupported database URL" in bad_url.stderr
    bad_duration = CliRunner().invoke(tenancy, ["token", "create", "--expires-in", "soon", "--db", db])
    assert bad_duration.exit_code != 0 and "not a duration" in bad_duration.stderr


def test_billing_deposit(tenancy: click.Group, db: str) -> None:
    service = Service(db)
    service.create(Scope.root(), "Organization", None, org("acme"))
    result = CliRunner().invoke(tenancy, ["billing", "deposit", "--organization", "acme", "--amount", "50", "--db", db])
    assert result.exit_code == 0, result.output
    assert "balance 50.00 EUR" in result.stdout
    assert service.get(Scope.root(), "Organization", None, "acme")["status"]["balance"]["amount"] == "50.00"
    refused = CliRunner().invoke(
        tenancy, ["billing", "deposit", "--organization", "acme", "--amount", "-3", "--db", db]
    )
    assert refused.exit_code == 1 and "between 0.01" in refused.stderr
    service.close()


@pytest.mark.parametrize(
    ("text", "seconds"), [("3600", 3600), ("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("1h30m", 5400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert backend.parse_duration(text) == timedelta(seconds=seconds)


def test_serve_announces_itself_and_logs_requests(server: Server) -> None:
    requests.get(server.url + "/v1/prices", headers=server.headers(), timeout=10)
    output = server.output()
    assert f"Tenancy backend listening on http://127.0.0.1:{server.port} (database: {server.db_url})" in output
    assert '"GET /v1/prices HTTP/1.1" 200' in output
    assert server.token not in output


def test_serve_refuses_a_busy_port(tenancy: click.Group, db: str, server: Server) -> None:
    result = CliRunner().invoke(tenancy, ["serve", "--db", db, "--port", str(server.port)])
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{server.port}" in result.stderr
