"""The checks of one write: those judged on the spot, before a row is touched (the resource exists and may
be seen, If-Match, a free name, its place, the rights it grants, immutable fields, a shared password),
and those recorded in `tx.pending` (`defer`) to be judged on the transaction's outcome (`integrity`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, select

from tenancy_kinds import KINDS, Kind, ResourceKey, Role
from tenancy_backend.db import resources
from tenancy_backend.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed, Taken
from tenancy_backend.parsing import Parsed
from tenancy_backend.transaction import Tx, is_slug

LEGAL_REPRESENTATIVE = Role.LEGAL_REPRESENTATIVE.value


def already_exists(key: ResourceKey) -> Conflict:
    return Taken(
        f"{key} already exists; update it (PUT) or choose another name",
        [{"path": "metadata.name", "message": f"{key} already exists"}],
    )


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


def check_name_free(tx: Tx, p: Parsed) -> None:
    """A name already taken is said first (as a manifest set says a resource declared twice), where the
    caller may see it; elsewhere the insert finds it."""
    if p.kind.scoped:
        tx.require_organization(p.organization)
    elif not tx.visible(p.name):
        return
    taken = tx.find(p.kind.name, p.organization, p.name)
    if taken is not None and not p.kind.archived(taken.spec):
        raise already_exists(p.key)


def check_place(tx: Tx, p: Parsed, old: Row[Any] | None) -> None:
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
                f"{tx.scope.organization!r} or one of its sub-organizations "
                "(a top-level organization needs a root token)"
            )
            raise NotFound(message, [{"path": "spec.parent", "message": message}])
        return
    if not tx.visible(parent):
        message = f"parent organization {parent!r} not found; create it first or fix spec.parent"
        raise NotFound(message, [{"path": "spec.parent", "message": message}])


def check_rights(tx: Tx, p: Parsed, old: Row[Any] | None) -> None:
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
    .where(
        resources.c.password_fingerprint == bindparam("fingerprint"),
        resources.c.organization != bindparam("organization"),
    )
    .limit(1)
)


def check_password_unshared(tx: Tx, p: Parsed) -> None:
    """Users of different organizations must not share a password (SPEC §2). Which organization has it
    is not said: that would tell one tenant about another."""
    if p.password_fingerprint is None:
        return
    held = {"fingerprint": p.password_fingerprint, "organization": p.organization}
    taken = tx.conn.execute(_PASSWORD_ELSEWHERE, held)
    if taken.first() is not None:
        message = (
            "this password is already used by a user of another organization; users of different "
            "organizations must not share a password: choose another"
        )
        raise Conflict(message, [{"path": "spec.password", "message": message}])


def check_immutable(p: Parsed, row: Row[Any]) -> None:
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


def check_archived_final(p: Parsed, row: Row[Any]) -> None:
    archive = p.kind.archive
    if archive is not None and archive.reactivates(row.spec, p.spec):
        message = archive.refusal(p.key)
        raise Conflict(message, [{"path": f"spec.{archive.field}", "message": message}])


def check_rotation(p: Parsed, row: Row[Any]) -> None:
    for secret, version in p.kind.rotation.items():
        if p.spec.get(version) != row.spec.get(version) and p.password_hash is None:
            message = (
                f"spec.{version} changed from {row.spec.get(version)!r} to {p.spec.get(version)!r} "
                f"but no {secret} was sent; send the new {secret} together with the new {version}"
            )
            raise Invalid(message, [{"path": f"spec.{secret}", "message": message}])


# --- checks deferred to the end of the transaction ------------------------------------------------


def defer(tx: Tx, p: Parsed, old: Row[Any] | None) -> None:
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
    "already_exists",
    "check_archived_final",
    "check_if_match",
    "check_immutable",
    "check_name_free",
    "check_password_unshared",
    "check_place",
    "check_rights",
    "check_rotation",
    "defer",
    "existing",
]
