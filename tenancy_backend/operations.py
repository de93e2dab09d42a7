"""Create, update and delete one resource inside a transaction; documents parsed and checked beforehand.

`prepare()` is pure (schema, per-kind spec rules, password strength and hashing) and runs before the
transaction takes the write lock. The state-dependent rules that can only be judged on the outcome
(references, quotas, plans, domains, hierarchy) are recorded in `tx.pending` and checked at the end.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import Enum
from typing import Any, Literal

import orjson
from pydantic import ValidationError
from sqlalchemy import Result, Row, Table, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from tenancy_kinds import KINDS, STACK_LABEL, ClaimValue, Kind, ResourceKey, Role, dotted
from tenancy_backend.db import RecordsInsert, claims, insert_or_skip, refs, resources, tokens
from tenancy_backend.documents import DOCUMENT_COLUMNS, DOCUMENT_FIELDS, iso
from tenancy_backend.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionFailed,
    Taken,
    Violation,
    refuse,
)
from tenancy_backend.passwords import fingerprint, hash_password
from tenancy_kinds.messages import explain
from tenancy_kinds.passwords import weakness
from tenancy_backend.transaction import Tx, is_slug

TRIAL_DAYS = 14
UNPROCESSABLE = 422
LEGAL_REPRESENTATIVE = Role.LEGAL_REPRESENTATIVE.value


class Keep(Enum):
    """An update leaves this part of the stored resource as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP
Directory = dict[str, Any] | None | Literal[Keep.KEEP]  # see resources.directory
MAX_NAME_TRIES = 1000


