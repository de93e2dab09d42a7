"""Create, update and delete resources inside a transaction: the resource row, its claims and references,
and the deferred checks; a run of creates with a handful of statements (`create_many`).

Documents are parsed beforehand (`parsing`); the state-dependent rules that can only be judged on the
outcome (references, quotas, plans, domains, hierarchy) are recorded in `tx.pending` (`checks.defer`) and
judged at the end (`integrity`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Row, bindparam, delete
from sqlalchemy.exc import IntegrityError

from tenancy_kinds import KINDS, Kind, ResourceKey
from tenancy_backend.bulk import insert_rows
from tenancy_backend.checks import (
    already_exists,
    check_archived_final,
    check_if_match,
    check_immutable,
    check_name_free,
    check_password_unshared,
    check_place,
    check_rights,
    check_rotation,
    defer,
    existing,
)
from tenancy_backend.claims import write_claims
from tenancy_backend.db import claims, insert_or_skip, refs, resources, tokens
from tenancy_backend.documents import DOCUMENT_COLUMNS, DOCUMENT_FIELDS, iso
from tenancy_backend.errors import Conflict, Forbidden, Invalid, NotFound, Taken
from tenancy_backend.parsing import Parsed
from tenancy_backend.references import ref_rows, write_refs
from tenancy_backend.rows import new_row, row_values
from tenancy_backend.transaction import Tx

MAX_NAME_TRIES = 1000


def create(tx: Tx, p: Parsed) -> dict[str, Any]:
    tx.forget()  # a create may replace an archived row
    check_name_free(tx, p)
    check_place(tx, p, old=None)
    check_rights(tx, p, old=None)
    check_password_unshared(tx, p)
    row = _insert(tx, p)
    if row is None:
        taken = tx.find(p.kind.name, p.organization, p.name)
        if taken is None or not p.kind.archived(taken.spec):
            raise already_exists(p.key)
        # An archived subscription keeps its name only until a new one takes it (a replace).
        tx.conn.execute(delete(resources).where(resources.c.id == taken.id))
        row = _insert(tx, p)
        assert row is not None
    write_claims(tx, row.id, p)
    write_refs(tx, row.id, p)
    defer(tx, p, old=None)
    return _rendered(tx, row)


def create_many(tx: Tx, ps: list[Parsed]) -> list[dict[str, Any]] | None:
    """Several creates with a handful of statements (a changeset of new resources): the same rows, claims,
    references and deferred checks as `create` one by one, or None, having written nothing, when any of
    them might not go through as a plain insert (a check refuses, a name or a unique value is taken, or
    one create of the run depends on another): then the caller creates them one by one, for the exact error.
    """
    if not _plain_creates(tx, ps):
        return None
    # A name or unique value already taken shows as an integrity error: undone to the savepoint, nothing
    # of the run stays (index-driven inserts, where look-ups first would be planned on an empty table's
    # statistics by PostgreSQL and read every row). Versions drawn for it are skipped, which is harmless.
    savepoint = tx.conn.begin_nested()
    try:
        inserted = _insert_run(tx, ps)
    except IntegrityError:
        savepoint.rollback()
        return None
    savepoint.commit()
    tx.remember({p.key: row for p, row in zip(ps, inserted, strict=True)})
    for p, row in zip(ps, inserted, strict=True):
        defer(tx, p, old=None)
        if not p.kind.scoped:
            tx.remember_organization(row)
    return tx.render(inserted)


def _insert_run(tx: Tx, ps: list[Parsed]) -> list[Row[Any]]:
    stamp = iso(tx.now)
    rows = [new_row(tx, p, stamp) for p in ps]
    # Not `sort_by_parameter_order`: SQLite has no sentinel for it, and SQLAlchemy then inserts one row per
    # statement. The rows come back in any order and are put back in the run's by their (unique) uid.
    returned = {row[_UID]: row for row in insert_rows(tx, resources, rows)}
    inserted = [returned[row["uid"]] for row in rows]
    claim_rows = [
        {"namespace": c.namespace, "key": c.key, "resource_id": row.id}
        for p, row in zip(ps, inserted, strict=True)
        for c in p.claims
    ]
    if claim_rows:
        insert_rows(tx, claims, claim_rows)
    reference_rows = [r for p, row in zip(ps, inserted, strict=True) for r in ref_rows(row.id, p)]
    if reference_rows:
        insert_rows(tx, refs, reference_rows)
    return inserted


def _plain_creates(tx: Tx, ps: list[Parsed]) -> bool:
    """Whether every create passes its checks now, no two claim one name or unique value, and none of them
    needs another of the run (an organization and what it holds, a parent and its child)."""
    keys = {p.key for p in ps}
    if len(keys) != len(ps) or any(p.password_fingerprint for p in ps):
        return False  # a password is checked against those stored before it, one create at a time
    new_orgs = {p.name for p in ps if not p.kind.scoped}
    # A quota's status counts the mailboxes on its domain: rendered after the whole run, it would count
    # users that one-by-one creates insert after it.
    mailboxes = {p.columns["mailbox_domain"] for p in ps} - {None}
    if any((limit := p.kind.limit_of(p.spec)) is not None and limit[0] in mailboxes for p in ps):
        return False
    try:
        for p in ps:
            if p.organization in new_orgs or p.columns["parent"] in new_orgs:
                return False
            check_place(tx, p, old=None)
            check_rights(tx, p, old=None)
    except (Conflict, Forbidden, Invalid, NotFound):
        return False
    claimed = [(c.namespace, c.key) for p in ps for c in p.claims]
    return len(set(claimed)) == len(claimed)


def _insert(tx: Tx, p: Parsed) -> Row[Any] | None:
    """The new row, or None when the name is taken (nothing inserted)."""
    row = new_row(tx, p, iso(tx.now))
    # Values as parameters, not in the statement: one cached statement per set of columns (SQLAlchemy
    # would otherwise coerce and cache-key every literal of every row, ~1 ms a row).
    return tx.conn.execute(_insert_statement(tx.conn.dialect.name, tx.conn), row).first()


_INSERTS: dict[str, Any] = {}
_UID = DOCUMENT_FIELDS.index("uid")
_UPDATE = resources.update().where(resources.c.id == bindparam("row_id")).returning(*DOCUMENT_COLUMNS)


def _insert_statement(dialect: str, conn: Any) -> Any:
    if dialect not in _INSERTS:
        _INSERTS[dialect] = insert_or_skip(conn, resources).returning(*DOCUMENT_COLUMNS)
    return _INSERTS[dialect]


def _rendered(tx: Tx, row: Row[Any]) -> dict[str, Any]:
    if not KINDS[row.kind].scoped:
        tx.remember_organization(row)
    return tx.render([row])[0]


def with_free_name(tx: Tx, p: Parsed) -> Parsed:
    """`p` under the first free one of its name, name-2, name-3, ... (as Kubernetes' generateName): for
    resources whose name the backend derives, such as those a directory creates over SCIM."""
    for n in range(1, MAX_NAME_TRIES + 1):
        suffix = "" if n == 1 else f"-{n}"
        name = p.name[: 63 - len(suffix)].rstrip("-") + suffix
        if tx.find(p.kind.name, p.organization, name) is None:
            return p if name == p.name else replace(p, name=name)
    message = f"no free name left for {p.key} (tried {MAX_NAME_TRIES}); choose a name"
    raise Taken(message, [{"path": "metadata.name", "message": message}])


def update(tx: Tx, p: Parsed, if_match: str | None = None) -> dict[str, Any]:
    row = existing(tx, p.kind, p.organization, p.name)
    check_if_match(row, if_match)
    check_immutable(p, row)
    check_archived_final(p, row)
    check_place(tx, p, old=row)
    check_rights(tx, p, old=row)
    check_rotation(p, row)
    check_password_unshared(tx, p)
    values = row_values(p)
    unchanged = all(getattr(row, k) == v for k, v in values.items()) and p.password_hash is None
    if unchanged:
        return tx.render([row])[0]
    changes = values | {"resource_version": tx.next_version(), "updated_at": iso(tx.now)}
    if p.password_hash is not None:
        changes["password_hash"] = p.password_hash
        changes["password_fingerprint"] = p.password_fingerprint
    updated = tx.conn.execute(_UPDATE, {**changes, "row_id": row.id}).one()  # values as parameters: see _insert
    tx.remember({p.key: updated})  # the only row an update writes
    write_claims(tx, row.id, p, old=row.spec)
    write_refs(tx, row.id, p, old=row.spec)
    defer(tx, p, old=row)
    return _rendered(tx, updated)


def remove(tx: Tx, kind: Kind, organization: str, name: str, if_match: str | None = None) -> dict[str, Any] | None:
    """Delete a resource (archive it, for kinds whose deletion archives); the archived document or None."""
    tx.forget()  # an organization's deletion drops rows beside its own
    row = existing(tx, kind, organization, name)
    check_if_match(row, if_match)
    key = ResourceKey(kind.name, organization, name)
    if row.protected:
        message = (
            f"{key} is protected and cannot be deleted; clear metadata.protected with an update first"
        )
        raise Conflict(message, [{"path": "metadata.protected", "message": message}])
    if kind.archive is not None:
        return _archive(tx, row, kind)
    if not kind.scoped:
        _remove_organization(tx, name)
    tx.conn.execute(delete(resources).where(resources.c.id == row.id))
    tx.pending.released[key] = None
    return None


def _archive(tx: Tx, row: Row[Any], kind: Kind) -> dict[str, Any]:
    archive = kind.archive
    assert archive is not None
    if not archive.archived(row.spec):
        spec = {**row.spec, archive.field: archive.value}
        statement = (
            resources.update()
            .where(resources.c.id == row.id)
            .values(spec=spec, resource_version=tx.next_version(), updated_at=iso(tx.now))
        )
        row = tx.conn.execute(statement.returning(*DOCUMENT_COLUMNS)).one()
    return tx.render([row])[0]


def _remove_organization(tx: Tx, name: str) -> None:
    """Whatever dies with an organization: its archived subscriptions and the tokens scoped to it.

    Anything else it still holds is reported at the end of the transaction (and the deletion refused).
    """
    for kind in KINDS.values():
        if kind.archive is not None:
            dropped = tx.conn.execute(
                delete(resources)
                .where(
                    resources.c.kind == kind.name,
                    resources.c.organization == name,
                    resources.c.spec[kind.archive.field].as_string() == kind.archive.value,
                )
                .returning(resources.c.kind, resources.c.organization, resources.c.name)
            )
            tx.dropped.update(dict.fromkeys(ResourceKey(*r) for r in dropped))  # tombstones: changes.record
    tx.conn.execute(tokens.update().where(tokens.c.organization == name).values(revoked_at=iso(tx.now)))
    tx.forget_organization(name)
    tx.pending.deleted_orgs.add(name)


__all__ = ["create", "create_many", "remove", "update", "with_free_name"]
