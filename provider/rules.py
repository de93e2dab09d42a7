"""Cross-resource checks over a whole manifest set: everything of SPEC §2 that needs no backend.

Pure but for secret resolution (environment variables and password files). Each rule is a small function
registered either for the whole set (`@set_rule`) or for each resource (`@resource_rule`). What a kind
holds, claims, references or may break on its own is read from the table of kinds (`tenancy_kinds`),
which the backend reads too: no fact is restated here. A finding is located at the field it is about and
says what is wrong and how to fix it. A secret value never appears in a message.
"""

from __future__ import annotations

import difflib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from provider.errors import Finding, ManifestError, SecretError, Severity
from tenancy_kinds import (
    ADMIN_ROLES,
    EXPANSION_LABELS,
    KINDS,
    RESERVED_LABEL_PREFIX,
    STACK_LABEL,
    ClaimValue,
    Kind,
    ResourceKey,
    plan_allows_gated,
    to_snake,
)
from provider.manifests import Manifest, ManifestSet
from provider.secrets import SecretInput, SecretValues, describe, input_of, resolve
from tenancy_kinds.passwords import weakness

WARNING = Severity.WARNING
MAX_ADMINS = 3
ADMIN_SHARE = 5  # administrators may be at most a fifth of an organization's users

SetRule = Callable[["Context"], Iterable[Finding]]
ResourceRule = Callable[[Manifest, "Context"], Iterable[Finding]]
SET_RULES: list[SetRule] = []
RESOURCE_RULES: list[ResourceRule] = []


def set_rule(fn: SetRule) -> SetRule:
    SET_RULES.append(fn)
    return fn


def resource_rule(fn: ResourceRule) -> ResourceRule:
    """Register a rule run on each manifest (what a kind allows is read from the table of kinds)."""
    RESOURCE_RULES.append(fn)
    return fn


@dataclass
class Context:
    """The manifest set, indexed once for the rules."""

    manifests: list[Manifest]
    env: Mapping[str, str]
    resolve_secrets: bool
    allow_outside: bool = False  # fromFile may leave the manifest directory (apply --allow-secret-outside)
    by_key: dict[ResourceKey, Manifest] = field(default_factory=dict)
    organizations: dict[str, Manifest] = field(default_factory=dict)
    by_org: dict[str, list[Manifest]] = field(default_factory=lambda: defaultdict(list))
    resolved: SecretValues = field(default_factory=dict)  # the secrets resolved while judging them
    inputs: list[SecretInput] = field(default_factory=list)  # what their sources read (named, no value)
    _specs: dict[int, dict[str, Any]] = field(default_factory=dict)
    _mailboxes: dict[str, dict[str, int]] = field(default_factory=dict)
    _domains: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, manifest_set: ManifestSet, env: Mapping[str, str], resolve_secrets: bool, allow_outside: bool = False
    ) -> Context:
        ordered = sorted(manifest_set.manifests, key=lambda m: m.origin)
        ctx = cls(ordered, env, resolve_secrets, allow_outside)
        for m in ordered:
            ctx.by_key[m.key] = m
            if m.kind.scoped:
                ctx.by_org[m.key.organization].append(m)
            else:
                ctx.organizations[m.key.name] = m
        return ctx

    def spec(self, m: Manifest) -> dict[str, Any]:
        """The spec with the kind's defaults filled in (rules reason about effective values)."""
        spec = self._specs.get(id(m))
        if spec is None:
            spec = self._specs[id(m)] = m.kind.effective(m.spec)
        return spec

    def mailboxes(self, organization: str) -> dict[str, int]:
        """Per mail domain, the organization's resources that consume a mailbox there, counted once."""
        counts = self._mailboxes.get(organization)
        if counts is None:
            counts = self._mailboxes[organization] = {}
            for m in self.by_org.get(organization, []):
                domain = m.kind.mailbox_domain(self.spec(m))
                if domain is not None:
                    counts[domain] = counts.get(domain, 0) + 1
        return counts

    def domains(self, organization: str) -> list[str]:
        """The organization's domains, lowercased (a new list each call)."""
        domains = self._domains.get(organization)
        if domains is None:
            org = self.organizations.get(organization)
            domains = self._domains[organization] = [d.lower() for d in self.spec(org)["domains"]] if org else []
        return list(domains)


