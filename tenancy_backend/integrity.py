"""The rules judged on a transaction's outcome: references, quotas, plans, domains, hierarchy, deletions.

They run after every operation of a request or changeset and before the commit, so that a changeset is
judged by where it ends (a user replaced, a team member dropped then deleted) and not by its steps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import bindparam, func, select

from tenancy_kinds import KINDS, LIMIT_KINDS, PAID_PLANS, PLAN_GATED_KINDS, TENANT_KIND, ResourceKey, plan_allows_gated
from tenancy_backend.db import refs, resources
from tenancy_backend.documents import used_addresses
from tenancy_backend.errors import Violation
from tenancy_backend.transaction import CHUNK, MAX_DEPTH, Tx

CONFLICT = 409
UNPROCESSABLE = 422
SHOWN = 10  # at most this many offenders are named in a message

# The queries every changeset's checks run, built once (building a statement costs more than running it).
_LIMITS = select(
    resources.c.mail_domain, resources.c.kind, resources.c.organization, resources.c.name, resources.c.spec
).where(resources.c.kind.in_(LIMIT_KINDS), resources.c.mail_domain.in_(bindparam("domains", expanding=True)))
_GATED_COUNTS = (
    select(resources.c.kind, func.count())
    .where(resources.c.organization == bindparam("organization"), resources.c.kind.in_(PLAN_GATED_KINDS))
    .group_by(resources.c.kind)
    .order_by(resources.c.kind)
)
_NAMES_PRESENT = select(resources.c.name).where(
    resources.c.kind == bindparam("kind"),
    resources.c.organization == bindparam("organization"),
    resources.c.name.in_(bindparam("names", expanding=True)),
)

Check = Callable[[Tx], list[Violation]]


def verify(tx: Tx) -> list[Violation]:
    """Every violation of the deferred rules, in a stable order, duplicates removed."""
    found: dict[tuple[int, str, str], Violation] = {}
    for check in CHECKS:
        for v in check(tx):
            found.setdefault((v.status, v.path, v.message), v)
    return list(found.values())


def _org_key(name: str) -> ResourceKey:
    return ResourceKey(TENANT_KIND, "", name)


def _names(keys: Iterable[Any], total: int) -> str:
    shown = [str(ResourceKey(*k)) for k in keys]
    more = total - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _deleted_organizations(tx: Tx) -> list[Violation]:
    out = []
    for name in sorted(tx.pending.deleted_orgs):
        if tx.organization(name) is not None:
            continue  # deleted and created again in the same changeset
        children = tx.conn.execute(
            select(resources.c.name)
            .where(resources.c.kind == TENANT_KIND, resources.c.parent == name)
            .order_by(resources.c.name)
            .limit(SHOWN)
        ).scalars().all()
        held_query = select(resources.c.kind, resources.c.organization, resources.c.name).where(
            resources.c.organization == name
        )
        held = tx.conn.execute(held_query.order_by(resources.c.id).limit(SHOWN)).all()
        if not children and not held:
            continue
        total = tx.conn.execute(select(func.count()).select_from(held_query.subquery())).scalar_one()
        parts = []
        if children:
            parts.append("sub-organizations " + ", ".join(repr(c) for c in children))
        if held:
            parts.append(f"{total} resource(s): {_names(held, total)}")
        out.append(
            Violation(
                CONFLICT,
                "",
                f"Organization {name!r} cannot be deleted: it still has {' and '.join(parts)}; delete them first",
                _org_key(name),
            )
        )
    return out


def _hierarchy(tx: Tx) -> list[Violation]:
    out = []
    for name in sorted(tx.pending.hierarchy_orgs):
        row = tx.organization(name)
        if row is None or row.parent is None:
            continue
        if tx.organization(row.parent) is None:
            out.append(
                Violation(
                    UNPROCESSABLE,
                    "spec.parent",
                    f"parent organization {row.parent!r} of {name!r} does not exist; "
                    "create it first or fix spec.parent",
                    _org_key(name),
                )
            )
            continue
        chain = _ancestors(tx, name)
        if chain and chain[-1] == name:
            out.append(
                Violation(
                    CONFLICT,
                    "spec.parent",
                    f"parent {row.parent!r} would make a cycle: {' → '.join([name, *chain])}; "
                    "an organization cannot sit below itself",
                    _org_key(name),
                )
            )
    return out


def _ancestors(tx: Tx, name: str) -> list[str]:
    """The parents above `name`, ending with `name` again when they loop."""
    chain: list[str] = []
    row = tx.organization(name)
    current = row.parent if row is not None else None
    while current is not None and len(chain) < MAX_DEPTH:
        chain.append(current)
        if current == name:
            break
        parent_row = tx.organization(current)
        current = parent_row.parent if parent_row is not None else None
    if len(chain) >= MAX_DEPTH:
        chain.append(name)
    return chain


def _plans(tx: Tx) -> list[Violation]:
    out = []
    for name, culprit in sorted(tx.pending.plan_orgs.items()):
        row = tx.organization(name)
        if row is None or plan_allows_gated(row.spec):
            continue
        counts = tx.conn.execute(_GATED_COUNTS, {"organization": name}).all()
        if not counts:
            continue
        held = ", ".join(f"{n} {KINDS[k].plural}" for k, n in counts)
        plan = row.spec.get("plan")
        paid = " or ".join(repr(p) for p in sorted(PAID_PLANS))
        if name in tx.pending.downgraded_orgs:
            message = (
                f"Organization {name!r} cannot move to plan {plan!r} while it holds {held}: users, teams, "
                f"aliases and mailbox quotas need plan {paid}; delete them first or keep a paid plan"
            )
            out.append(Violation(CONFLICT, "spec.plan", message, _org_key(name)))
        else:
            message = (
                f"Organization {name!r} is on plan {plan!r}: users, teams, aliases and mailbox quotas can only "
                f"be managed on plan {paid}; upgrade the organization's spec.plan first"
            )
            out.append(Violation(CONFLICT, "metadata.organization", message, culprit))
    return out


def _rechecks(tx: Tx) -> list[Violation]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key in tx.pending.recheck:
        groups[(key.kind, key.organization)].append(key.name)
    out = []
    for (kind, organization), names in groups.items():
        rows = tx.find_many(kind, organization, names)
        present = _referenced_present(tx, kind, organization, [rows[n] for n in names if n in rows])
        for name in names:
            row = rows.get(name)
            if row is not None:
                key = ResourceKey(kind, organization, name)
                out.extend(_domain_membership(tx, key, row))
                out.extend(_references_exist(tx, key, row.spec, present))
    return out


def _referenced_present(tx: Tx, kind: str, organization: str, rows: list[Any]) -> dict[str, set[str]]:
    """Of every name the rows reference, those that exist, by target kind: one query per target kind and
    500 names, not one per row (a changeset creates thousands of teams and aliases)."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for ref in KINDS[kind].references:
        if KINDS[ref.kind].scoped:  # the hierarchy (an organization's parent) is checked on its own
            for row in rows:
                wanted[ref.kind].update(ref.names(row.spec))
    present: dict[str, set[str]] = {}
    for target, names in wanted.items():
        listed = sorted(names)
        present[target] = set()
        for start in range(0, len(listed), CHUNK):
            where = {"kind": target, "organization": organization, "names": listed[start : start + CHUNK]}
            present[target].update(tx.conn.execute(_NAMES_PRESENT, where).scalars())
    return present


