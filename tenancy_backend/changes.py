"""The change log: what changed since a revision, for incremental exports (`GET /v1/export?since=REV`).

A database's revision is its version counter, the one that hands out every `resourceVersion`: a resource
created or updated after revision R has a resourceVersion above R, which an index finds. What no
resourceVersion shows is logged in `changes` at the end of each write transaction (`record`), under a
revision drawn from the same counter: deletions (tombstones), deposits (an organization's balance), and
everything an organization moved in the hierarchy holds (it leaves some scopes and enters others).

`changed_since` answers, in one snapshot, the documents a full export with the same scope and selection
would hold that may differ from what it held at R, and the keys it would no longer hold (tombstones): a
resource deleted, moved out of the scope or no longer selected. Statuses that count what an organization
holds (documents.DEPENDENT_STATUSES) are sent again whenever anything of that organization changed.

The log is bounded: past `retained` revisions its older half is pruned, and the horizon (the oldest
revision an incremental export can start from) moves up; older revisions are 410 Gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, or_, select

from tenancy_kinds import KINDS, TENANT_KIND, ResourceKey
from tenancy_kinds.selectors import Term, matches
from tenancy_backend.db import (
    CHANGES_HORIZON_COUNTER,
    DATABASE_ID_COUNTER,
    RESOURCE_VERSION_COUNTER,
    changes,
    counters,
    resources,
)
from tenancy_backend.documents import DEPENDENT_STATUSES, DOCUMENT_COLUMNS
from tenancy_backend.errors import Gone
from tenancy_backend.transaction import CHUNK, MAX_DEPTH, Tx

RETAINED = 1_000_000  # revisions of the log kept at least (at most twice as many)

_KEY_COLUMNS = (resources.c.id, resources.c.kind, resources.c.organization, resources.c.name, resources.c.labels)
_COUNTERS = select(counters.c.name, counters.c.value).where(
    counters.c.name.in_([RESOURCE_VERSION_COUNTER, CHANGES_HORIZON_COUNTER, DATABASE_ID_COUNTER])
)
_HORIZON = select(counters.c.value).where(counters.c.name == CHANGES_HORIZON_COUNTER)
_SET_HORIZON = counters.update().where(counters.c.name == CHANGES_HORIZON_COUNTER).values(value=bindparam("value"))
_PRUNE = delete(changes).where(changes.c.revision <= bindparam("upto"))
_CHANGED = select(*_KEY_COLUMNS).where(resources.c.resource_version > bindparam("since"))
_LOGGED = (
    select(
        changes.c.kind.label("logged_kind"),
        changes.c.organization.label("logged_organization"),
        changes.c.name.label("logged_name"),
        changes.c.path,
        *_KEY_COLUMNS,
    )
    .select_from(
        changes.outerjoin(
            resources,
            and_(
                resources.c.kind == changes.c.kind,
                resources.c.organization == changes.c.organization,
                resources.c.name == changes.c.name,
            ),
        )
    )
    .where(changes.c.revision > bindparam("since"))
)
_BY_IDS = select(*DOCUMENT_COLUMNS).where(resources.c.id.in_(bindparam("ids", expanding=True))).order_by(resources.c.id)
_DEPENDENT_SCOPED = [k for k in DEPENDENT_STATUSES if KINDS[k].scoped]


@dataclass(frozen=True)
class Head:
    """Where a database stands: its revision, and its identity (a random number drawn when it was made)."""

    revision: int
    database: int


@dataclass(frozen=True)
class Delta:
    """What changed between revision `since` and `revision` for one scope and selection."""

    revision: int
    since: int
    database: int
    items: Iterator[dict[str, Any]]  # read as iterated, in the snapshot the delta was counted in
    deleted: list[ResourceKey]


def head(tx: Tx) -> Head:
    values = {name: value for name, value in tx.conn.execute(_COUNTERS)}
    return Head(int(values.get(RESOURCE_VERSION_COUNTER, 0)), int(values.get(DATABASE_ID_COUNTER, 0)))


# --- writing --------------------------------------------------------------------------------------


def record(tx: Tx, retained: int = RETAINED) -> None:
    """At the end of a write transaction, before its version is saved: log what no resourceVersion shows,
    under a revision of its own, and prune the log past `retained` revisions."""
    entries: dict[ResourceKey, str] = {}
    paths: dict[str, str] = {}
    for key in (*tx.pending.released, *tx.dropped):
        entries[key] = _path(tx, _owner(key), before=True, memo=paths)
    for key in tx.touched:
        entries.setdefault(key, _path(tx, _owner(key), before=False, memo={}))
    for moved in _moved_organizations(tx):
        for key in _contents(tx, moved):
            entries.setdefault(key, _path(tx, _owner(key), before=True, memo=paths))
    if not entries:
        return
    revision = tx.next_version()
    rows = [
        {"revision": revision, "kind": k.kind, "organization": k.organization, "name": k.name, "path": path}
        for k, path in entries.items()
    ]
    tx.conn.execute(changes.insert(), rows)
    horizon = int(tx.conn.execute(_HORIZON).scalar_one_or_none() or 0)
    if revision - horizon > 2 * retained:
        upto = revision - retained
        tx.conn.execute(_PRUNE, {"upto": upto})
        tx.conn.execute(_SET_HORIZON, {"value": upto})


def _owner(key: ResourceKey) -> str:
    return key.organization if KINDS[key.kind].scoped else key.name


def _path(tx: Tx, organization: str, *, before: bool, memo: dict[str, str]) -> str:
    """`/top/.../organization/`: where the organization sat when the transaction began (`before`) or sits
    now. Every organization a transaction changes was read before it changed it (`Tx.first_seen`)."""
    if organization in memo:
        return memo[organization]
    names: list[str] = []
    current: str | None = organization
    for _ in range(MAX_DEPTH):
        if current is None or current in names:
            break
        names.append(current)
        row = tx.first_seen[current] if before and current in tx.first_seen else tx.organization(current)
        current = None if row is None else row.parent
    path = "/" + "/".join(reversed(names)) + "/"
    memo[organization] = path
    return path


def _moved_organizations(tx: Tx) -> Iterator[str]:
    """Organizations that existed before the transaction and now have another parent."""
    for name in sorted(tx.pending.hierarchy_orgs):
        before = tx.first_seen.get(name)
        now = tx.organization(name)
        if before is not None and now is not None and before.parent != now.parent:
            yield name


def _contents(tx: Tx, organization: str) -> Iterator[ResourceKey]:
    """Every resource of the organization's subtree, the organizations themselves included."""
    tree = select(tx.subtree(organization).c.name)
    query = select(resources.c.kind, resources.c.organization, resources.c.name).where(
        or_(and_(resources.c.kind == TENANT_KIND, resources.c.name.in_(tree)), resources.c.organization.in_(tree))
    )
    for row in tx.conn.execute(query):
        yield ResourceKey(row.kind, row.organization, row.name)


