"""One database transaction of the service: lookups, visibility, versions and the checks deferred to its end."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, Connection, Row, and_, bindparam, or_, select

from tenancy_kinds import KINDS, SLUG_PATTERN, TENANT_KIND, ResourceKey
from tenancy_backend.db import RESOURCE_VERSION_COUNTER, counters, resources
from tenancy_backend.documents import DOCUMENT_COLUMNS, RenderContext, render
from tenancy_kinds.billing import Prices
from tenancy_backend.errors import NotFound
from tenancy_backend.scope import Scope

MAX_DEPTH = 256  # deeper hierarchies are refused as cycles; walks never loop forever

_SLUG = re.compile(SLUG_PATTERN)

# The statements every write transaction runs, built once: building a Core statement (and its cache key)
# costs more than SQLite takes to run it, and a changeset runs a dozen of them under the write lock.
_COUNTER = counters.c.name == RESOURCE_VERSION_COUNTER
_LOCK = select(counters.c.value).where(_COUNTER).with_for_update()
_SAVE_VERSION = counters.update().where(_COUNTER).values(value=bindparam("version"))
_FIND = select(*DOCUMENT_COLUMNS).where(
    resources.c.kind == bindparam("kind"),
    resources.c.organization == bindparam("organization"),
    resources.c.name == bindparam("name"),
)
_FIND_MANY = select(*DOCUMENT_COLUMNS).where(
    resources.c.kind == bindparam("kind"),
    resources.c.organization == bindparam("organization"),
    resources.c.name.in_(bindparam("names", expanding=True)),
)
CHUNK = 500  # names per IN (...) list
KEYS_CHUNK = 200  # keys per OR of (kind, organization, name): well within SQLite's expression depth


def _find_keys(keys: list[ResourceKey]) -> Any:
    """The rows of these keys: an OR of (kind, organization, name), which both databases look up in the
    unique index key by key (SQLite reads every row for a row-value IN list)."""
    c = resources.c
    return select(*DOCUMENT_COLUMNS).where(
        or_(*(and_(c.kind == k.kind, c.organization == k.organization, c.name == k.name) for k in keys))
    )


def is_slug(value: object) -> bool:
    return isinstance(value, str) and bool(_SLUG.match(value))


@dataclass
class Pending:
    """Checks deferred to the end of a transaction, so that a changeset is judged by its outcome.

    Each set remembers which resource asked for the check (for error paths in a changeset).
    """

    recheck: dict[ResourceKey, None] = field(default_factory=dict)  # references + domain membership
    plan_orgs: dict[str, ResourceKey] = field(default_factory=dict)  # gated kinds need a paid plan
    downgraded_orgs: set[str] = field(default_factory=set)
    hierarchy_orgs: set[str] = field(default_factory=set)  # parent exists, no cycle
    domains_changed_orgs: set[str] = field(default_factory=set)
    deleted_orgs: set[str] = field(default_factory=set)  # must hold nothing at the end
    released: dict[ResourceKey, None] = field(default_factory=dict)  # deleted; nothing may still name them
    quota_domains: dict[str, ResourceKey] = field(default_factory=dict)  # domain → who changed its usage


class Tx:
    """A transaction: the connection, the caller's scope, the clock, and per-transaction caches."""

    def __init__(self, conn: Connection, scope: Scope, now: datetime, prices: Prices, *, write: bool) -> None:
        self.conn = conn
        self.scope = scope
        self.now = now
        self.prices = prices
        self.write = write
        self.pending = Pending()
        self._orgs: dict[str, Row[Any] | None] = {}
        self._known: dict[ResourceKey, Row[Any]] = {}  # rows as stored: see remember()
        self._version: int | None = None
        self._version_dirty = False
        # For the change log (changes.py): the version counter when the transaction began, every
        # organization as first read (its place in the hierarchy before this transaction), and the
        # changes no resource_version shows.
        self.start_version: int | None = None
        self.first_seen: dict[str, Row[Any] | None] = {}
        self.dropped: dict[ResourceKey, None] = {}  # deleted along with their organization
        self.touched: dict[ResourceKey, None] = {}  # a document changed without a new resourceVersion

    # --- versions (writers are serialised on the counter row) ------------------------------------

    def lock(self) -> None:
        """Serialise with every other writer, across processes, and read the version counter."""
        self._version = int(self.conn.execute(_LOCK).scalar_one())
        self.start_version = self._version

    def next_version(self) -> int:
        assert self._version is not None, "lock() first"
        self._version += 1
        self._version_dirty = True
        return self._version

    @property
    def versions_drawn(self) -> bool:
        return self._version_dirty

    def save_version(self) -> None:
        if self._version_dirty:
            self.conn.execute(_SAVE_VERSION, {"version": self._version})
            self._version_dirty = False

    # --- lookups ---------------------------------------------------------------------------------

    def find(self, kind: str, organization: str, name: str) -> Row[Any] | None:
        if not KINDS[kind].scoped:
            return self.organization(name)
        row = self._known.get(ResourceKey(kind, organization, name))
        if row is not None:
            return row
        return self.conn.execute(_FIND, {"kind": kind, "organization": organization, "name": name}).first()

    def organization(self, name: str) -> Row[Any] | None:
        if name not in self._orgs:
            where = {"kind": TENANT_KIND, "organization": "", "name": name}
            self._seen(name, self.conn.execute(_FIND, where).first())
        return self._orgs[name]

    def _seen(self, name: str, row: Row[Any] | None) -> None:
        self._orgs[name] = row
        self.first_seen.setdefault(name, row)

    def remember_organization(self, row: Row[Any]) -> None:
        self._orgs[row.name] = row

    def remember(self, rows: Mapping[ResourceKey, Row[Any]]) -> None:
        """Rows as they are stored now (just inserted or updated with RETURNING, or read by `prefetch`):
        `find` and `find_many` answer from them instead of reading them again, until they are forgotten."""
        self._known.update(rows)

    def forget(self) -> None:
        """Called before a create or a deletion, which may replace or delete rows beside their own (an
        archived subscription, an organization's contents). An update rewrites only its own row, and
        remembers it as written."""
        self._known.clear()

    def prefetch(self, keys: list[ResourceKey]) -> None:
        """Read the rows of many resources, and their organizations, in a few queries ahead of writes that
        look them up one by one (a changeset's run of updates across thousands of organizations)."""
        unread = sorted({k.organization or k.name for k in keys} - self._orgs.keys())
        for start in range(0, len(unread), CHUNK):
            names = unread[start : start + CHUNK]
            where = {"kind": TENANT_KIND, "organization": "", "names": names}
            found = {row.name: row for row in self.conn.execute(_FIND_MANY, where)}
            for name in names:
                self._seen(name, found.get(name))
        scoped = [k for k in dict.fromkeys(keys) if KINDS[k.kind].scoped and k not in self._known]
        for start in range(0, len(scoped), KEYS_CHUNK):
            rows = self.conn.execute(_find_keys(scoped[start : start + KEYS_CHUNK]))
            self._known.update((ResourceKey(row.kind, row.organization, row.name), row) for row in rows)

    def find_many(self, kind: str, organization: str, names: list[str]) -> dict[str, Row[Any]]:
        """Rows by name, in chunks (a changeset may touch thousands); rows remembered as stored are not
        read again."""
        found: dict[str, Row[Any]] = {}
        unread = []
        for name in names:
            row = self._known.get(ResourceKey(kind, organization, name))
            if row is None:
                unread.append(name)
            else:
                found[name] = row
        for start in range(0, len(unread), CHUNK):
            where = {"kind": kind, "organization": organization, "names": unread[start : start + CHUNK]}
            found.update((row.name, row) for row in self.conn.execute(_FIND_MANY, where))
        return found

    def forget_organization(self, name: str) -> None:
        self._orgs.pop(name, None)

    def visible(self, organization: str) -> bool:
        """Whether the organization exists and lies within the caller's scope."""
        if not is_slug(organization):
            return False
        current: str | None = organization
        for _ in range(MAX_DEPTH):
            if current is None:
                return False
            row = self.organization(current)
            if row is None:
                return False
            if self.scope.is_root or current == self.scope.organization:
                return True
            current = row.parent
        return False

    def require_organization(self, organization: str, path: str = "") -> Row[Any]:
        """The organization's row; NotFound when it does not exist or lies outside the scope (alike)."""
        if not self.visible(organization):
            message = f"organization {organization!r} not found"
            raise NotFound(message, [{"path": path, "message": message}] if path else [])
        row = self.organization(organization)
        assert row is not None
        return row

    def subtree(self, root: str) -> CTE:
        """The names of `root` and every organization below it (recursive; UNION stops on cycles)."""
        base = select(resources.c.name).where(resources.c.kind == TENANT_KIND, resources.c.name == root)
        tree = base.cte("subtree", recursive=True)
        below = select(resources.c.name).where(resources.c.kind == TENANT_KIND, resources.c.parent == tree.c.name)
        return tree.union(below)

    # --- rendering -------------------------------------------------------------------------------

    def context(self) -> RenderContext:
        return RenderContext(self.conn, self.prices, self.now)

    def render(self, rows: list[Row[Any]]) -> list[dict[str, Any]]:
        return render(self.context(), rows)


__all__ = ["CHUNK", "Pending", "Tx", "is_slug"]