def _domain_membership(tx: Tx, key: ResourceKey, row: Any) -> list[Violation]:
    rule = KINDS[key.kind].on_own_domain
    if rule is None or row.mail_domain is None:  # no such rule, or exempt (an external user)
        return []
    org = tx.organization(key.organization)
    domains = list(org.spec.get("domains", [])) if org is not None else []
    if row.mail_domain in domains:
        return []
    message = f"{key}: {rule.message(str(row.spec.get(rule.field)), key.organization, domains)}"
    return [Violation(UNPROCESSABLE, f"spec.{rule.field}", message, key)]


def _references_exist(tx: Tx, key: ResourceKey, spec: dict[str, Any], present: dict[str, set[str]]) -> list[Violation]:
    out = []
    for ref in KINDS[key.kind].references:
        if not KINDS[ref.kind].scoped:
            continue
        names = ref.names(spec)
        if not names:
            continue
        found = present.get(ref.kind, set())
        listed = spec.get(ref.field) if ref.many else None
        for missing in (n for n in names if n not in found):
            message = (
                f"{key}: {ref.kind} {missing!r} does not exist in organization {key.organization!r}; "
                f"create it first or remove it from spec.{ref.field}"
            )
            at = f"[{listed.index(missing)}]" if isinstance(listed, list) else ""
            out.append(Violation(UNPROCESSABLE, f"spec.{ref.field}{at}", message, key))
    return out