@dataclass(frozen=True)
class Prepared:
    """A validated document, ready to be written: the spec with defaults and without secrets."""

    kind: Kind
    organization: str  # '' for Organizations
    name: str
    spec: dict[str, Any]
    labels: dict[str, str]
    protected: bool
    password_hash: str | None  # set when the document carried a password
    password_fingerprint: str | None = None  # likewise (passwords.fingerprint), when the database has a pepper
    directory: Directory = KEEP  # what a directory (SCIM) keeps about it; KEEP: as stored (None on create)
    # Derived once, when the document is prepared (before the write lock): a bulk create reads them often.
    key: ResourceKey = field(init=False, compare=False)
    columns: dict[str, Any] = field(init=False, compare=False, repr=False)  # denormalised: see _row_values
    claims: tuple[ClaimValue, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", ResourceKey(self.kind.name, self.organization, self.name))
        object.__setattr__(self, "columns", columns(self.kind, self.spec))
        object.__setattr__(self, "claims", tuple(self.kind.claim_values(self.spec)))


def columns(kind: Kind, spec: dict[str, Any]) -> dict[str, Any]:
    """What the queries of rules and statuses read from a spec, kept in columns of its own; every value is
    a fact of the table of kinds (the hierarchy, a person's role and billed tier, the domain a value must
    lie on, the domain a mailbox is consumed on)."""
    parent = kind.parent_field
    return {
        "parent": spec.get(parent) if parent else None,
        "role": spec.get(kind.role) if kind.role else None,
        "tier": spec.get(kind.billing) if kind.billing else None,
        "mail_domain": kind.owned_domain(spec),
        "mailbox_domain": kind.mailbox_domain(spec),
    }


# --- parsing --------------------------------------------------------------------------------------


class Judged(Invalid):
    """A well-formed document that one of its own rules (or the password's strength) refuses: told apart
    from a malformed one, so that a create says first that its name is taken, as a manifest set does."""


def kind_named(name: Any, path: str = "kind") -> Kind:
    kind = KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        message = f"unknown kind {name!r}; known kinds: {', '.join(KINDS)}"
        raise Invalid(message, [{"path": path, "message": message}])
    return kind


def prepare(
    kind: Kind,
    organization: str | None,
    document: Any,
    *,
    name: str | None = None,
    pepper: int | None = None,
    directory: Directory = KEEP,
) -> Prepared:
    """Validate a document for `kind` in `organization` (and, for updates, `name` from the path); a
    password is hashed, and fingerprinted with the database's `pepper`.

    Missing `metadata.organization` / `metadata.name` are filled from the path; different ones are refused.
    """
    if not isinstance(document, dict):
        raise Invalid(
            "the body must be a resource document (a JSON object with apiVersion, kind, metadata and spec)",
            [{"path": "", "message": "expected a JSON object"}],
        )
    check_text(document)
    if directory is not KEEP:
        check_text(directory, "status.directory")
    document = _filled(kind, organization, document, name)
    try:
        model = kind.validate_wire(document)
    except ValidationError as e:
        errors = validation_errors(e, model=kind.wire_document, value=document, sensitive=kind.sensitive)
        raise Invalid(f"invalid {kind.name} document: {_summary(errors)}", errors) from None
    meta = model.metadata  # type: ignore[attr-defined]
    owner = meta.organization if kind.scoped else ""
    _require_match(kind, organization, name, owner, meta.name)
    spec = model.spec.model_dump(by_alias=True, mode="json")  # type: ignore[attr-defined]
    kind.fill_derived(spec)  # stored filled in: a User's username is its email unless it says otherwise
    secrets_given = {f: spec.pop(f) for f in kind.sensitive if f in spec}
    violations = [Violation(UNPROCESSABLE, dotted(path), message) for path, message in kind.findings(meta.name, spec)]
    password = secrets_given.get("password")
    if password is not None:
        reason = weakness(password)
        if reason:
            violations.append(Violation(UNPROCESSABLE, "spec.password", f"the password is too weak: {reason}"))
    if violations:
        refused = refuse(violations)
        raise Judged(refused.detail, refused.errors)
    return Prepared(
        kind=kind,
        organization=owner,
        name=meta.name,
        spec=spec,
        labels=dict(meta.labels),
        protected=meta.protected,
        password_hash=hash_password(password) if password is not None else None,
        password_fingerprint=fingerprint(password, pepper) if password is not None and pepper is not None else None,
        directory=directory,
    )


def check_text(value: Any, path: str = "") -> None:
    """Refuse strings no database stores faithfully: NUL characters and unpaired surrogates."""
    if not _surely_clean(value):
        _check_text(value, path)


def _surely_clean(value: Any) -> bool:
    """True when no string in `value` can hold a NUL or an unpaired surrogate, judged by one orjson call
    instead of a walk in Python: orjson refuses surrogates and writes NUL as `\\u0000`. It serialises every
    dict, list and string the walk would visit, so anything it cannot vouch for (an error, a false alarm
    such as a literal backslash-u0000) is left to the walk, which finds the path."""
    try:
        return b"\\u0000" not in orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: surrogates, non-string keys, integers beyond 64 bits, ...
        return False


def _check_text(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, path)
            _check_text(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_text(v, f"{path}[{i}]")
    elif isinstance(value, str):
        bad = "\x00" in value
        if not bad:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                bad = True
        if bad:
            message = "text may not contain NUL characters or unpaired surrogates"
            raise Invalid(message, [{"path": path, "message": message}])


def _filled(kind: Kind, organization: str | None, document: dict[str, Any], name: str | None) -> dict[str, Any]:
    meta = document.get("metadata")
    if not isinstance(meta, dict):
        return document
    meta = dict(meta)
    if kind.scoped and organization and "organization" not in meta:
        meta["organization"] = organization
    if name is not None and "name" not in meta:
        meta["name"] = name
    return {**document, "metadata": meta}


def _require_match(kind: Kind, organization: str | None, name: str | None, owner: str, doc_name: str) -> None:
    problems = []
    if kind.scoped and organization is not None and owner != organization:
        problems.append(
            Violation(
                UNPROCESSABLE,
                "metadata.organization",
                f"metadata.organization {owner!r} does not match the organization {organization!r} in the path; "
                "a resource cannot move between organizations (create it in the other one instead)",
            )
        )
    if name is not None and doc_name != name:
        problems.append(
            Violation(
                UNPROCESSABLE,
                "metadata.name",
                f"metadata.name {doc_name!r} does not match the name {name!r} in the path; "
                "renaming is not supported (create the resource under the new name instead)",
            )
        )
    if problems:
        raise refuse(problems)


def validation_errors(
    error: ValidationError, prefix: str = "", model: Any = None, value: Any = None, sensitive: frozenset[str] = frozenset()
) -> list[dict[str, str]]:
    """pydantic errors → `[{path, message}]` with camelCase document paths such as `spec.domains[0]`, worded by
    the project's one translator (`tenancy_kinds.messages`), as manifests and Pulumi word them."""
    out = []
    for explained in explain(model, value, error.errors(include_url=False), sensitive):
        path = dotted(explained.path)
        out.append({"path": f"{prefix}.{path}" if prefix and path else prefix or path, "message": explained.text})
    return out


def _summary(errors: list[dict[str, str]]) -> str:
    head = "; ".join(f"{e['path'] or 'document'}: {e['message']}" for e in errors[:3])
    return head + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")


# --- writing --------------------------------------------------------------------------------------


def create(tx: Tx, p: Prepared) -> dict[str, Any]:
    tx.forget_inserted()
    _check_name_free(tx, p)
    _check_place(tx, p, old=None)
    _check_rights(tx, p, old=None)
    _check_password_unshared(tx, p)
    row = _insert(tx, p)
    if row is None:
        taken = tx.find(p.kind.name, p.organization, p.name)
        if taken is None or not p.kind.archived(taken.spec):
            raise already_exists(p.key)
        # An archived subscription keeps its name only until a new one takes it (a replace).
        tx.conn.execute(delete(resources).where(resources.c.id == taken.id))
        row = _insert(tx, p)
        assert row is not None
    _write_claims(tx, row.id, p, created=True)
    _write_refs(tx, row.id, p, created=True)
    _defer(tx, p, old=None)
    return _rendered(tx, row)


def already_exists(key: ResourceKey) -> Conflict:
    return Taken(
        f"{key} already exists; update it (PUT) or choose another name",
        [{"path": "metadata.name", "message": f"{key} already exists"}],
    )


def create_many(tx: Tx, ps: list[Prepared]) -> list[dict[str, Any]] | None:
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
    tx.remember_inserted({p.key: row for p, row in zip(ps, inserted, strict=True)})
    for p, row in zip(ps, inserted, strict=True):
        _defer(tx, p, old=None)
        if not p.kind.scoped:
            tx.remember_organization(row)
    return tx.render(inserted)


def _insert_run(tx: Tx, ps: list[Prepared]) -> list[Row[Any]]:
    stamp = iso(tx.now)
    rows = [_new_row(tx, p, stamp) for p in ps]
    # Not `sort_by_parameter_order`: SQLite has no sentinel for it, and SQLAlchemy then inserts one row per
    # statement. The rows come back in any order and are put back in the run's by their (unique) uid.
    returned = {row[_UID]: row for row in _insert_rows(tx, resources, rows)}
    inserted = [returned[row["uid"]] for row in rows]
    claim_rows = [
        {"namespace": c.namespace, "key": c.key, "resource_id": row.id}
        for p, row in zip(ps, inserted, strict=True)
        for c in p.claims
    ]
    if claim_rows:
        _insert_rows(tx, claims, claim_rows)
    ref_rows = [r for p, row in zip(ps, inserted, strict=True) for r in _ref_rows(row.id, p)]
    if ref_rows:
        _insert_rows(tx, refs, ref_rows)
    return inserted


def _plain_creates(tx: Tx, ps: list[Prepared]) -> bool:
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
            _check_place(tx, p, old=None)
            _check_rights(tx, p, old=None)
    except (Conflict, Forbidden, Invalid, NotFound):
        return False
    claimed = [(c.namespace, c.key) for p in ps for c in p.claims]
    return len(set(claimed)) == len(claimed)


def _insert(tx: Tx, p: Prepared) -> Row[Any] | None:
    """The new row, or None when the name is taken (nothing inserted)."""
    row = _new_row(tx, p, iso(tx.now))
    # Values as parameters, not in the statement: one cached statement per set of columns (SQLAlchemy
    # would otherwise coerce and cache-key every literal of every row, ~1 ms a row).
    return tx.conn.execute(_insert_statement(tx.conn.dialect.name, tx.conn), row).first()


def _insert_rows(tx: Tx, table: Table, rows: list[dict[str, Any]]) -> Result[Any]:
    """A run of rows in one statement: the rows as one JSON parameter on PostgreSQL (see RecordsInsert), a
    multi-row INSERT on SQLite (SQLAlchemy's executemany); resources come back as DOCUMENT_COLUMNS."""
    if tx.conn.dialect.name == "postgresql":
        records = _RECORDS_INSERTS[table.name]
        return tx.conn.execute(records.statement, records.parameters(rows))
    return tx.conn.execute(_RUN_INSERTS[table.name], rows)


_INSERTS: dict[str, Any] = {}
_RUN_INSERTS = {
    "resources": resources.insert().returning(*DOCUMENT_COLUMNS),
    "claims": claims.insert(),
    "refs": refs.insert(),
}
_RECORDS_INSERTS = {
    "resources": RecordsInsert(resources, returning=DOCUMENT_COLUMNS),
    "claims": RecordsInsert(claims),
    "refs": RecordsInsert(refs),
}
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


def with_free_name(tx: Tx, p: Prepared) -> Prepared:
    """`p` under the first free one of its name, name-2, name-3, ... (as Kubernetes' generateName): for
    resources whose name the backend derives, such as those a directory creates over SCIM."""
    for n in range(1, MAX_NAME_TRIES + 1):
        suffix = "" if n == 1 else f"-{n}"
        name = p.name[: 63 - len(suffix)].rstrip("-") + suffix
        if tx.find(p.kind.name, p.organization, name) is None:
            return p if name == p.name else replace(p, name=name)
    message = f"no free name left for {p.key} (tried {MAX_NAME_TRIES}); choose a name"
    raise Taken(message, [{"path": "metadata.name", "message": message}])


def update(tx: Tx, p: Prepared, if_match: str | None = None) -> dict[str, Any]:
    tx.forget_inserted()
    row = existing(tx, p.kind, p.organization, p.name)
    check_if_match(row, if_match)
    _check_immutable(p, row)
    _check_archived_final(p, row)
    _check_place(tx, p, old=row)
    _check_rights(tx, p, old=row)
    _check_rotation(p, row)
    _check_password_unshared(tx, p)
    values = _row_values(p)
    unchanged = all(getattr(row, k) == v for k, v in values.items()) and p.password_hash is None
    if unchanged:
        return tx.render([row])[0]
    changes = values | {"resource_version": tx.next_version(), "updated_at": iso(tx.now)}
    if p.password_hash is not None:
        changes["password_hash"] = p.password_hash
        changes["password_fingerprint"] = p.password_fingerprint
    new_row = tx.conn.execute(_UPDATE, {**changes, "row_id": row.id}).one()  # values as parameters: see _insert
    _write_claims(tx, row.id, p)
    _write_refs(tx, row.id, p)
    _defer(tx, p, old=row)
    return _rendered(tx, new_row)


def remove(tx: Tx, kind: Kind, organization: str, name: str, if_match: str | None = None) -> dict[str, Any] | None:
    """Delete a resource (archive it, for kinds whose deletion archives); the archived document or None."""
    tx.forget_inserted()
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


def existing(tx: Tx, kind: Kind, organization: str, name: str) -> Row[Any]:
    """The resource's row; NotFound (alike) when it, or its organization, is missing or outside the scope."""
    if kind.scoped:
        tx.require_organization(organization)
    elif not tx.visible(name):
        raise NotFound(f"{ResourceKey(kind.name, '', name)} not found")
    row = tx.find(kind.name, organization, name) if is_slug(name) else None
    if row is None:
        raise NotFound(f"{ResourceKey(kind.name, organization, name)} not found")
    return row


def check_if_match(row: Row[Any], if_match: str | None) -> None:
    if if_match is None:
        return
    wanted = [t.strip().removeprefix("W/").strip('"') for t in str(if_match).split(",")]
    if "*" in wanted or str(row.resource_version) in wanted:
        return
    current = str(row.resource_version)
    raise PreconditionFailed(
        f"{ResourceKey(row.kind, row.organization, row.name)} changed since it was read "
        f"(If-Match {if_match!r}, current resourceVersion {current!r}); read it again and retry",
        [{"path": "metadata.resourceVersion", "message": f"current resourceVersion is {current!r}"}],
    )


# --- checks made on the spot ----------------------------------------------------------------------


def _check_name_free(tx: Tx, p: Prepared) -> None:
    """A name already taken is said first (as a manifest set says a resource declared twice), where the
    caller may see it; elsewhere the insert finds it."""
    if p.kind.scoped:
        tx.require_organization(p.organization)
    elif not tx.visible(p.name):
        return
    taken = tx.find(p.kind.name, p.organization, p.name)
    if taken is not None and not p.kind.archived(taken.spec):
        raise already_exists(p.key)


def _check_place(tx: Tx, p: Prepared, old: Row[Any] | None) -> None:
    """The organization (or, for an Organization, its parent) exists and lies within the caller's scope."""
    if p.kind.scoped:
        tx.require_organization(p.organization)
        return
    parent = p.columns["parent"]
    if old is not None and parent == old.parent:
        return
    if parent is None:
        if not tx.scope.is_root:
            message = (
                f"{tx.scope.describe()} can only create organizations below it: set spec.parent to "
                f"{tx.scope.organization!r} or one of its sub-organizations (a top-level organization needs a root token)"
            )
            raise NotFound(message, [{"path": "spec.parent", "message": message}])
        return
    if not tx.visible(parent):
        message = f"parent organization {parent!r} not found; create it first or fix spec.parent"
        raise NotFound(message, [{"path": "spec.parent", "message": message}])


def _check_rights(tx: Tx, p: Prepared, old: Row[Any] | None) -> None:
    granted = p.spec.get("role") == LEGAL_REPRESENTATIVE
    already = old is not None and old.spec.get("role") == LEGAL_REPRESENTATIVE
    if granted and not already and not tx.scope.legal_representative:
        message = (
            f"granting role {LEGAL_REPRESENTATIVE!r} needs a token that holds that right "
            "(tenancy token create --legal-representative); use another role or another token"
        )
        raise Forbidden(message, [{"path": "spec.role", "message": message}])


_PASSWORD_ELSEWHERE = (
    select(resources.c.id)
    .where(resources.c.password_fingerprint == bindparam("fingerprint"), resources.c.organization != bindparam("organization"))
    .limit(1)
)


def _check_password_unshared(tx: Tx, p: Prepared) -> None:
    """Users of different organizations must not share a password (SPEC §2). Which organization has it
    is not said: that would tell one tenant about another."""
    if p.password_fingerprint is None:
        return
    taken = tx.conn.execute(_PASSWORD_ELSEWHERE, {"fingerprint": p.password_fingerprint, "organization": p.organization})
    if taken.first() is not None:
        message = (
            "this password is already used by a user of another organization; users of different "
            "organizations must not share a password: choose another"
        )
        raise Conflict(message, [{"path": "spec.password", "message": message}])


def _check_immutable(p: Prepared, row: Row[Any]) -> None:
    changed = sorted(f for f in p.kind.immutable if p.spec.get(f) != row.spec.get(f))
    if changed:
        raise Conflict(
            f"{p.key}: {', '.join('spec.' + f for f in changed)} cannot change: this field is immutable; "
            "replace the resource (delete it and create it again)",
            [
                {
                    "path": f"spec.{f}",
                    "message": f"this field is immutable; replace the resource "
                    f"({row.spec.get(f)!r} → {p.spec.get(f)!r})",
                }
                for f in changed
            ],
        )


def _check_archived_final(p: Prepared, row: Row[Any]) -> None:
    archive = p.kind.archive
    if archive is not None and archive.reactivates(row.spec, p.spec):
        message = archive.refusal(p.key)
        raise Conflict(message, [{"path": f"spec.{archive.field}", "message": message}])


def _check_rotation(p: Prepared, row: Row[Any]) -> None:
    for secret, version in p.kind.rotation.items():
        if p.spec.get(version) != row.spec.get(version) and p.password_hash is None:
            message = (
                f"spec.{version} changed from {row.spec.get(version)!r} to {p.spec.get(version)!r} "
                f"but no {secret} was sent; send the new {secret} together with the new {version}"
            )
            raise Invalid(message, [{"path": f"spec.{secret}", "message": message}])


# --- rows, claims, references, deferred checks ----------------------------------------------------


def _row_values(p: Prepared) -> dict[str, Any]:
    values = {
        "spec": p.spec,
        "labels": p.labels,
        "stack": p.labels.get(STACK_LABEL),
        "protected": p.protected,
        **p.columns,
    }
    if p.directory is not KEEP:
        values["directory"] = p.directory
    return values


def _new_row(tx: Tx, p: Prepared, stamp: str) -> dict[str, Any]:
    """A new resource row. Every row has the same columns, so a run of them inserts as one executemany."""
    extra = _created_values(p, tx)
    return dict(
        uid=str(uuid.uuid4()),
        kind=p.kind.name,
        organization=p.organization,
        name=p.name,
        resource_version=tx.next_version(),
        created_at=stamp,
        updated_at=stamp,
        password_hash=p.password_hash,
        password_fingerprint=p.password_fingerprint,
        subscription_id=extra.get("subscription_id"),
        trial_ends_at=extra.get("trial_ends_at"),
        **{"directory": None, **_row_values(p)},  # every new row has the same columns (see above)
    )


def _created_values(p: Prepared, tx: Tx) -> dict[str, Any]:
    """Values the backend assigns once, at creation (a subscription's id and trial)."""
    if p.kind.archive is None:
        return {}
    return {
        "subscription_id": "sub_" + secrets.token_hex(8),
        "trial_ends_at": iso(tx.now + timedelta(days=TRIAL_DAYS)),
    }


def _write_claims(tx: Tx, resource_id: int, p: Prepared, *, created: bool = False) -> None:
    wanted = {(c.namespace, c.key): c for c in p.claims}
    if not wanted and created:
        return
    held = {} if created else {
        (ns, key): claim_id
        for claim_id, ns, key in tx.conn.execute(
            select(claims.c.id, claims.c.namespace, claims.c.key).where(claims.c.resource_id == resource_id)
        )
    }
    stale = [claim_id for nk, claim_id in held.items() if nk not in wanted]
    if stale:
        tx.conn.execute(delete(claims).where(claims.c.id.in_(stale)))
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


def _write_refs(tx: Tx, resource_id: int, p: Prepared, *, created: bool = False) -> None:
    # The hierarchy (an Organization's parent) lives in resources.parent, not here.
    kept = [ref for ref in p.kind.references if KINDS[ref.kind].scoped]
    if not kept:
        return
    if not created:
        tx.conn.execute(delete(refs).where(refs.c.resource_id == resource_id))
    rows = _ref_rows(resource_id, p)
    if rows:
        _insert_rows(tx, refs, rows)


def _ref_rows(resource_id: int, p: Prepared) -> list[dict[str, Any]]:
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


def _defer(tx: Tx, p: Prepared, old: Row[Any] | None) -> None:
    pending = tx.pending
    kind = p.kind
    if kind.plan_gated:
        pending.plan_orgs.setdefault(p.organization, p.key)
    if kind.on_own_domain is not None or any(KINDS[r.kind].scoped for r in kind.references):
        pending.recheck[p.key] = None
    limit = kind.limit_of(p.spec)
    for domain in (p.columns["mailbox_domain"], limit[0] if limit else None):
        if domain:
            pending.quota_domains.setdefault(domain, p.key)  # a mailbox arrives, or a limit moves
    if kind.scoped:
        return
    # An Organization: its hierarchy, its plan, and what its domains still carry.
    if old is None or p.columns["parent"] != old.parent:
        pending.hierarchy_orgs.add(p.name)
    if old is not None:
        pending.plan_orgs[p.name] = p.key
        if p.spec.get("plan") != old.spec.get("plan"):
            pending.downgraded_orgs.add(p.name)
        if set(p.spec.get("domains", [])) != set(old.spec.get("domains", [])):
            pending.domains_changed_orgs.add(p.name)


__all__ = [
    "KEEP",
    "Directory",
    "Judged",
    "Keep",
    "Prepared",
    "already_exists",
    "check_if_match",
    "check_text",
    "create",
    "create_many",
    "existing",
    "kind_named",
    "prepare",
    "remove",
    "update",
    "validation_errors",
    "with_free_name",
]