# --- reading --------------------------------------------------------------------------------------


def changed_since(tx: Tx, since: int, root: str | None, terms: list[Term]) -> Delta:
    """What a full export of `root`'s subtree (everything: None) selected by `terms` would answer now that
    may differ from what it answered at revision `since`; Gone when the log cannot tell. The documents are
    read a chunk at a time as `items` is iterated (iterate it before `tx` ends): after a cold apply of
    1,000,000 resources they are the whole fleet, which held at once took the server gigabytes and twice
    the time of a full export."""
    values = {name: value for name, value in tx.conn.execute(_COUNTERS)}
    now = Head(int(values.get(RESOURCE_VERSION_COUNTER, 0)), int(values.get(DATABASE_ID_COUNTER, 0)))
    horizon = int(values.get(CHANGES_HORIZON_COUNTER, 0))
    if since > now.revision:
        raise Gone(_gone(f"revision {since} is ahead of this database's revision {now.revision}"))
    if since < horizon:
        raise Gone(_gone(f"the change log starts at revision {horizon}, after {since}"))
    tree = None if root is None else set(tx.conn.execute(select(tx.subtree(root).c.name)).scalars())

    def inside(row: Any) -> bool:
        return tree is None or (row.name if row.kind == TENANT_KIND else row.organization) in tree

    candidates: dict[ResourceKey, Any] = {}  # rows of _KEY_COLUMNS
    gone_visible: set[ResourceKey] = set()  # logged keys the scope could see before the change
    for row in tx.conn.execute(_CHANGED, {"since": since}):
        candidates[ResourceKey(row.kind, row.organization, row.name)] = row
    marker = None if root is None else f"/{root}/"
    for logged in tx.conn.execute(_LOGGED, {"since": since}):
        key = ResourceKey(logged.logged_kind, logged.logged_organization, logged.logged_name)
        if marker is None or marker in logged.path:
            gone_visible.add(key)
        if logged.id is not None:  # it exists now
            candidates.setdefault(key, logged)
    touched = {key.organization if KINDS[key.kind].scoped else key.name for key in (*candidates, *gone_visible)}
    for row in _dependents(tx, touched):
        candidates.setdefault(ResourceKey(row.kind, row.organization, row.name), row)
    ids: list[int] = []
    deleted: set[ResourceKey] = set()
    for key, row in candidates.items():
        if inside(row):
            if matches(terms, row.labels or {}):
                ids.append(row.id)
            else:
                deleted.add(key)  # no longer selected
        elif key in gone_visible:
            deleted.add(key)  # moved out of the scope
    deleted |= gone_visible - candidates.keys()  # deleted outright
    return Delta(now.revision, since, now.database, _documents(tx, sorted(ids)), sorted(deleted))


def _documents(tx: Tx, ids: list[int]) -> Iterator[dict[str, Any]]:
    for chunk in _chunks(ids):
        yield from tx.render(list(tx.conn.execute(_BY_IDS, {"ids": chunk})))


def _gone(reason: str) -> str:
    return f"cannot answer changes since that revision: {reason}; read the whole export (without since) instead"


def _dependents(tx: Tx, organizations: set[str]) -> Iterator[Any]:
    """The organizations' documents whose status counts what the organization holds."""
    names = sorted(organizations)
    for chunk in _chunks(names):
        clauses = []
        if TENANT_KIND in DEPENDENT_STATUSES:
            clauses.append(and_(resources.c.kind == TENANT_KIND, resources.c.name.in_(chunk)))
        if _DEPENDENT_SCOPED:
            clauses.append(and_(resources.c.kind.in_(_DEPENDENT_SCOPED), resources.c.organization.in_(chunk)))
        if clauses:
            yield from tx.conn.execute(select(*_KEY_COLUMNS).where(or_(*clauses)))


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


__all__ = ["RETAINED", "Delta", "Head", "changed_since", "head", "record"]
