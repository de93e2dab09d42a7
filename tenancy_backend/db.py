"""SQLAlchemy models and engine for the tenancy backend (SQLite embedded, PostgreSQL in production).

Storage is one `resources` table for every kind (the spec as JSON, plus a few denormalised columns the
rules and statuses query), a `claims` table whose UNIQUE(namespace, key) makes backend-wide uniqueness
(domains, addresses, one quota per domain, sibling display names) hold across server processes, a `refs`
table indexing who names whom, and tables for tokens, idempotency keys, deposits and the version counter.

Writers serialise on the single `counters` row (SELECT ... FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on
SQLite), which also hands out the backend-wide monotonic `resourceVersion`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenancy_kinds.defaults import redact_url

log = logging.getLogger(__name__)

RESOURCE_VERSION_COUNTER = "resource_version"
PASSWORD_PEPPER_COUNTER = "password_pepper"  # the database's salt for password fingerprints (migration 0002)
# The change log (migration 0005): the oldest revision an incremental export can start from, and a random
# identity of the database, so that a client never applies one database's changes to another's export.
CHANGES_HORIZON_COUNTER = "changes_horizon"
DATABASE_ID_COUNTER = "database_id"
MIGRATION_LOCK_ID = 0x7E4A_4E43  # pg_advisory_lock key for "tenancy migrations"
SQLITE_BUSY_TIMEOUT_S = 30
# Each connection's page cache (SQLite's default is 2 MB): a million resources make a 1.6 GB file whose
# indexes (random uids, claims) a write touches at random pages; with 2 MB each insert re-reads and
# re-decodes pages the last one had (benchmarks/RESULTS.md, run P). Memory-mapped reads skip the copy.
SQLITE_CACHE_KIB = 64 * 1024
SQLITE_MMAP_BYTES = 256 * 1024 * 1024
# Pages the write-ahead log gathers before a commit copies them into the file (SQLite's default is 1,000):
# a bulk create rewrites the same index pages commit after commit, and each copy ends in an fsync.
SQLITE_CHECKPOINT_PAGES = 10_000

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite needs INTEGER PRIMARY KEY for a rowid alias
Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = String(32)  # ISO 8601 UTC with Z: portable, sortable, what the API shows


class Base(DeclarativeBase):
    pass


class Resource(Base):
    """One resource of any kind; `organization` is '' for Organizations."""

    __tablename__ = "resources"
    __table_args__ = (
        UniqueConstraint("kind", "organization", "name", name="uq_resources_identity"),
        Index("ix_resources_listing", "kind", "organization", "id"),
        Index("ix_resources_parent", "parent"),
        Index("ix_resources_stack", "stack"),
        Index("ix_resources_mail_domain", "mail_domain"),
        Index("ix_resources_organization", "organization", "id"),
        Index("ix_resources_kind_mail_domain", "kind", "mail_domain"),  # quota checks: see the migration
        Index("ix_resources_kind_parent", "kind", "parent"),  # hierarchy lookups
        Index("ix_resources_password_fingerprint", "password_fingerprint"),
        Index("ix_resources_mailbox_domain", "mailbox_domain"),
        Index("ix_resources_version", "resource_version"),  # what changed since a revision (changes.py)
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    organization: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    parent: Mapped[str | None] = mapped_column(String(63))  # Organizations only
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    labels: Mapped[dict[str, str]] = mapped_column(Json)
    stack: Mapped[str | None] = mapped_column(String(253))  # the tenancy/stack label, denormalised
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    resource_version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[str] = mapped_column(Timestamp)
    updated_at: Mapped[str] = mapped_column(Timestamp)
    # Denormalised from the spec for rules and statuses, by the table of kinds' facts (operations.columns):
    role: Mapped[str | None] = mapped_column(String(32))  # a person's role
    tier: Mapped[str | None] = mapped_column(String(16))  # the subscription billed to the organization
    mail_domain: Mapped[str | None] = mapped_column(String(253))  # the domain a value must lie on (none: exempt)
    mailbox_domain: Mapped[str | None] = mapped_column(String(253))  # where a mailbox address is consumed
    # Private to the backend, never returned:
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_fingerprint: Mapped[str | None] = mapped_column(String(64))  # see passwords.fingerprint
    subscription_id: Mapped[str | None] = mapped_column(String(64))
    trial_ends_at: Mapped[str | None] = mapped_column(Timestamp)
    # What a customer's directory (SCIM) keeps about the resource beyond its spec: its externalId, and the
    # optional SCIM attributes it cleared. Shown as status.directory; never compared by a plan (migration 0003).
    directory: Mapped[dict[str, Any] | None] = mapped_column(Json)


class Claim(Base):
    """A backend-wide unique value held by a resource (namespace 'domain', 'address', ...)."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("namespace", "key", name="uq_claims_namespace_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(512))
    resource_id: Mapped[int] = mapped_column(
        Id, ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )


class Ref(Base):
    """A reference from a resource's spec to another resource of the same organization."""

    __tablename__ = "refs"
    __table_args__ = (Index("ix_refs_target", "organization", "target_kind", "target_name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    resource_id: Mapped[int] = mapped_column(
        Id, ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    organization: Mapped[str] = mapped_column(String(63))
    field: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(40))
    target_name: Mapped[str] = mapped_column(String(63))


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex; the token is never stored
    organization: Mapped[str | None] = mapped_column(String(63))  # None: root
    legal_representative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[str] = mapped_column(Timestamp)
    expires_at: Mapped[str | None] = mapped_column(Timestamp)
    revoked_at: Mapped[str | None] = mapped_column(Timestamp)


class IdempotencyKey(Base):
    """The first successful answer to a POST carrying an Idempotency-Key, per principal."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),
        Index("ix_idempotency_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    response: Mapped[Any] = mapped_column(Json)
    created_at: Mapped[str] = mapped_column(Timestamp)


class Deposit(Base):
    """A prepaid deposit on an organization's balance (cents, exact)."""

    __tablename__ = "deposits"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    resource_id: Mapped[int] = mapped_column(
        Id, ForeignKey("resources.id", ondelete="CASCADE"), index=True
    )
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[str] = mapped_column(Timestamp)


class Change(Base):
    """A change no `resource_version` shows (migration 0005): a deletion, a deposit, an organization moved
    in the hierarchy (what it holds then enters and leaves scopes). Created and updated resources are found
    by their `resource_version`, which the same counter hands out; see changes.py.

    `path` is where the owning organization sat in the hierarchy before the change (`/top/.../org/`), so
    that only tokens that could see the resource learn that it changed."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    revision: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    organization: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    path: Mapped[str] = mapped_column(Text)


class Counter(Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


metadata = Base.metadata
resources = cast(Table, Resource.__table__)
claims = cast(Table, Claim.__table__)
refs = cast(Table, Ref.__table__)
tokens = cast(Table, Token.__table__)
idempotency_keys = cast(Table, IdempotencyKey.__table__)
deposits = cast(Table, Deposit.__table__)
counters = cast(Table, Counter.__table__)
changes = cast(Table, Change.__table__)


# --- engines --------------------------------------------------------------------------------------


def normalise_url(db_url: str) -> str:
    """`postgresql://` → the psycopg 3 driver; `sqlite:///path` stays."""
    if db_url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db_url.split("://", 1)[1]
    return db_url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def json_dumps(value: Any) -> str:
    """JSON columns encoded by orjson (on PostgreSQL the standard library's encoder took 9 % of a bulk
    create's CPU); the standard library for what orjson refuses (integers beyond 64 bits). The same values
    either way: only the stored text's spacing and escapes differ."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value)


def json_loads(text: str | bytes) -> Any:
    """JSON columns decoded by orjson (several times faster on exports); the standard library for what orjson
    refuses (integers beyond 64 bits), so that both read exactly what was stored."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_db_engine(db_url: str) -> Engine:
    """An engine for `sqlite:///path` (parent directory created, WAL, FKs, busy timeout) or PostgreSQL."""
    url = make_url(normalise_url(db_url))
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url.render_as_string(hide_password=False), url.database)
    if url.get_backend_name() == "postgresql":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            json_deserializer=json_loads,
            json_serializer=json_dumps,
        )
    raise ValueError(f"unsupported database URL {redact_url(db_url)!r}: use sqlite:///path or postgresql://...")


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if not database or database == ":memory:":
        raise ValueError("an in-memory SQLite database cannot be shared between connections; use sqlite:///path")
    directory = Path(os.path.abspath(database)).parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create the directory {str(directory)!r} for the database: {e.strerror}") from e
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        pool_size=8,
        json_deserializer=json_loads,
        json_serializer=json_dumps,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module, so that writers can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the database's write lock up front: no upgrade deadlocks between processes.
        if conn.get_execution_options().get("tenancy_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def insert_or_skip(connection: Connection, table: Any) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for the connection's dialect (rows that conflict are skipped)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()


class RecordsInsert:
    """A run of rows as one PostgreSQL statement with one parameter: the rows as a JSON array, unpacked by
    `json_to_recordset` (`INSERT ... SELECT ... FROM json_to_recordset(:rows)`).

    The statement is the same whatever the run's length, so PostgreSQL parses and plans it once per
    connection (psycopg prepares it), the run costs one round trip, and orjson encodes every row in one
    call. SQLAlchemy's executemany sends pages of a multi-row VALUES, parsed anew for every length, or a
    round trip per page: for 250 resources this is about 3 times faster (measured on loopback).
    """

    def __init__(self, table: Table, returning: Sequence[Any] = ()) -> None:
        self.columns = [c.name for c in table.c if not (c.primary_key and c.autoincrement)]
        types = {c.name: _record_type(c.type) for c in table.c}
        names = ", ".join(f'"{name}"' for name in self.columns)
        record = ", ".join(f'"{name}" {types[name]}' for name in self.columns)
        sql = (
            f'INSERT INTO "{table.name}" ({names}) '
            f"SELECT {names} FROM json_to_recordset(CAST(:rows AS json)) AS u({record})"
        )
        if returning:
            sql += " RETURNING " + ", ".join(f'"{c.name}"' for c in returning)
        self.statement = text(sql)

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        return {"rows": json_dumps([{name: row[name] for name in self.columns} for row in rows])}


def _record_type(column_type: Any) -> str:
    if isinstance(column_type, JSON):
        return "jsonb"
    if isinstance(column_type, Boolean):
        return "boolean"
    if isinstance(column_type, (BigInteger, Integer)):
        return "bigint"
    if isinstance(column_type, String):
        return "text"  # the column's own length still holds: INSERT casts to varchar(n) and checks it
    raise TypeError(f"no record type for {column_type!r}")


# --- migrations -----------------------------------------------------------------------------------


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = connection
    return config


def _head_revision(connection: Connection) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> None:
    """Create and migrate the schema to head; safe when several processes start at once.

    PostgreSQL serialises migrators on an advisory lock; SQLite on BEGIN IMMEDIATE. Should a concurrent
    migrator still win a race, the schema is re-checked and accepted when it is at head.
    """
    from alembic import command

    try:
        with engine.connect() as conn:
            conn.execution_options(tenancy_write=True)
            if not is_sqlite(engine):
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_ID})
                conn.commit()
            try:
                with conn.begin():
                    if current_revision(conn) != _head_revision(conn):
                        command.upgrade(_alembic_config(conn), "head")
            finally:
                if not is_sqlite(engine):
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_ID})
                    conn.commit()
    except Exception:
        with engine.connect() as conn:
            if current_revision(conn) == _head_revision(conn):
                log.info("the database was migrated by another process meanwhile")
                return
        raise


__all__ = [
    "Base",
    "Change",
    "Claim",
    "Counter",
    "Deposit",
    "IdempotencyKey",
    "Ref",
    "Resource",
    "Token",
    "create_db_engine",
    "migrate",
    "normalise_url",
    "redact_url",
]