def _domains_dropped(tx: Tx) -> list[Violation]:
    out = []
    for name in sorted(tx.pending.domains_changed_orgs):
        row = tx.organization(name)
        if row is None:
            continue
        domains = list(row.spec.get("domains", []))
        offenders = tx.conn.execute(
            select(resources.c.kind, resources.c.organization, resources.c.name, resources.c.mail_domain)
            .where(
                resources.c.organization == name,
                resources.c.mail_domain.is_not(None),  # None: no domain of ours (an external user)
                resources.c.mail_domain.not_in(domains),
            )
            .order_by(resources.c.id)
            .limit(SHOWN)
        ).all()
        if offenders:
            dropped = ", ".join(repr(d) for d in dict.fromkeys(o.mail_domain for o in offenders))
            users = _names([o[:3] for o in offenders], len(offenders))
            message = (
                f"Organization {name!r} cannot drop domain {dropped}: still used by {users}; "
                "delete or change those first"
            )
            out.append(Violation(CONFLICT, "spec.domains", message, _org_key(name)))
    return out


def _released(tx: Tx) -> list[Violation]:
    out = []
    for key in tx.pending.released:
        if tx.find(*key) is not None:
            continue  # deleted and created again (a replace)
        referrers = tx.conn.execute(
            select(resources.c.kind, resources.c.organization, resources.c.name, refs.c.field)
            .join(refs, refs.c.resource_id == resources.c.id)
            .where(
                refs.c.organization == key.organization,
                refs.c.target_kind == key.kind,
                refs.c.target_name == key.name,
            )
            .order_by(resources.c.id)
            .limit(SHOWN)
        ).all()
        if referrers:
            fields: dict[ResourceKey, list[str]] = defaultdict(list)
            for r in referrers:
                fields[ResourceKey(*r[:3])].append(r.field)
            named = ", ".join(f"{k} ({', '.join(v)})" for k, v in fields.items())
            message = (
                f"{key} cannot be deleted: it is still named by {named}; remove it from them (or delete them) first"
            )
            out.append(Violation(CONFLICT, "", message, key))
    return out


def _quotas(tx: Tx) -> list[Violation]:
    pending = sorted(tx.pending.quota_domains.items())
    # The quotas, then the addresses used on the domains that have one: two queries per 500 domains, not
    # two per domain (a changeset of quotas or users touches a domain each).
    quotas: dict[str, Any] = {}
    domains = [domain for domain, _ in pending]
    for start in range(0, len(domains), CHUNK):
        for row in tx.conn.execute(_LIMITS, {"domains": domains[start : start + CHUNK]}):
            quotas.setdefault(row.mail_domain, row)  # one at most: the quota-domain claim is unique
    limited = [domain for domain in domains if domain in quotas]
    usage: dict[str, int] = {}
    for start in range(0, len(limited), CHUNK):
        usage.update(used_addresses(tx.conn, limited[start : start + CHUNK]))
    out = []
    for domain, culprit in pending:
        quota = quotas.get(domain)
        if quota is None:
            continue  # a domain without a quota is unlimited
        used = usage.get(domain, 0)
        limit = KINDS[quota.kind].limit
        assert limit is not None
        allowed = int(quota.spec[limit.maximum])
        if used <= allowed:
            continue
        quota_key = ResourceKey(quota.kind, quota.organization, quota.name)
        if culprit == quota_key:
            message = (
                f"{quota_key}: {limit.maximum} {allowed} is below the {used} addresses in use on domain "
                f"{domain!r}; delete users on that domain first, then lower the quota"
            )
            out.append(Violation(CONFLICT, f"spec.{limit.maximum}", message, culprit))
        else:
            mailbox = KINDS[culprit.kind].mailbox
            field = mailbox.address if mailbox else ""
            message = (
                f"{culprit}: domain {domain!r} has no free address: {quota_key} allows {allowed} and "
                f"{used} would be in use; raise the quota's spec.{limit.maximum} first"
            )
            out.append(Violation(CONFLICT, f"spec.{field}" if field else "", message, culprit))
    return out


CHECKS: tuple[Check, ...] = (
    _deleted_organizations,
    _released,
    _hierarchy,
    _plans,
    _domains_dropped,
    _rechecks,
    _quotas,
)

__all__ = ["verify"]
