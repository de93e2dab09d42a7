"""The tenancy backend's service layer: every business rule, one transaction per request or changeset.

The HTTP API (`tenancy_backend.api`) and the embedded client (`provider.embedded`) both call this, so
they enforce exactly the same things. See docs/architecture.md for the interface.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from tenancy_kinds import TENANT_KIND, ResourceKey
from tenancy_backend import changes as changelog
from tenancy_backend import integrity
from tenancy_backend.db import (
    PASSWORD_PEPPER_COUNTER,
    claims,
    counters,
    create_db_engine,
    deposits,
    idempotency_keys,
    migrate,
    redact_url,
    resources,
    tokens,
)
from tenancy_backend.documents import DOCUMENT_COLUMNS, Prices, iso, parse_amount, parse_iso, utc_now
from tenancy_backend.errors import (
    Conflict,
    Invalid,
    NotFound,
    ServiceError,
    Unauthorized,
    Unavailable,
    refuse,
)
from tenancy_backend.operations import (
    KEEP,
    Directory,
    Judged,
    Prepared,
    already_exists,
    create,
    create_many,
    existing,
    kind_named,
    prepare,
    remove,
    update,
    with_free_name,
)
from tenancy_backend.scope import Scope
from tenancy_backend.selectors import decode_cursor, encode_cursor, parse_selector, selector_clause
from tenancy_backend.transaction import Tx, is_slug

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EXPORT_BATCH = 1000
MAX_OPERATIONS = 10_000
MAX_DEPOSIT = Decimal("1000000.00")
IDEMPOTENCY_TTL = timedelta(hours=24)
TOKEN_PREFIX = "tnc_"
# Every token `create_token` makes: the prefix and `secrets.token_urlsafe(32)` (43 characters, 256 bits).
TOKEN_PATTERN = "^" + TOKEN_PREFIX + "[A-Za-z0-9_-]{43}$"
OPERATIONS = ("create", "update", "delete")


Results = list[dict[str, Any] | None]  # (a module-level name: `Service.list` shadows `list` in the class)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


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
        self._statistics = _Statistics(self._engine)
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
            row = existing(tx, k, organization or "", name)
            return tx.render([row])[0]

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
        claims = {u.field: u for u in k.claims if u.within is None}  # unique across the backend
        with self._read(scope) as tx:
            if k.scoped:
                tx.require_organization(organization or "")
            owner = (organization or "") if k.scoped else ""
            rows = {row.id: row for row in tx.find_many(k.name, owner, [n for n in names if is_slug(n)]).values()}
            for spec_field, value in unique:
                if spec_field not in claims or not isinstance(value, str):
                    raise Invalid(f"{k.name}.spec.{spec_field} is not unique across the backend")
                claim = claims[spec_field]
                held = {"kind": k.name, "organization": owner, "namespace": claim.namespace,
                        "key": claim.normalise(value)}
                rows.update((row.id, row) for row in tx.conn.execute(_BY_CLAIM, held))
            wanted = [u for u in dict.fromkeys(uids) if isinstance(u, str)]
            for start in range(0, len(wanted), EXPORT_BATCH):
                where = {"kind": k.name, "organization": owner, "uids": wanted[start : start + EXPORT_BATCH]}
                rows.update((row.id, row) for row in tx.conn.execute(_BY_UID, where))
            found = [rows[i] for i in sorted(rows) if k.scoped or tx.visible(rows[i].name)]
            return tx.render(found)

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
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            message = f"limit must be an integer between 1 and {MAX_LIMIT} (got {limit!r})"
            raise Invalid(message, [{"path": "limit", "message": message}])
        terms = parse_selector(label_selector)
        after = decode_cursor(cursor)
        with self._read(scope) as tx:
            where = [resources.c.kind == k.name, resources.c.id > after, selector_clause(terms)]
            if k.scoped:
                tx.require_organization(organization or "")
                where.append(resources.c.organization == (organization or ""))
            elif not scope.is_root:
                tree = tx.subtree(scope.organization or "")
                where.append(resources.c.name.in_(select(tree.c.name)))
            query = select(*DOCUMENT_COLUMNS).where(*where).order_by(resources.c.id).limit(limit + 1)
            rows = list(tx.conn.execute(query))
            more = len(rows) > limit
            rows = rows[:limit]
            return Page(tx.render(rows), encode_cursor(rows[-1].id) if more else None)

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
        documents = self._export(scope, root, terms)
        head = next(documents)
        assert isinstance(head, changelog.Head)
        return Snapshot(head.revision, head.database, documents)

    def changes(
        self, scope: Scope, since: int, organization: str | None = None, label_selector: str | None = None
    ) -> changelog.Delta:
        """What changed since revision `since` in what `export` with the same arguments answers: the
        documents that may differ and the keys no longer there; Gone when the change log cannot tell."""
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            message = f"since must be a revision, an integer of at least 0 (got {since!r})"
            raise Invalid(message, [{"path": "since", "message": message}])
        root, terms = self._export_arguments(scope, organization, label_selector)
        with self._snapshot(scope) as tx:
            return changelog.changed_since(tx, since, root, terms)

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

    def _export(self, scope: Scope, root: str | None, terms: Any) -> Iterator[Any]:
        """A changelog.Head first, then the documents, all in one snapshot."""
        with self._snapshot(scope) as tx:
            conn = tx.conn
            yield changelog.head(tx)
            where = [selector_clause(terms)]
            if root is not None:
                tree = select(tx.subtree(root).c.name)
                where.append(
                    or_(
                        and_(resources.c.kind == TENANT_KIND, resources.c.name.in_(tree)),
                        resources.c.organization.in_(tree),
                    )
                )
            after = 0
            while True:
                query = (
                    select(*DOCUMENT_COLUMNS)
                    .where(resources.c.id > after, *where)
                    .order_by(resources.c.id)
                    .limit(EXPORT_BATCH)
                )
                rows = list(conn.execute(query))
                if not rows:
                    return
                yield from tx.render(rows)
                after = rows[-1].id

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
            p = prepare(kind_named(kind), organization, document, pepper=self._pepper, directory=directory)
        except Judged:
            if not unique_name:  # a taken name comes first, as in manifests
                self._refuse_if_taken(scope, kind, organization, document)
            raise
        fingerprint = _fingerprint("create", kind, organization, None, document)
        with self._write(scope) as tx:
            replay = _replay(tx, idempotency_key, fingerprint)
            if replay is not None:
                return replay  # type: ignore[no-any-return]
            if unique_name:
                p = with_free_name(tx, p)
            result = create(tx, p)
            self._finish(tx)
            _remember(tx, idempotency_key, fingerprint, result)
            return result

    def _refuse_if_taken(self, scope: Scope, kind: str, organization: str | None, document: Any) -> None:
        name = (document.get("metadata") or {}).get("name") if isinstance(document, dict) else None
        if not is_slug(name) or (organization is not None and not is_slug(organization)):
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
        p = prepare(k, organization, document, name=name, pepper=self._pepper, directory=directory)
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
        steps = _parse_operations(operations, self._pepper)
        fingerprint = _fingerprint("changeset", "", None, None, operations)
        with self._write(scope) as tx:
            replay = _replay(tx, idempotency_key, fingerprint)
            if replay is not None:
                return replay  # type: ignore[no-any-return]
            prefixes = {step.key: f"operations[{index}]" for index, step in enumerate(steps)}
            results: Results = []
            for start, run in _runs(steps):
                created = create_many(tx, [s.prepared for s in run]) if len(run) > 1 else None  # type: ignore[misc]
                if created is not None:
                    results.extend(created)
                    continue
                for index, step in enumerate(run, start):
                    results.append(_run_step(tx, index, step))
            self._finish(tx, prefixes)
            _remember(tx, idempotency_key, fingerprint, results)
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
        fingerprint = _fingerprint("deposit", TENANT_KIND, organization, None, str(value))
        with self._write(scope) as tx:
            replay = _replay(tx, idempotency_key, fingerprint)
            if replay is not None:
                return replay  # type: ignore[no-any-return]
            row = tx.require_organization(organization)
            tx.touched[ResourceKey(TENANT_KIND, "", organization)] = None  # its balance: for the change log
            tx.conn.execute(
                deposits.insert().values(resource_id=row.id, amount_cents=int(value * 100), created_at=iso(tx.now))
            )
            result = tx.render([row])[0]
            _remember(tx, idempotency_key, fingerprint, result)
            return result

    # --- tokens ----------------------------------------------------------------------------------

    def create_token(
        self,
        organization: str | None = None,
        legal_representative: bool = False,
        expires_in: float | timedelta | None = None,
    ) -> str:
        """A new API token (shown once; only its sha256 is stored), scoped to `organization` or root."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._write(Scope.root()) as tx:
            if organization is not None:
                tx.require_organization(organization)
            expires_at = None
            if expires_in is not None:
                delta = expires_in if isinstance(expires_in, timedelta) else timedelta(seconds=float(expires_in))
                if delta <= timedelta(0):
                    raise Invalid("expires_in must be positive")
                expires_at = iso(tx.now + delta)
            tx.conn.execute(
                tokens.insert().values(
                    token_hash=_token_hash(token),
                    organization=organization,
                    legal_representative=legal_representative,
                    created_at=iso(tx.now),
                    expires_at=expires_at,
                )
            )
        return token

    def revoke_token(self, token: str) -> None:
        with self._write(Scope.root()) as tx:
            result = tx.conn.execute(
                tokens.update()
                .where(tokens.c.token_hash == _token_hash(token), tokens.c.revoked_at.is_(None))
                .values(revoked_at=iso(tx.now))
            )
            if result.rowcount == 0:
                known = tx.conn.execute(select(tokens.c.id).where(tokens.c.token_hash == _token_hash(token))).first()
                if known is None:
                    raise NotFound("no such token (it may have been mistyped)")

    def authenticate(self, token: str | None) -> Scope:
        """The scope of a bearer token; Unauthorized when it is missing, unknown, revoked or expired."""
        if not token:
            raise Unauthorized("missing bearer token: send `Authorization: Bearer <token>` (tenancy token create)")
        with self._read(Scope.root()) as tx:
            row = tx.conn.execute(_TOKEN, {"token_hash": _token_hash(token)}).first()
            now = tx.now
        if row is None:
            raise Unauthorized("invalid token: it is not known to this backend")
        if row.revoked_at is not None:
            raise Unauthorized("this token was revoked; create a new one with `tenancy token create`")
        if row.expires_at is not None and parse_iso(row.expires_at) <= now:
            raise Unauthorized("this token has expired; create a new one with `tenancy token create`")
        principal = f"token:{row.id}"
        if row.organization is None:
            return Scope(None, bool(row.legal_representative), principal)
        return Scope.of_organization(
            row.organization, legal_representative=bool(row.legal_representative), principal=principal
        )


