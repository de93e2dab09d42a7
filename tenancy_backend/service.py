"""The tenancy backend's service layer: the one façade over every business rule, one transaction per
request or changeset.

The HTTP API (`tenancy_backend.api`), SCIM (`tenancy_backend.scim`) and the embedded client
(`provider.embedded`) all call this, so they enforce exactly the same things. Each job behind it lives in a
module of its own (docs/architecture.md): `parsing`, `writes` (with `checks`, `claims`, `references`,
`rows`, `bulk`), `changesets`, `idempotency`, `statistics`, `tokens`, and `reads`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from tenancy_kinds import TENANT_KIND, ResourceKey
from tenancy_kinds.billing import Prices, parse_amount
from tenancy_backend import changes as changelog
from tenancy_backend import changesets, idempotency, integrity, reads, tokens
from tenancy_backend.changesets import Results
from tenancy_backend.checks import already_exists, existing
from tenancy_backend.db import (
    PASSWORD_PEPPER_COUNTER,
    counters,
    create_db_engine,
    deposits,
    migrate,
    redact_url,
)
from tenancy_backend.documents import iso, utc_now
from tenancy_backend.errors import Conflict, Invalid, NotFound, Unavailable, refuse
from tenancy_backend.parsing import KEEP, Directory, Judged, kind_named, parse_document
from tenancy_backend.scope import Scope
from tenancy_backend.reads import DEFAULT_LIMIT, Page
from tenancy_backend.selectors import decode_cursor, parse_selector
from tenancy_backend.statistics import Statistics
from tenancy_backend.transaction import Tx, is_slug
from tenancy_backend.writes import create, remove, update, with_free_name

log = logging.getLogger(__name__)

MAX_DEPOSIT = Decimal("1000000.00")
_Head = TypeVar("_Head")  # what a stream of documents is the state of (Service._streamed)


@dataclass(frozen=True)
class Snapshot:
    """An export and the revision (of the database `database`) it is the state of."""

    revision: int
    database: int
    documents: Iterator[dict[str, Any]]


class Service:
    """The tenancy backend on one database (`sqlite:///path` or `postgresql://...`), created and migrated.

    `prices` overrides the monthly price per subscription tier (e.g. `{"entry": "4.00"}`); `clock`
    returns the current time (timezone-aware), for tests of dates such as a subscription's trial.
    """

    def __init__(
        self,
        db_url: str,
        *,
        prices: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] = utc_now,
        migrate_schema: bool = True,
        changes_retained: int = changelog.RETAINED,
    ) -> None:
        self.db_url = db_url
        self._changes_retained = changes_retained
        self._prices = Prices.of(prices)
        self._clock = clock
        self._engine = create_db_engine(db_url)
        # SQLite's writers wait for its file lock by sleeping and polling (the busy timeout): the threads of
        # one process take turns here instead, so a parallel apply does not sleep between changesets.
        # PostgreSQL queues writers on a row lock (Tx.lock) without polling.
        self._writers: AbstractContextManager[Any] = (
            threading.RLock() if self._engine.dialect.name == "sqlite" else nullcontext()
        )
        self._statistics = Statistics(self._engine)
        if migrate_schema:
            try:
                migrate(self._engine)
            except OperationalError as e:
                self._engine.dispose()
                cause = str(e.orig or e).strip().splitlines()[0]
                raise Unavailable(f"cannot open the database {redact_url(db_url)}: {cause}") from e

    def __repr__(self) -> str:
        return f"Service({redact_url(self.db_url)!r})"

    @functools.cached_property
    def _pepper(self) -> int | None:
        """The database's salt for password fingerprints (drawn by migration 0002); None before it."""
        with self._engine.connect() as conn:
            query = select(counters.c.value).where(counters.c.name == PASSWORD_PEPPER_COUNTER)
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else int(value)

    def close(self) -> None:
        self._engine.dispose()

    # --- transactions ----------------------------------------------------------------------------

    @contextmanager
    def _read(self, scope: Scope) -> Iterator[Tx]:
        with _database_errors(), self._engine.connect() as conn, conn.begin():
            yield Tx(conn, scope, self._clock(), self._prices, write=False)

    @contextmanager
    def _write(self, scope: Scope) -> Iterator[Tx]:
        """One write transaction, serialised with every other writer; deferred rules checked before commit."""
        with self._writers, _database_errors(), self._engine.connect() as conn:
            conn.execution_options(tenancy_write=True)
            with conn.begin():
                tx = Tx(conn, scope, self._clock(), self._prices, write=True)
                tx.lock()
                yield tx
                changelog.record(tx, self._changes_retained)  # the change log: what no resourceVersion shows
                tx.save_version()

    @staticmethod
    def _finish(tx: Tx, prefixes: Mapping[ResourceKey, str] | None = None) -> None:
        violations = integrity.verify(tx)
        if violations:
            raise refuse(violations, prefixes)

    # --- reading ---------------------------------------------------------------------------------

    def get(self, scope: Scope, kind: str, organization: str | None, name: str) -> dict[str, Any]:
        k = kind_named(kind)
        with self._read(scope) as tx:
            return reads.get(tx, k, organization or "", name)

    def find(
        self,
        scope: Scope,
        kind: str,
        organization: str | None,
        *,
        uids: Sequence[str] = (),
        names: Sequence[str] = (),
        unique: Sequence[tuple[str, str]] = (),
    ) -> list[dict[str, Any]]:
        """The resources of a kind in an organization with any of these uids or names, or holding one of the
        `unique` (spec field, value) pairs (the kind's backend-wide unique fields: a User's email or
        username), in creation order; those that do not exist (or lie outside the scope) are left out.
        NotFound for the organization."""
        k = kind_named(kind)
        with self._read(scope) as tx:
            return reads.find(tx, k, organization, uids, names, unique)

    def list(
        self,
        scope: Scope,
        kind: str,
        organization: str | None,
        label_selector: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """One page of a collection, ordered by creation (id); `next_cursor` is None on the last page."""
        k = kind_named(kind)
        reads.check_limit(limit)
        terms = parse_selector(label_selector)
        after = decode_cursor(cursor)
        with self._read(scope) as tx:
            return reads.page(tx, k, organization, terms, limit, after)

    def export(
        self, scope: Scope, organization: str | None = None, label_selector: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every resource in scope (optionally an organization's subtree, a label selector), in batches.

        Arguments are checked now (NotFound, BadRequest); the returned iterator reads in one snapshot.
        """
        return self.snapshot(scope, organization, label_selector).documents

    def snapshot(self, scope: Scope, organization: str | None = None, label_selector: str | None = None) -> Snapshot:
        """`export`'s documents with the revision they are the state of, read in the same snapshot (opened
        now: the revision is known before the first document)."""
        root, terms = self._export_arguments(scope, organization, label_selector)
        head, documents = self._streamed(scope, lambda tx: (changelog.head(tx), reads.export(tx, root, terms)))
        return Snapshot(head.revision, head.database, documents)

    def changes(
        self, scope: Scope, since: int, organization: str | None = None, label_selector: str | None = None
    ) -> changelog.Delta:
        """What changed since revision `since` in what `export` with the same arguments answers: the
        documents that may differ (read as they are iterated, as `snapshot`'s) and the keys no longer there;
        Gone when the change log cannot tell."""
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            message = f"since must be a revision, an integer of at least 0 (got {since!r})"
            raise Invalid(message, [{"path": "since", "message": message}])
        root, terms = self._export_arguments(scope, organization, label_selector)

        def read(tx: Tx) -> tuple[changelog.Delta, Iterator[dict[str, Any]]]:
            delta = changelog.changed_since(tx, since, root, terms)
            return delta, delta.items

        delta, documents = self._streamed(scope, read)
        return replace(delta, items=documents)

    def _streamed(
        self, scope: Scope, read: Callable[[Tx], tuple[_Head, Iterator[dict[str, Any]]]]
    ) -> tuple[_Head, Iterator[dict[str, Any]]]:
        """What `read` answers at once (what the documents are the state of), and the documents it reads as
        they are iterated, all in one snapshot (it ends when they have all been read, or are dropped)."""

        def parts() -> Iterator[Any]:
            with self._snapshot(scope) as tx:
                head, documents = read(tx)
                yield head
                yield from documents

        stream = parts()
        return next(stream), stream

    def _export_arguments(
        self, scope: Scope, organization: str | None, label_selector: str | None
    ) -> tuple[str | None, Any]:
        terms = parse_selector(label_selector)
        root = organization if organization is not None else scope.organization
        if organization is not None:
            with self._read(scope) as tx:
                tx.require_organization(organization)
        return root, terms

    @contextmanager
    def _snapshot(self, scope: Scope) -> Iterator[Tx]:
        """A read transaction whose statements all see one snapshot (REPEATABLE READ on PostgreSQL; a
        SQLite read transaction is one)."""
        with _database_errors(), self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield Tx(conn, scope, self._clock(), self._prices, write=False)

    def prices(self) -> dict[str, Any]:
        return self._prices.as_dict()

    # --- writing ---------------------------------------------------------------------------------

    def create(
        self,
        scope: Scope,
        kind: str,
        organization: str | None,
        document: Any,
        idempotency_key: str | None = None,
        *,
        unique_name: bool = False,
        directory: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a resource. `unique_name`: when metadata.name is taken, the first free one of name-2,
        name-3, ... instead (for names the caller derives); `directory`: what a customer's directory keeps
        about it beyond the spec (SCIM's externalId), shown as status.directory."""
        try:
            p = parse_document(kind_named(kind), organization, document, pepper=self._pepper, directory=directory)
        except Judged:
            if not unique_name:  # a taken name comes first, as in manifests
                self._refuse_if_taken(scope, kind, organization, document)
            raise
        fingerprint = idempotency.fingerprint("create", kind, organization, None, document)
        with self._write(scope) as tx:
            replay = idempotency.replay(tx, idempotency_key, fingerprint)
            if replay is not None:
                return replay  # type: ignore[no-any-return]
            if unique_name:
                p = with_free_name(tx, p)
            result = create(tx, p)
            self._finish(tx)
            idempotency.remember(tx, idempotency_key, fingerprint, result)
            return result

    def _refuse_if_taken(self, scope: Scope, kind: str, organization: str | None, document: Any) -> None:
        name = (document.get("metadata") or {}).get("name") if isinstance(document, dict) else None
        if not isinstance(name, str) or not is_slug(name) or (organization is not None and not is_slug(organization)):
            return
        k = kind_named(kind)
        with self._read(scope) as tx:
            try:
                existing(tx, k, organization or "", name)
            except NotFound:
                return
        raise already_exists(ResourceKey(k.name, organization or "", name))

    def update(
        self,
        scope: Scope,
        kind: str,
        organization: str | None,
        name: str,
        document: Any,
        if_match: str | None = None,
        *,
        directory: Directory = KEEP,
    ) -> dict[str, Any]:
        """Update a resource; `directory` replaces what a directory keeps about it (KEEP: as it is)."""
        k = kind_named(kind)
        with self._read(scope) as tx:
            existing(tx, k, organization or "", name)  # 404 before 422: never judge what cannot be seen
        p = parse_document(k, organization, document, name=name, pepper=self._pepper, directory=directory)
        with self._write(scope) as tx:
            result = update(tx, p, if_match)
            self._finish(tx)
            return result

    def delete(
        self, scope: Scope, kind: str, organization: str | None, name: str, if_match: str | None = None
    ) -> dict[str, Any] | None:
        k = kind_named(kind)
        with self._write(scope) as tx:
            result = remove(tx, k, organization or "", name, if_match)
            self._finish(tx)
            return result

    def changeset(
        self, scope: Scope, operations: Any, idempotency_key: str | None = None
    ) -> Results:
        """Apply operations in order, all or nothing; rules on references and quotas judge the outcome."""
        steps = changesets.parse_operations(operations, self._pepper)
        fingerprint = idempotency.fingerprint("changeset", "", None, None, operations)
        with self._write(scope) as tx:
            replay = idempotency.replay(tx, idempotency_key, fingerprint)
            if replay is not None:
                return replay  # type: ignore[no-any-return]
            prefixes = {step.key: f"operations[{index}]" for index, step in enumerate(steps)}
            results = changesets.write(tx, steps)
            self._finish(tx, prefixes)
            idempotency.remember(tx, idempotency_key, fingerprint, results)
        self._statistics.wrote(len(steps))
        return results

    def deposit(
        self, scope: Scope, organization: str, amount: Any, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Add a prepaid deposit to an organization's balance; the organization document."""
        try:
            value = parse_amount(amount)
        except ValueError as e:
            raise Invalid(f"invalid amount: {e}", [{"path": "amount", "message": str(e)}]) from None
        if not Decimal("0.01") <= value <= MAX_DEPOSIT:
            message = f"a deposit must be between 0.01 and {MAX_DEPOSIT} (got {value})"
            raise Invalid(message, [{"path": "amount", "message": message}])
        fingerprint = idempotency.fingerprint("deposit", TENANT_KIND, organization, None, str(value))
        with self._write(scope) as tx:
            replay = idempotency.replay(tx, idempotency_key, fingerprint)
            if replay is not None:
                return replay  # type: ignore[no-any-return]
            row = tx.require_organization(organization)
            tx.touched[ResourceKey(TENANT_KIND, "", organization)] = None  # its balance: for the change log
            tx.conn.execute(
                deposits.insert().values(resource_id=row.id, amount_cents=int(value * 100), created_at=iso(tx.now))
            )
            result = tx.render([row])[0]
            idempotency.remember(tx, idempotency_key, fingerprint, result)
            return result

    # --- tokens ----------------------------------------------------------------------------------

    def create_token(
        self,
        organization: str | None = None,
        legal_representative: bool = False,
        expires_in: float | timedelta | None = None,
    ) -> str:
        """A new API token (shown once; only its sha256 is stored), scoped to `organization` or root."""
        with self._write(Scope.root()) as tx:
            return tokens.create(tx, organization, legal_representative, expires_in)

    def revoke_token(self, token: str) -> None:
        with self._write(Scope.root()) as tx:
            tokens.revoke(tx, token)

    def authenticate(self, token: str | None) -> Scope:
        """The scope of a bearer token; Unauthorized when it is missing, unknown, revoked or expired."""
        given = tokens.require_given(token)
        with self._read(Scope.root()) as tx:
            row = tokens.find(tx, given)
            now = tx.now
        return tokens.scope_of(row, now)


@contextmanager
def _database_errors() -> Iterator[None]:
    """Database exceptions never leave the service: they become ServiceErrors (chained)."""
    try:
        yield
    except IntegrityError as e:
        raise Conflict("a concurrent change conflicted with this request; read the resource again and retry") from e
    except OperationalError as e:
        log.warning("database unavailable: %s", type(e).__name__)
        raise Unavailable("the database is unavailable or busy; retry in a moment") from e
    except DBAPIError as e:
        log.error("database error: %s", type(e).__name__)
        raise Unavailable("the database refused the request; retry, and report it if it persists") from e


__all__ = ["Page", "Scope", "Service", "Snapshot"]
