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

# The rules keep each unique value's first holder by this hash of its key (a test makes the keys collide).
claim_hash: Callable[[tuple[str, str]], int] = hash
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
    """The manifest set, indexed once for the rules, and what the set rules read of every resource, noted
    in one pass (`take`): each spec's effective values are computed once and kept only while its own rules
    run (a million of them kept would cost 400 MB), but for the organizations'."""

    manifests: list[Manifest]
    env: Mapping[str, str]
    resolve_secrets: bool
    allow_outside: bool = False  # fromFile may leave the manifest directory (apply --allow-secret-outside)
    by_key: dict[ResourceKey, Manifest] = field(default_factory=dict)
    organizations: dict[str, Manifest] = field(default_factory=dict)
    by_org: dict[str, list[Manifest]] = field(default_factory=lambda: defaultdict(list))
    resolved: SecretValues = field(default_factory=dict)  # the secrets resolved while judging them
    inputs: list[SecretInput] = field(default_factory=list)  # what their sources read (named, no value)
    # Noted by `take`, for the set rules:
    clashes: list[tuple[Manifest, Manifest, tuple[str, str]]] = field(default_factory=list)  # (m, first, key)
    mailboxes: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))  # org → domain → n
    people: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # [users, admins]
    limits: list[Manifest] = field(default_factory=list)  # the resources that set a maximum (quotas)
    _current: tuple[Manifest | None, dict[str, Any]] = (None, {})
    _holders: dict[int, Manifest] = field(default_factory=dict)  # each unique value's first holder, by hash
    _spilled: dict[tuple[str, str], Manifest] = field(default_factory=dict)  # those whose hash was taken
    _organization_specs: dict[str, dict[str, Any]] = field(default_factory=dict)
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
        """The spec with the kind's defaults filled in (rules reason about effective values): those of the
        resource being judged and of the organizations are kept, any other is computed again."""
        current, spec = self._current
        if current is m:
            return spec
        name = m.key.name
        if m.kind.scoped or self.organizations.get(name) is not m:
            return m.kind.effective(m.spec)
        found = self._organization_specs.get(name)
        if found is None:
            found = self._organization_specs[name] = m.kind.effective(m.spec)
        return found

    def take(self, m: Manifest) -> None:
        """Note what the set rules need of `m` (in the order of the manifests), its effective spec kept until
        the next is taken: the unique values it holds, the mailbox it consumes, whether it is a user and an
        administrator, whether it sets a limit."""
        spec = self.spec(m)
        self._current = (m, spec)
        kind = m.kind
        for key in dict.fromkeys(kind.claim_keys(spec)):  # a value held twice in one: its own check says so
            self._hold(m, key)
        if not kind.scoped:
            return
        organization = m.key.organization
        domain = kind.mailbox_domain(spec)
        if domain is not None:
            counts = self.mailboxes[organization]
            counts[domain] = counts.get(domain, 0) + 1
        if kind.role is not None:
            people = self.people[organization]
            people[0] += 1
            people[1] += spec.get(kind.role) in ADMIN_ROLES
        if kind.limit is not None:
            self.limits.append(m)

    def _hold(self, m: Manifest, key: tuple[str, str]) -> None:
        """Note that `m` holds the unique value `key`, and its clash with the value's first holder. First
        holders are kept by the key's hash (at 1,000,000 resources, the keys with their strings would cost
        300 MB); a hash whose first holder holds another key (two keys of one hash: rare) sends the key to
        `_spilled`, where first holders are kept by the key itself."""
        hashed = claim_hash(key)
        first = self._holders.get(hashed)
        if first is None:
            self._holders[hashed] = m
        elif first is not m and key in first.kind.claim_keys(self.spec(first)):
            self.clashes.append((m, first, key))
        else:
            other = self._spilled.setdefault(key, m)
            if other is not m:
                self.clashes.append((m, other, key))

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
        ctx.take(m)
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
        users, admins = ctx.people.get(name, (0, 0))
        if not admins:
            yield org.finding(
                (),
                f"organization {name} declares no administrator; add a User with role administrator or "
                "legal-representative (a tenant is never handed over without one)",
            )
        elif admins > MAX_ADMINS:
            yield org.finding(
                (),
                f"organization {name} has {admins} administrators (more than {MAX_ADMINS}); make some of them "
                "collaborators",
                WARNING,
            )
        elif admins * ADMIN_SHARE > users:
            yield org.finding(
                (),
                f"administrators are {admins} of the {users} users of organization {name} (more than a "
                "fifth); give most people role collaborator",
                WARNING,
            )


@set_rule
def claims_unique(ctx: Context) -> Iterator[Finding]:
    """No two declared resources hold one unique value (addresses, domains, quota domains, display names
    among siblings...): the claims of the table of kinds, as the backend keeps them."""
    told: set[tuple[int, int]] = set()  # one finding per pair (a username left out is the email: one clash)
    for m, other, key in ctx.clashes:  # noted by `take`, in the order of the manifests
        if (id(m), id(other)) not in told:
            told.add((id(m), id(other)))
            claim, other_claim = _claim(ctx, m, key), _claim(ctx, other, key)
            yield m.finding(
                claim.path,
                f"{claim.what} is already used by {other.key} ({other.field_origin(other_claim.path)}); {claim.rule}",
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


@set_rule
def limit_covers_mailboxes(ctx: Context) -> Iterator[Finding]:
    """A quota allows at least the mailboxes its organization's resources consume on its domain."""
    for m in ctx.limits:
        limit = m.kind.limit_of(ctx.spec(m))
        if limit is None or m.kind.limit is None:
            continue
        domain, maximum = limit
        mailboxes = ctx.mailboxes.get(m.key.organization, {}).get(domain, 0)
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
