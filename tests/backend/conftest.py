"""Fixtures of the backend tests: the service on SQLite and on PostgreSQL, and a real server on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests` is not a package; make `tests.support` importable
    sys.path.insert(0, str(REPO))

from tenancy_backend.service import Service  # noqa: E402 - after the path is set
from tests.support import Server, new_pg_database, pg_url, reset_database, start_server  # noqa: E402


@pytest.fixture(scope="session")
def _pg_service() -> Iterator[Service]:
    service = Service(pg_url())
    yield service
    service.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """An empty, migrated service on SQLite (a temporary file) or PostgreSQL (this session's database)."""
    if request.param == "sqlite":
        svc = Service(f"sqlite:///{tmp_path / 'tenancy.db'}")
        yield svc
        svc.close()
        return
    svc = request.getfixturevalue("_pg_service")
    reset_database(svc.db_url)
    yield svc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `tenancy serve` on loopback (SQLite), shared by a module's tests: use unique names."""
    db = tmp_path_factory.mktemp("server") / "tenancy.db"
    with start_server(f"sqlite:///{db}") as srv:
        yield srv


@pytest.fixture(scope="module")
def pg_server() -> Iterator[Server]:
    """A real `tenancy serve` on PostgreSQL (a database of its own)."""
    with start_server(new_pg_database()) as srv:
        yield srv