@dataclass(frozen=True)
class Verdict:
    """What the rules found, and the secrets they resolved to judge them (sent later by apply, never
    resolved twice)."""

    findings: list[Finding]
    secrets: SecretValues
    inputs: tuple[SecretInput, ...] = ()  # what the secrets' sources read: the plan memo's key


def judge(
    manifest_set: ManifestSet,
    env: Mapping[str, str] = os.environ,
    resolve_secrets: bool = True,
    allow_outside: bool = False,
) -> Verdict:
    """Every finding about the set (the loader's warnings included, sorted by file and line), and the
    secrets resolved on the way."""
    ctx = Context.of(manifest_set, env, resolve_secrets, allow_outside)
    findings: set[Finding] = set(manifest_set.warnings)
    for m in ctx.manifests:
        for rule in RESOURCE_RULES:
            findings.update(rule(m, ctx))
    for set_check in SET_RULES:
        findings.update(set_check(ctx))
    return Verdict(sorted(findings), ctx.resolved, tuple(ctx.inputs))


def check(
    manifest_set: ManifestSet,
    env: Mapping[str, str] = os.environ,
    resolve_secrets: bool = True,
    allow_outside: bool = False,
) -> list[Finding]:
    """Every finding about the set (the loader's warnings included), sorted by file and line."""
    return judge(manifest_set, env, resolve_secrets, allow_outside).findings


def require_valid(
    manifest_set: ManifestSet, env: Mapping[str, str] = os.environ, resolve_secrets: bool = True
) -> list[Finding]:
    """`check`, raising `ManifestError` when any finding is an error; returns the warnings otherwise."""
    findings = check(manifest_set, env, resolve_secrets)
    if any(f.severity is Severity.ERROR for f in findings):
        raise ManifestError(findings)
    return findings


# --- helpers ------------------------------------------------------------------------------------------


