"""The reference rows of a resource (a team's members and leader, the user of an alias...): what it names,
by field, kept in step with its spec; the rules on references read them at the end of the transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete

from tenancy_kinds import KINDS, Reference
from tenancy_backend.bulk import insert_rows
from tenancy_backend.db import refs
from tenancy_backend.parsing import Parsed
from tenancy_backend.transaction import CHUNK, Tx


def write_refs(tx: Tx, resource_id: int, p: Parsed, old: dict[str, Any] | None = None) -> None:
    """The resource's reference rows made to match its spec (`old`: the spec it had, None on create) by
    difference: only the references it adds are inserted and only those it drops are deleted (a team of
    10,000 members and one newcomer writes one row); unchanged references keep their rows.

    The rows held are those of the old spec: every writer writes a spec and its references together."""
    rows = ref_rows(resource_id, p)
    if old is not None:
        held = {(ref.field, ref.kind, name) for ref in _kept(p) for name in ref.names(old)}
        wanted = {(r["field"], r["target_kind"], r["target_name"]) for r in rows}
        stale: dict[tuple[str, str], list[str]] = {}
        for field, kind, name in held - wanted:
            stale.setdefault((field, kind), []).append(name)
        for (field, kind), names in stale.items():
            for start in range(0, len(names), CHUNK):
                chunk = names[start : start + CHUNK]
                tx.conn.execute(_DELETE, {"resource_id": resource_id, "field": field, "kind": kind, "names": chunk})
        rows = [r for r in rows if (r["field"], r["target_kind"], r["target_name"]) not in held]
    if rows:
        insert_rows(tx, refs, rows)


def _kept(p: Parsed) -> list[Reference]:
    # The hierarchy (an Organization's parent) lives in resources.parent, not here.
    return [ref for ref in p.kind.references if KINDS[ref.kind].scoped]


# Built once (building a statement costs more than SQLite takes to run it).
_DELETE = delete(refs).where(
    refs.c.resource_id == bindparam("resource_id"),
    refs.c.field == bindparam("field"),
    refs.c.target_kind == bindparam("kind"),
    refs.c.target_name.in_(bindparam("names", expanding=True)),
)


def ref_rows(resource_id: int, p: Parsed) -> list[dict[str, Any]]:
    return [
        {
            "resource_id": resource_id,
            "organization": p.organization,
            "field": ref.field,
            "target_kind": ref.kind,
            "target_name": target,
        }
        for ref in _kept(p)
        for target in ref.names(p.spec)
    ]


__all__ = ["ref_rows", "write_refs"]