# --- changesets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    op: str
    key: ResourceKey
    prepared: Prepared | None
    if_match: str | None


def _parse_operations(operations: Any, pepper: int | None) -> list[_Step]:
    if not isinstance(operations, list) or not operations:
        message = "operations must be a non-empty list of {op, kind, organization, name, document, ifMatch}"
        raise Invalid(message, [{"path": "operations", "message": message}])
    if len(operations) > MAX_OPERATIONS:
        message = f"a changeset holds at most {MAX_OPERATIONS} operations (got {len(operations)}); split it"
        raise Invalid(message, [{"path": "operations", "message": message}])
    steps: list[_Step] = []
    errors: list[dict[str, str]] = []
    for index, raw in enumerate(operations):
        try:
            steps.append(_parse_step(raw, pepper))
        except ServiceError as e:
            prefix = f"operations[{index}]"
            errors.extend(
                {"path": f"{prefix}.{err['path']}" if err["path"] else prefix, "message": err["message"]}
                for err in (e.errors or [{"path": "", "message": e.detail}])
            )
    if errors:
        raise Invalid(f"invalid changeset: {errors[0]['path']}: {errors[0]['message']}", errors)
    return steps


def _parse_step(raw: Any, pepper: int | None) -> _Step:
    if not isinstance(raw, dict):
        raise Invalid("an operation must be an object", [{"path": "", "message": "expected an object"}])
    unknown = sorted(set(raw) - {"op", "kind", "organization", "name", "document", "ifMatch"})
    if unknown:
        raise Invalid("unknown fields", [{"path": u, "message": "unknown field: remove it"} for u in unknown])
    op = raw.get("op")
    if op not in OPERATIONS:
        raise Invalid("bad op", [{"path": "op", "message": f"op must be one of {', '.join(OPERATIONS)}"}])
    kind = kind_named(raw.get("kind"))
    organization = raw.get("organization") if kind.scoped else None
    if kind.scoped and not is_slug(organization):
        raise Invalid("bad organization", [{"path": "organization", "message": "the owning organization's name"}])
    name = raw.get("name")
    if_match = raw.get("ifMatch")
    if if_match is not None and not isinstance(if_match, str | int):
        raise Invalid("bad ifMatch", [{"path": "ifMatch", "message": "a resourceVersion string"}])
    if op == "delete":
        if not is_slug(name):
            raise Invalid("bad name", [{"path": "name", "message": "the name of the resource to delete"}])
        key = ResourceKey(kind.name, organization or "", str(name))
        return _Step(op, key, None, None if if_match is None else str(if_match))
    if name is not None and not isinstance(name, str):
        raise Invalid("bad name", [{"path": "name", "message": "a resource name"}])
    p = _prefixed("document", lambda: prepare(kind, organization, raw.get("document"), name=name, pepper=pepper))
    return _Step(op, p.key, p, None if if_match is None else str(if_match))