def _hint(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _owned(ctx: Context, m: Manifest) -> list[str] | None:
    """The domains of a scoped manifest's organization, or None when the organization is not declared."""
    return ctx.domains(m.key.organization) if m.key.organization in ctx.organizations else None


def _count(n: int, kind: Kind) -> str:
    """`1 mailbox quota`, `7 users`: a kind counted in words (the plural is the API's collection name)."""
    if n == 1:
        return f"1 {to_snake(kind.name).strip('_').replace('_', ' ')}"
    return f"{n} {kind.plural.replace('-', ' ')}"


def _listing(domains: list[str]) -> str:
    return ", ".join(domains) if domains else "it declares no domains"


# --- references (read from the table of kinds) ----------------------------------------------------------


@resource_rule
def organization_declared(m: Manifest, ctx: Context) -> Iterator[Finding]:
    org = m.key.organization
    if m.kind.scoped and org not in ctx.organizations:
        hint = _hint(org, ctx.organizations)
        yield m.finding(
            ("metadata", "organization"),
            f"organization '{org}' is not declared in these manifests{hint}; declare it (kind: Organization) "
            "or fix the name",
        )


@resource_rule
def references_resolve(m: Manifest, ctx: Context) -> Iterator[Finding]:
    for ref in m.kind.references:
        value = m.spec.get(ref.field)
        items = list(enumerate(value)) if ref.many and isinstance(value, list) else [(None, value)]
        scope = m.key.organization if KINDS[ref.kind].scoped else ""
        if scope and scope not in ctx.organizations:
            continue  # reported once, by organization_declared
        for index, name in items:
            if name is None or (ref.kind, scope, name) in ctx.by_key:
                continue
            # Only a missing reference pays for the candidate list (a per-reference scan would be quadratic).
            known = [k.name for k in ctx.by_key if k.kind == ref.kind and k.organization == scope]
            path = ("spec", ref.field) + (() if index is None else (index,))
            where = f" in organization {scope}" if scope else ""
            yield m.finding(
                path, f"no {ref.kind} named '{name}' is declared{where}{_hint(name, known)}; declare it or fix the name"
            )


@resource_rule
def own_checks(m: Manifest, ctx: Context) -> Iterator[Finding]:
    """The rules one resource can break on its own, from the table of kinds (the backend runs the same)."""
    spec = ctx.spec(m)
    for path, message in m.kind.findings(m.key.name, spec):
        yield m.finding(path, message)
    for path, message in m.kind.advice_for(m.key.name, spec):
        yield m.finding(path, message, WARNING)


@set_rule
def no_parent_cycles(ctx: Context) -> Iterator[Finding]:
    parent = {name: ctx.spec(m).get("parent") for name, m in ctx.organizations.items()}
    reported: set[frozenset[str]] = set()
    for start in sorted(parent):
        path: list[str] = []
        current: str | None = start
        while current in parent and current not in path:
            path.append(current)
            current = parent[current]
        if current is None or current not in path or path.index(current) == len(path) - 1:
            continue  # no cycle, or an organization its own parent (its own check says so)
        cycle = path[path.index(current):]
        if frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        first = min(cycle)
        ring = cycle[cycle.index(first):] + cycle[: cycle.index(first)]
        shown = " → ".join([*ring, first])
        yield ctx.organizations[first].finding(
            ("spec", "parent"),
            f"organizations form a parent cycle: {shown}; give one of them no parent or a parent outside the cycle",
        )


# --- organizations --------------------------------------------------------------------------------------


@set_rule
def administrators(ctx: Context) -> Iterator[Finding]:
    for name, org in ctx.organizations.items():
        if not plan_allows_gated(ctx.spec(org)):
            continue  # a free organization holds no users (paid_plan_for_members), so it needs no admin
        users = [m for m in ctx.by_org.get(name, []) if m.kind.role is not None]
        admins = [u for u in users if ctx.spec(u).get(u.kind.role or "") in ADMIN_ROLES]
        if not admins:
            yield org.finding(
                (),
                f"organization {name} declares no administrator; add a User with role administrator or "
                "legal-representative (a tenant is never handed over without one)",
            )
        elif len(admins) > MAX_ADMINS:
            yield org.finding(
                (),
                f"organization {name} has {len(admins)} administrators (more than {MAX_ADMINS}); make some of them "
                "collaborators",
                WARNING,
            )
        elif len(admins) * ADMIN_SHARE > len(users):
            yield org.finding(
                (),
                f"administrators are {len(admins)} of the {len(users)} users of organization {name} (more than a "
                "fifth); give most people role collaborator",
                WARNING,
            )


@set_rule
def claims_unique(ctx: Context) -> Iterator[Finding]:
    """No two declared resources hold one unique value (addresses, domains, quota domains, display names
    among siblings...): the claims of the table of kinds, as the backend keeps them."""
    first: dict[tuple[str, str], Manifest] = {}
    told: set[tuple[int, int]] = set()  # one finding per pair (a username left out is the email: one clash)
    for m in ctx.manifests:
        for key in m.kind.claim_keys(ctx.spec(m)):  # keys only: the words are for the few that clash
            other = first.get(key)
            if other is None:
                first[key] = m
            elif other is not m and (id(m), id(other)) not in told:  # twice in one: its own check says so
                told.add((id(m), id(other)))
                claim, other_claim = _claim(ctx, m, key), _claim(ctx, other, key)
                yield m.finding(
                    claim.path,
                    f"{claim.what} is already used by {other.key} ({other.field_origin(other_claim.path)}); "
                    f"{claim.rule}",
                )


def _claim(ctx: Context, m: Manifest, key: tuple[str, str]) -> ClaimValue:
    """The first of a manifest's claims with this (namespace, key)."""
    return next(c for c in m.kind.claim_values(ctx.spec(m)) if (c.namespace, c.key) == key)


@set_rule
def paid_plan_for_members(ctx: Context) -> Iterator[Finding]:
    for name, org in ctx.organizations.items():
        plan = ctx.spec(org)["plan"]
        if plan_allows_gated(ctx.spec(org)):
            continue
        counts: dict[str, int] = defaultdict(int)
        for m in ctx.by_org.get(name, []):
            if m.kind.plan_gated:
                counts[m.kind.name] += 1
        if counts:
            by_rank = sorted((k for k in KINDS.values() if k.name in counts), key=lambda k: k.rank)
            held = ", ".join(_count(counts[k.name], k) for k in by_rank)
            yield org.finding(
                ("spec", "plan"),
                f"organization {name} is on plan {plan}, which cannot hold users, teams, aliases or mailbox quotas, "
                f"but it declares {held}; upgrade the organization's plan to entry or pro",
            )


# --- users, aliases, quotas --------------------------------------------------------------------------------


@resource_rule
def on_own_domain(m: Manifest, ctx: Context) -> Iterator[Finding]:
    """A value that must lie on one of the organization's domains (an address, a quota's domain)."""
    rule = m.kind.on_own_domain
    if rule is None:
        return
    owned = _owned(ctx, m)
    if owned is None:
        return
    spec = ctx.spec(m)
    domain = m.kind.owned_domain(spec)
    if domain is not None and domain not in owned:
        yield m.finding(rule.path(), rule.message(str(spec[rule.field]), m.key.organization, owned))


@resource_rule
def limit_covers_mailboxes(m: Manifest, ctx: Context) -> Iterator[Finding]:
    if m.kind.limit is None:
        return
    limit = m.kind.limit_of(ctx.spec(m))
    if limit is None:
        return
    domain, maximum = limit
    mailboxes = ctx.mailboxes(m.key.organization).get(domain, 0)
    if mailboxes > maximum:
        field_name = m.kind.limit.maximum
        yield m.finding(
            ("spec", field_name),
            f"{mailboxes} users have a mailbox on {domain} but the quota allows {maximum}; raise "
            f"{field_name} to at least {mailboxes} or remove users (aliases do not count)",
        )


# --- labels -------------------------------------------------------------------------------------------------


def reserved_label_findings(document: dict[str, Any]) -> Iterator[tuple[tuple[str, str, str], str]]:
    """Labels a declaration may not set: tenancy sets its own (`tenancy/...`) itself. The labels of a
    Tenant's expansion (SPEC §6) come as a pair: what `tenancy render` writes reads back as it was made."""
    labels = (document.get("metadata") or {}).get("labels") or {}
    expanded = all(label in labels for label in EXPANSION_LABELS)
    for key in labels:
        if expanded and key in EXPANSION_LABELS:
            continue
        if key.startswith(RESERVED_LABEL_PREFIX):
            pair = " and ".join(EXPANSION_LABELS)
            yield (
                ("metadata", "labels", key),
                f"label {key} is reserved: tenancy sets {RESERVED_LABEL_PREFIX} labels itself ({STACK_LABEL} comes "
                f"from the stack name, {pair} from the expansion of a Tenant); remove it",
            )


@resource_rule
def reserved_labels(m: Manifest, ctx: Context) -> Iterator[Finding]:
    for path, message in reserved_label_findings(m.document):
        yield m.finding(path, message)


# --- passwords ----------------------------------------------------------------------------------------------


@set_rule
def passwords(ctx: Context) -> Iterator[Finding]:
    """Resolvable, strong, and never shared between organizations. Messages name sources, never values."""
    if not ctx.resolve_secrets:
        return
    holders: dict[str, list[tuple[Manifest, tuple[str, str]]]] = defaultdict(list)
    for m in ctx.manifests:
        for name in sorted(m.kind.sensitive):
            source = m.spec.get(name)
            if not isinstance(source, dict):
                continue
            path = ("spec", name)
            read = input_of(m, source)
            if read is not None:
                ctx.inputs.append(read)
            try:
                secret = resolve(m, source, ctx.env, ctx.allow_outside, field=path)
            except SecretError as e:
                yield m.noted(e.as_finding())
                continue
            ctx.resolved.setdefault(m.key, {})[name] = secret
            reason = weakness(secret)
            if reason:
                yield m.finding(
                    path,
                    f"the password from {describe(source)} is weak: {reason}; use a long random password "
                    "(a password manager's generator will do)",
                )
            holders[secret].append((m, path))
    for shared in holders.values():
        first, first_path = shared[0]
        for m, path in shared[1:]:
            if m.organization != first.organization:
                yield m.finding(
                    path,
                    f"{m.key} has the same password as {first.key} ({first.field_origin(first_path)}) of organization "
                    f"{first.organization}; users of different organizations must not share a password",
                )


__all__ = [
    "RESOURCE_RULES",
    "SET_RULES",
    "Context",
    "Verdict",
    "check",
    "judge",
    "resource_rule",
    "require_valid",
    "reserved_label_findings",
    "set_rule",
]
