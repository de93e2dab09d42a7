"""The claim rows of a resource: the unique values it holds (an email, an address, a domain), kept in step
with its spec; a value another resource holds is refused, naming the holder only within the caller's scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, tuple_

from tenancy_kinds import ClaimValue, ResourceKey, dotted
from tenancy_backend.db import claims, insert_or_skip, resources
from tenancy_backend.errors import Conflict, Taken
from tenancy_backend.parsing import Parsed
from tenancy_backend.transaction import Tx


def write_claims(tx: Tx, resource_id: int, p: Parsed, old: dict[str, Any] | None = None) -> None:
    """The resource's claim rows made to match its spec (`old`: the spec it had, None on create) by
    difference. The claims held are those of the old spec: every writer writes a spec and its claims
    together (as the reference rows, `write_refs`)."""
    wanted = {(c.namespace, c.key): c for c in p.claims}
    held = set() if old is None else set(p.kind.claim_keys(old))
    stale = [nk for nk in held if nk not in wanted]
    if stale:
        where = tuple_(claims.c.namespace, claims.c.key).in_(stale)
        tx.conn.execute(delete(claims).where(claims.c.resource_id == resource_id, where))
    new = [c for nk, c in wanted.items() if nk not in held]
    if not new:
        return
    rows = [{"namespace": c.namespace, "key": c.key, "resource_id": resource_id} for c in new]
    # One row as parameters keeps the statement cacheable; several as a multi-row VALUES.
    statement = insert_or_skip(tx.conn, claims)
    if len(rows) == 1:
        result = tx.conn.execute(statement.returning(claims.c.namespace, claims.c.key), rows[0])
    else:
        result = tx.conn.execute(statement.values(rows).returning(claims.c.namespace, claims.c.key))
    inserted = {(r.namespace, r.key) for r in result}
    for claim in new:
        if (claim.namespace, claim.key) not in inserted:
            _refuse_taken(tx, claim)


def _refuse_taken(tx: Tx, claim: ClaimValue) -> None:
    query = (
        select(resources.c.kind, resources.c.organization, resources.c.name)
        .join(claims, claims.c.resource_id == resources.c.id)
        .where(claims.c.namespace == claim.namespace, claims.c.key == claim.key)
    )
    holder = tx.conn.execute(query).first()
    if holder is None:  # released meanwhile; cannot happen while writers are serialised
        raise Conflict(f"{claim.what} is in use; retry", [{"path": dotted(claim.path), "message": "in use"}])
    owner = holder.organization or holder.name  # an organization's key has organization ''
    who = str(ResourceKey(*holder)) if tx.visible(owner) else "a resource of another organization"
    message = f"{claim.what} is already used by {who}; {claim.rule}"
    raise Taken(message, [{"path": dotted(claim.path), "message": message}])


__all__ = ["write_claims"]
