"""The reference rows of a resource (a team's members, a share's grantees, ...): what it names, by field,
kept in step with its spec; the rules on references read them at the end of the transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from tenancy_kinds import KINDS
from tenancy_backend.bulk import insert_rows
from tenancy_backend.db import refs
from tenancy_backend.parsing import Parsed
from tenancy_backend.transaction import Tx


def write_refs(tx: Tx, resource_id: int, p: Parsed, *, created: bool = False) -> None:
    # The hierarchy (an Organization's parent) lives in resources.parent, not here.
    kept = [ref for ref in p.kind.references if KINDS[ref.kind].scoped]
    if not kept:
        return
    if not created:
        tx.conn.execute(delete(refs).where(refs.c.resource_id == resource_id))
    rows = ref_rows(resource_id, p)
    if rows:
        insert_rows(tx, refs, rows)


def ref_rows(resource_id: int, p: Parsed) -> list[dict[str, Any]]:
    # The hierarchy (an Organization's parent) lives in resources.parent, not here.
    return [
        {
            "resource_id": resource_id,
            "organization": p.organization,
            "field": ref.field,
            "target_kind": ref.kind,
            "target_name": target,
        }
        for ref in p.kind.references
        if KINDS[ref.kind].scoped
        for target in ref.names(p.spec)
    ]


__all__ = ["ref_rows", "write_refs"]
