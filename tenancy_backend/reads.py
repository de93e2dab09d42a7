"""Reads inside a read transaction: one resource, resources by uid, name or unique value, a page of a
collection, and every resource in scope in batches (an export)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select

from tenancy_kinds import TENANT_KIND, Kind
from tenancy_backend.checks import existing
from tenancy_backend.db import claims, resources
from tenancy_backend.documents import DOCUMENT_COLUMNS
from tenancy_backend.errors import Invalid
from tenancy_backend.selectors import encode_cursor, selector_clause
from tenancy_backend.transaction import Tx, is_slug

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EXPORT_BATCH = 1000


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def get(tx: Tx, kind: Kind, organization: str, name: str) -> dict[str, Any]:
    return tx.render([existing(tx, kind, organization, name)])[0]


def find(
    tx: Tx,
    kind: Kind,
    organization: str | None,
    uids: Sequence[str],
    names: Sequence[str],
    unique: Sequence[tuple[str, str]],
) -> list[dict[str, Any]]:
    """See `Service.find`."""
    backend_wide = {u.field: u for u in kind.claims if u.within is None}  # unique across the backend
    if kind.scoped:
        tx.require_organization(organization or "")
    owner = (organization or "") if kind.scoped else ""
    rows = {row.id: row for row in tx.find_many(kind.name, owner, [n for n in names if is_slug(n)]).values()}
    for spec_field, value in unique:
        if spec_field not in backend_wide or not isinstance(value, str):
            raise Invalid(f"{kind.name}.spec.{spec_field} is not unique across the backend")
        claim = backend_wide[spec_field]
        held = {"kind": kind.name, "organization": owner, "namespace": claim.namespace, "key": claim.normalise(value)}
        rows.update((row.id, row) for row in tx.conn.execute(_BY_CLAIM, held))
    wanted = [u for u in dict.fromkeys(uids) if isinstance(u, str)]
    for start in range(0, len(wanted), EXPORT_BATCH):
        where = {"kind": kind.name, "organization": owner, "uids": wanted[start : start + EXPORT_BATCH]}
        rows.update((row.id, row) for row in tx.conn.execute(_BY_UID, where))
    found = [rows[i] for i in sorted(rows) if kind.scoped or tx.visible(rows[i].name)]
    return tx.render(found)


def check_limit(limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        message = f"limit must be an integer between 1 and {MAX_LIMIT} (got {limit!r})"
        raise Invalid(message, [{"path": "limit", "message": message}])


def page(tx: Tx, kind: Kind, organization: str | None, terms: Any, limit: int, after: int) -> Page:
    """One page of a collection after the id `after`, ordered by creation (id)."""
    where = [resources.c.kind == kind.name, resources.c.id > after, selector_clause(terms)]
    if kind.scoped:
        tx.require_organization(organization or "")
        where.append(resources.c.organization == (organization or ""))
    elif not tx.scope.is_root:
        tree = tx.subtree(tx.scope.organization or "")
        where.append(resources.c.name.in_(select(tree.c.name)))
    query = select(*DOCUMENT_COLUMNS).where(*where).order_by(resources.c.id).limit(limit + 1)
    rows = list(tx.conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(tx.render(rows), encode_cursor(rows[-1].id) if more else None)


def export(tx: Tx, root: str | None, terms: Any) -> Iterator[dict[str, Any]]:
    """Every resource of `root`'s subtree (None: all), matching the selector `terms`, in batches."""
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
            select(*DOCUMENT_COLUMNS).where(resources.c.id > after, *where).order_by(resources.c.id).limit(EXPORT_BATCH)
        )
        rows = list(tx.conn.execute(query))
        if not rows:
            return
        yield from tx.render(rows)
        after = rows[-1].id


# Statements of every read, built once (building one costs more than SQLite takes to run it).
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

__all__ = ["DEFAULT_LIMIT", "EXPORT_BATCH", "MAX_LIMIT", "Page", "check_limit", "export", "find", "get", "page"]
