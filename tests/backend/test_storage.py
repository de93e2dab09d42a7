"""Storage: the migration matches the models, start-up races, and uniqueness across processes."""

from __future__ import annotations

import json

import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, text

from tenancy_backend.db import create_db_engine, metadata, normalise_url, redact_url
from tenancy_backend.errors import ServiceError
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tests.support import REPO, new_pg_database, start_server

from tests.builders import op, org, user
from .helpers import refused

ROOT = Scope.root()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'deep' / 'dir' / 'tenancy.db'}"
    return new_pg_database()


def test_a_database_of_the_first_schema_is_upgraded_in_place(fresh_url: str) -> None:
    from alembic import command

    from tenancy_backend.db import _alembic_config

    engine = create_db_engine(fresh_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001_initial")
    engine.dispose()
    service = Service(fresh_url)  # migrates to head on start
    try:
        service.create(ROOT, "Organization", None, org("acme"))
        created = service.create(ROOT, "User", "acme", user("acme", "ann", password="Vq8#rLm2!xTz9pKw"))
        assert created["metadata"]["name"] == "ann"
    finally:
        service.close()


def test_mailbox_domains_are_filled_in_from_revision_0002(fresh_url: str) -> None:
    """0003 writes, for the rows already there, what the table of kinds' mailbox rule says."""
    from alembic import command

    from tenancy_backend.db import _alembic_config

    engine = create_db_engine(fresh_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002_password_fingerprints")
        rows = [
            ("o", "Organization", "", "acme", None, None),
            ("u1", "User", "acme", "ann", "collaborator", "acme.example"),
            ("u2", "User", "acme", "pat", "external", "partner.example"),
            ("a1", "Alias", "acme", "info", None, "acme.example"),
        ]
        spec = "CAST(:spec AS jsonb)" if conn.dialect.name == "postgresql" else ":spec"
        for uid, kind, organization, name, role, domain in rows:
            conn.execute(
                text(
                    "INSERT INTO resources (uid, kind, organization, name, spec, labels, protected, resource_version, "
                    "created_at, updated_at, role, mail_domain) VALUES (:uid, :kind, :org, :name, "
                    + spec
                    + ", '{}', false, 1, "
                    "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', :role, :domain)"
                ),
                {
                    "uid": uid,
                    "kind": kind,
                    "org": organization,
                    "name": name,
                    "role": role,
                    "domain": domain,
                    "spec": json.dumps({"email": f"{name}@{domain}"} if kind == "User" else {}),
                },
            )
        command.upgrade(_alembic_config(conn), "head")
        found = dict(conn.execute(text("SELECT name, mailbox_domain FROM resources")).all())
        owned = dict(conn.execute(text("SELECT name, mail_domain FROM resources")).all())
    engine.dispose()
    assert found == {"acme": None, "ann": "acme.example", "pat": None, "info": None}
    assert owned == {"acme": None, "ann": "acme.example", "pat": None, "info": "acme.example"}


def _rows_of_revision_0002(conn: Any) -> None:
    """An organization and a user exactly as revision 0002 stored them (no active, no username)."""
    tables = MetaData()
    tables.reflect(conn, only=["resources", "claims"])
    resources, claims = tables.tables["resources"], tables.tables["claims"]
    common = {
        "labels": {},
        "protected": False,
        "created_at": "2026-11-01T00:00:00Z",
        "updated_at": "2026-11-01T00:00:00Z",
    }
    org_spec = {
        "displayName": "Acme",
        "parent": None,
        "type": "standard",
        "edition": "basic",
        "charset": "UTF-8",
        "logoUrl": None,
        "plan": "entry",
        "domains": ["acme.example"],
        "billingAddress": None,
    }
    user_spec = {
        "email": "Ann@acme.example",
        "displayName": "Ann",
        "role": "administrator",
        "subscription": "entry",
        "accountType": "person",
        "billingRights": False,
        "billingReminders": True,
        "passwordVersion": 1,
    }
    org_id = conn.execute(
        resources.insert().returning(resources.c.id),
        {
            "uid": "00000000-0000-4000-8000-000000000001",
            "kind": "Organization",
            "organization": "",
            "name": "acme",
            "spec": org_spec,
            "resource_version": 1,
            **common,
        },
    ).scalar_one()
    user_id = conn.execute(
        resources.insert().returning(resources.c.id),
        {
            "uid": "00000000-0000-4000-8000-000000000002",
            "kind": "User",
            "organization": "acme",
            "name": "ann",
            "spec": user_spec,
            "resource_version": 2,
            "role": "administrator",
            "tier": "entry",
            "mail_domain": "acme.example",
            **common,
        },
    ).scalar_one()
    conn.execute(
        claims.insert(),
        [
            {"namespace": "domain", "key": "acme.example", "resource_id": org_id},
            {"namespace": "org-display-name", "key": "/Acme", "resource_id": org_id},
            {"namespace": "address", "key": "ann@acme.example", "resource_id": user_id},
        ],
    )
    conn.execute(text("UPDATE counters SET value = 2 WHERE name = 'resource_version'"))


def test_users_of_revision_0002_get_active_and_their_email_as_username(fresh_url: str) -> None:
    from alembic import command

    from tenancy_kinds import USER
    from provider.diff import diff
    from tenancy_backend.db import _alembic_config

    engine = create_db_engine(fresh_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002_password_fingerprints")
        _rows_of_revision_0002(conn)
    engine.dispose()
    service = Service(fresh_url)  # migrates to head on start
    try:
        ann = service.get(ROOT, "User", "acme", "ann")
        assert ann["spec"]["active"] is True
        assert ann["spec"]["username"] == "Ann@acme.example"
        assert ann["status"] == {"mailbox": True}
        declared = user(
            "acme", "ann", email="Ann@acme.example", displayName="Ann", role="administrator", subscription="entry"
        )
        assert diff(USER, declared, ann) is None  # a manifest without username or active: nothing to change
        with refused(409, "username 'ann@ACME.example' is already used by User acme/ann", path="spec.username"):
            service.create(ROOT, "User", "acme", user("acme", "bob", username="ann@ACME.example"))
        suspended = service.update(ROOT, "User", "acme", "ann", {**ann, "spec": {**ann["spec"], "active": False}})
        assert suspended["spec"]["active"] is False
    finally:
        service.close()


def test_a_database_of_revision_0004_gets_a_change_log_starting_at_its_revision(fresh_url: str) -> None:
    """0005: nothing before it was logged, so an incremental export starts at the revision it found."""
    from alembic import command

    from tenancy_backend.db import _alembic_config

    engine = create_db_engine(fresh_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0002_password_fingerprints")
        _rows_of_revision_0002(conn)  # revision 2
        command.upgrade(_alembic_config(conn), "0004_scim_users")
    engine.dispose()
    service = Service(fresh_url)  # migrates to head on start
    try:
        snapshot = service.snapshot(ROOT)
        assert snapshot.revision == 2 and snapshot.database > 0 and len(list(snapshot.documents)) == 2
        with refused(410, "the change log starts at revision 2"):
            service.changes(ROOT, 1)
        service.delete(ROOT, "User", "acme", "ann")
        delta = service.changes(ROOT, 2)
        assert [str(k) for k in delta.deleted] == ["User acme/ann"]
        assert [d["status"]["userCount"] for d in delta.items] == [0]  # the organization counts again
    finally:
        service.close()
    engine = create_db_engine(fresh_url)
    with engine.begin() as conn:  # and back
        command.downgrade(_alembic_config(conn), "0004_scim_users")
        assert "changes" not in inspect(conn).get_table_names()
    engine.dispose()


def test_the_migration_creates_exactly_the_models(fresh_url: str) -> None:
    Service(fresh_url).close()
    engine = create_db_engine(fresh_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata) == []
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0005_changes"
        assert conn.execute(text("SELECT value FROM counters WHERE name = 'password_pepper'")).scalar_one() > 0
    engine.dispose()


def test_sqlite_is_configured_for_concurrency(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'a' / 'b.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    assert (tmp_path / "a").is_dir()


def test_sqlite_is_configured_for_a_million_resources(tmp_path: Path) -> None:
    """A page cache that holds the hot index pages, memory-mapped reads, and fewer checkpoints (SQLite's
    defaults: 2 MB, none, every 1,000 pages): benchmarks/RESULTS.md, run P."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'big.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -64 * 1024  # KiB
        assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == 256 * 1024 * 1024
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
    engine.dispose()


def test_uids_are_time_ordered_uuids_so_that_creates_append_to_their_index(fresh_url: str) -> None:
    """Version 7 (RFC 9562): unique, and in the order the resources were made once a millisecond passed;
    version 4's random uids put each create on a random page of the index (benchmarks/RESULTS.md, run R)."""
    service = Service(fresh_url)
    try:
        service.create(ROOT, "Organization", None, org("acme"))
        uids = []
        for n in range(5):
            time.sleep(0.002)
            uids.append(service.create(ROOT, "User", "acme", user("acme", f"u{n}"))["metadata"]["uid"])
        time.sleep(0.002)
        run = service.changeset(ROOT, [op("create", user("acme", f"v{n}")) for n in range(50)])
        uids += [d["metadata"]["uid"] for d in run]  # one bulk insert
    finally:
        service.close()
    parsed = [uuid.UUID(u) for u in uids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(uids)) == len(uids)
    assert uids[:5] == sorted(uids[:5]) and max(uids[:5]) < min(uids[5:])


def test_urls() -> None:
    assert normalise_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert "secret" not in redact_url("postgresql://u:secret@h/db")
    with pytest.raises(ValueError, match="unsupported database URL"):
        create_db_engine("mysql://x/y")


def test_processes_starting_at_once_migrate_safely(fresh_url: str) -> None:
    script = "import sys; from tenancy_backend.service import Service; Service(sys.argv[1]).close()"
    processes = [subprocess.Popen([sys.executable, "-c", script, fresh_url], cwd=REPO) for _ in range(4)]
    assert [p.wait(60) for p in processes] == [0, 0, 0, 0]
    engine = create_db_engine(fresh_url)
    assert "resources" in inspect(engine).get_table_names()
    engine.dispose()


def test_uniqueness_holds_between_independent_services(fresh_url: str) -> None:
    services = [Service(fresh_url) for _ in range(3)]  # three engines: as good as three processes
    services[0].create(ROOT, "Organization", None, org("acme"))

    def attempt(i: int) -> int:
        try:
            services[i % 3].create(ROOT, "User", "acme", user("acme", f"u{i}", email="same@acme.example"))
            return 201
        except ServiceError as e:
            return e.status

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(attempt, range(12)))
    assert sorted(statuses) == [201] + [409] * 11
    for service in services:
        service.close()


def test_multiple_workers_on_postgresql_keep_addresses_unique() -> None:
    url = new_pg_database().replace("postgres@", "postgres:not-a-real-secret@")  # trust auth ignores it
    with start_server(url, extra_args=("--workers", "2")) as server:
        assert "database: postgresql://postgres:***@127.0.0.1:5432/" in server.output()
        assert "not-a-real-secret" not in server.output()
        headers = server.headers()
        created = requests.post(server.url + "/v1/organizations", json=org("acme"), headers=headers, timeout=30)
        assert created.status_code == 201, created.text

        def attempt(i: int) -> int:
            body = user("acme", f"u{i}", email="same@acme.example")
            with requests.Session() as session:  # a connection each: spread over both workers
                return session.post(
                    server.url + "/v1/organizations/acme/users", json=body, headers=headers, timeout=30
                ).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(attempt, range(16)))
        assert sorted(statuses) == [201] + [409] * 15