def _prefixed(prefix: str, call: Callable[[], Prepared]) -> Prepared:
    try:
        return call()
    except ServiceError as e:
        e.errors = [{"path": f"{prefix}.{x['path']}" if x["path"] else prefix, "message": x["message"]} for x in e.errors]
        raise


class _Statistics:
    """Keeps PostgreSQL's planner statistics up with bulk writes: ANALYZE after 500 rows written by this
    process, then after twice as many each time (a few cheap ANALYZEs for 100,000 resources).

    Until a table is analyzed PostgreSQL plans as if it were nearly empty (an export batch becomes a
    sequential scan and a sort of the whole table), and autovacuum, when it runs at all, analyzes at most
    once a minute: too late for a fleet created by one apply.
    """

    FIRST = 500

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._enabled = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._written = 0
        self._next = self.FIRST

    def wrote(self, rows: int) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._written += rows
            if self._written < self._next:
                return
            self._written, self._next = 0, self._next * 2
        try:
            with self._engine.connect() as conn:
                conn.execute(text("ANALYZE resources, claims, refs"))
                conn.commit()
        except DBAPIError as e:  # statistics are an optimisation: never fail a committed changeset
            log.warning("ANALYZE after a bulk write failed: %s", e)


def _runs(steps: list[_Step]) -> Iterator[tuple[int, list[_Step]]]:
    """The steps cut into runs of consecutive creates (bulk candidates) and single other steps, with the
    index of each run's first step."""
    start = 0
    while start < len(steps):
        end = start + 1
        if steps[start].op == "create":
            while end < len(steps) and steps[end].op == "create":
                end += 1
        yield start, steps[start:end]
        start = end


def _run_step(tx: Tx, index: int, step: _Step) -> dict[str, Any] | None:
    try:
        if step.op == "create":
            assert step.prepared is not None
            return create(tx, step.prepared)
        if step.op == "update":
            assert step.prepared is not None
            return update(tx, step.prepared, step.if_match)
        return remove(tx, kind_named(step.key.kind), step.key.organization, step.key.name, step.if_match)
    except ServiceError as e:
        prefix = f"operations[{index}]"
        e.errors = [
            {"path": f"{prefix}.{x['path']}" if x["path"] else prefix, "message": x["message"]} for x in e.errors
        ] or [{"path": prefix, "message": e.detail}]
        e.detail = f"operation {index} ({step.op} {step.key}): {e.detail}"
        raise


# --- idempotency ----------------------------------------------------------------------------------


# Statements of every request, built once (building one costs more than SQLite takes to run it).
_REPLAY = select(idempotency_keys.c.fingerprint, idempotency_keys.c.response).where(
    idempotency_keys.c.principal == bindparam("principal"), idempotency_keys.c.key == bindparam("key")
)
_EXPIRE_KEYS = delete(idempotency_keys).where(idempotency_keys.c.created_at < bindparam("before"))
_REMEMBER = idempotency_keys.insert()
_TOKEN = select(tokens).where(tokens.c.token_hash == bindparam("token_hash"))
_BY_CLAIM = (
    select(*DOCUMENT_COLUMNS)
    .join(claims, claims.c.resource_id == resources.c.id)
    .where(
        resources.c.kind == bindparam("kind"),
        resources.c.organization == bindparam("organization"),
        claims.c.namespace == bindparam("namespace"),
        claims.c.key == bindparam("key"),
    )
)
_BY_UID = select(*DOCUMENT_COLUMNS).where(
    resources.c.kind == bindparam("kind"),
    resources.c.organization == bindparam("organization"),
    resources.c.uid.in_(bindparam("uids", expanding=True)),
)


def _fingerprint(op: str, kind: str, organization: str | None, name: str | None, payload: Any) -> str:
    """A digest of the request; clear passwords are masked (the digest is stored)."""
    data = json.dumps([op, kind, organization, name, _masked(payload)], sort_keys=True, default=str)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<secret>" if k == "password" else _masked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _check_key(key: str) -> None:
    if not (1 <= len(key) <= 255) or not key.isprintable() or not key.isascii():
        message = "Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID is a good choice)"
        raise Invalid(message, [{"path": "Idempotency-Key", "message": message}])


def _replay(tx: Tx, key: str | None, fingerprint: str) -> Any:
    if key is None:
        return None
    _check_key(key)
    row = tx.conn.execute(_REPLAY, {"principal": tx.scope.principal, "key": key}).first()
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        message = (
            f"Idempotency-Key {key!r} was already used for a different request; "
            "use a new key for a new request"
        )
        raise Invalid(message, [{"path": "Idempotency-Key", "message": message}])
    return row.response


def _remember(tx: Tx, key: str | None, fingerprint: str, response: Any) -> None:
    if key is None:
        return
    tx.conn.execute(_EXPIRE_KEYS, {"before": iso(tx.now - IDEMPOTENCY_TTL)})
    tx.conn.execute(
        _REMEMBER,
        {
            "principal": tx.scope.principal,
            "key": key,
            "fingerprint": fingerprint,
            "response": response,
            "created_at": iso(tx.now),
        },
    )


# --- helpers --------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


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
