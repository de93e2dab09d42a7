"""Cross-resource checks over a whole manifest set: everything of SPEC §2 that needs no backend.

Pure but for secret resolution (environment variables and password files). Each rule is a small function
registered either for the whole set (`@set_rule`) or per kind (`@kind_rule("User")`, `"*"` for every
kind); references are read from the table of kinds, not from a list here. A finding is located at the
field it is about and says what is wrong and how to fix it. A secret value never appears in a message.
"""

from __future__ import annotations

import difflib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from provider.errors import Finding, ManifestError, SecretError, Severity
from provider.kinds import (
    ADMIN_ROLES,
    KINDS,
    OFFER_MINIMUM,
    ORGANIZATION,
    PAID_PLANS,
    STACK_LABEL,
    Kind,
    OrgType,
    Product,
    ResourceKey,
    Role,
    SignatureMode,
    mail_domain,
    to_snake,
)
from provider.manifests import Manifest, ManifestSet
from provider.secrets import describe, resolve, weakness

WARNING = Severity.WARNING
MAX_ADMINS = 3
ADMIN_SHARE = 5  # administrators may be at most a fifth of an organization's users
RESERVED_LABEL_PREFIX = STACK_LABEL.split("/", 1)[0] + "/"

# Facts about kinds that only these rules need (the backend keeps the same facts in its spec rules).
PLAN_GATED_KINDS = ("User", "Team", "Alias", "MailboxQuota")  # only in an entry or pro organization
ADDRESS_FIELDS = {"User": "email", "Alias": "address"}  # addresses unique across users and aliases

SetRule = Callable[["Context"], Iterable[Finding]]
KindRule = Callable[[Manifest, "Context"], Iterable[Finding]]
SET_RULES: list[SetRule] = []
KIND_RULES: dict[str, list[KindRule]] = defaultdict(list)


def set_rule(fn: SetRule) -> SetRule:
    SET_RULES.append(fn)
    return fn


def kind_rule(*kinds: str) -> Callable[[KindRule], KindRule]:
    """Register a rule for each manifest of these kinds ("*": every kind)."""

    def register(fn: KindRule) -> KindRule:
        for name in kinds:
            KIND_RULES[name].append(fn)
        return fn

    return register


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
    _specs: dict[int, dict[str, Any]] = field(default_factory=dict)
    _mailboxes: dict[str, dict[str, int]] = field(default_factory=dict)

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
            spec = self._specs[id(m)] = {**m.kind.defaults(), **{k: v for k, v in m.spec.items() if v is not None}}
        return spec

    def mailboxes(self, organization: str) -> dict[str, int]:
        """Per mail domain, the organization's users that have a mailbox there (not external), counted once."""
        counts = self._mailboxes.get(organization)
        if counts is None:
            counts = self._mailboxes[organization] = {}
            for u in self.resources(organization, "User"):
                spec = self.spec(u)
                if spec["role"] != Role.EXTERNAL.value:
                    domain = mail_domain(spec["email"])
                    counts[domain] = counts.get(domain, 0) + 1
        return counts

    def resources(self, organization: str, kind: str) -> list[Manifest]:
        return [m for m in self.by_org.get(organization, []) if m.kind.name == kind]

    def domains(self, organization: str) -> list[str]:
        org = self.organizations.get(organization)
        return [d.lower() for d in self.spec(org)["domains"]] if org else []


def check(
    manifest_set: ManifestSet,
    env: Mapping[str, str] = os.environ,
    resolve_secrets: bool = True,
    allow_outside: bool = False,
) -> list[Finding]:
    """Every finding about the set (the loader's warnings included), sorted by file and line."""
    ctx = Context.of(manifest_set, env, resolve_secrets, allow_outside)
    findings: set[Finding] = set(manifest_set.warnings)
    per_kind = {name: KIND_RULES.get("*", []) + KIND_RULES.get(name, []) for name in KINDS}
    for m in ctx.manifests:
        for rule in per_kind[m.kind.name]:
            findings.update(rule(m, ctx))
    for set_check in SET_RULES:
        findings.update(set_check(ctx))
    return sorted(findings)


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


@kind_rule("*")
def organization_declared(m: Manifest, ctx: Context) -> Iterator[Finding]:
    org = m.key.organization
    if m.kind.scoped and org not in ctx.organizations:
        hint = _hint(org, ctx.organizations)
        yield m.finding(
            ("metadata", "organization"),
            f"organization '{org}' is not declared in these manifests{hint}; declare it (kind: Organization) "
            "or fix the name",
        )


@kind_rule("*")
def references_resolve(m: Manifest, ctx: Context) -> Iterator[Finding]:
    for ref in m.kind.references:
        value = m.spec.get(ref.field)
        items = list(enumerate(value)) if ref.many and isinstance(value, list) else [(None, value)]
        scope = "" if ref.kind == ORGANIZATION.name else m.key.organization
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


@kind_rule("Team")
def leader_is_member(m: Manifest, ctx: Context) -> Iterator[Finding]:
    leader = m.spec.get("leader")
    if leader and leader not in (m.spec.get("members") or []):
        yield m.finding(
            ("spec", "leader"), f"'{leader}' leads the team but is not one of its members; add {leader} to spec.members"
        )


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
        if current is None or current not in path:
            continue
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
        users = ctx.resources(name, "User")
        admins = [u for u in users if ctx.spec(u)["role"] in ADMIN_ROLES]
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
def domains_owned_once(ctx: Context) -> Iterator[Finding]:
    owner: dict[str, Manifest] = {}
    for name, org in ctx.organizations.items():
        seen: set[str] = set()
        for i, domain in enumerate(ctx.spec(org)["domains"]):
            domain = domain.lower()
            path = ("spec", "domains", i)
            if domain in seen:
                yield org.finding(path, f"domain {domain} is listed twice; list it once")
            elif domain in owner:
                other = owner[domain]
                yield org.finding(
                    path,
                    f"domain {domain} is already owned by organization {other.key.name} "
                    f"({other.field_origin(('spec', 'domains'))}); a domain belongs to exactly one organization",
                )
            else:
                owner[domain] = org
            seen.add(domain)


@kind_rule("Organization")
def charset_of_standard(m: Manifest, ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec(m)
    if spec["type"] == OrgType.STANDARD.value and spec["charset"] != "UTF-8":
        yield m.finding(
            ("spec", "charset"),
            f"a standard organization must use charset UTF-8 (got '{spec['charset']}'); set charset: UTF-8 or "
            "type: custom",
        )


@set_rule
def display_names_unique_among_siblings(ctx: Context) -> Iterator[Finding]:
    first: dict[tuple[str | None, str], Manifest] = {}
    for org in ctx.organizations.values():
        spec = ctx.spec(org)
        key = (spec.get("parent"), spec["displayName"])
        if key in first:
            other = first[key]
            under = f"under {key[0]}" if key[0] else "at the top level (no parent)"
            yield org.finding(
                ("spec", "displayName"),
                f"'{key[1]}' is already the displayName of organization {other.key.name} {under} "
                f"({other.field_origin(('spec', 'displayName'))}); organizations with the same parent need "
                "distinct display names",
            )
        else:
            first[key] = org


@set_rule
def paid_plan_for_members(ctx: Context) -> Iterator[Finding]:
    for name, org in ctx.organizations.items():
        plan = ctx.spec(org)["plan"]
        if plan in PAID_PLANS:
            continue
        counts: dict[str, int] = defaultdict(int)
        for m in ctx.by_org.get(name, []):
            if m.kind.name in PLAN_GATED_KINDS:
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


@kind_rule("User")
def user_email_on_owned_domain(m: Manifest, ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec(m)
    owned = _owned(ctx, m)
    if owned is None or spec["role"] == Role.EXTERNAL.value:
        return
    if mail_domain(spec["email"]) not in owned:
        yield m.finding(
            ("spec", "email"),
            f"{spec['email']} is not on a domain of organization {m.key.organization} ({_listing(owned)}); use an "
            "address on one of its domains, add the domain to the organization, or set role: external",
        )


@kind_rule("User")
def billing_rights_for_collaborators(m: Manifest, ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec(m)
    if spec["billingRights"] and spec["role"] != Role.COLLABORATOR.value:
        yield m.finding(
            ("spec", "billingRights"),
            f"billingRights only matters for collaborators (role {spec['role']} ignores it); remove it",
            WARNING,
        )


@kind_rule("Alias")
def alias_on_owned_domain(m: Manifest, ctx: Context) -> Iterator[Finding]:
    owned = _owned(ctx, m)
    address = m.spec["address"]
    if owned is not None and mail_domain(address) not in owned:
        yield m.finding(
            ("spec", "address"),
            f"{address} is not on a domain of organization {m.key.organization} ({_listing(owned)}); an alias must "
            "use one of its domains",
        )


@set_rule
def addresses_unique(ctx: Context) -> Iterator[Finding]:
    first: dict[str, tuple[Manifest, tuple[str, str]]] = {}
    for m in ctx.manifests:
        name = ADDRESS_FIELDS.get(m.kind.name)
        if name is None:
            continue
        path = ("spec", name)
        address = str(m.spec[name]).lower()
        if address in first:
            other, other_path = first[address]
            yield m.finding(
                path,
                f"address {m.spec[name]} is already used by {other.key} ({other.field_origin(other_path)}); an "
                "address belongs to one user or alias across the whole backend",
            )
        else:
            first[address] = (m, path)


@set_rule
def usernames_unique(ctx: Context) -> Iterator[Finding]:
    """Login names are unique across the backend, ignoring case; one left out is the user's email."""
    first: dict[str, Manifest] = {}
    for m in ctx.manifests:
        if "username" not in m.kind.derived_defaults:
            continue
        username = m.kind.essence(m.spec).get("username")
        if not isinstance(username, str):
            continue
        declared = m.spec.get("username") is not None
        path = ("spec", "username") if declared else ("spec", "email")
        other = first.get(username.lower())
        if other is None:
            first[username.lower()] = m
            continue
        if not declared and other.spec.get("username") is None:
            continue  # two equal emails: addresses_unique says so once
        yield m.finding(
            path,
            f"username {username} is already the login name of {other.key}; a username belongs to one user "
            "across the whole backend (left out, it is the email): choose another",
        )


@kind_rule("MailboxQuota")
def quota_domain_owned(m: Manifest, ctx: Context) -> Iterator[Finding]:
    owned = _owned(ctx, m)
    domain = m.spec["domain"].lower()
    if owned is not None and domain not in owned:
        yield m.finding(
            ("spec", "domain"),
            f"{domain} is not a domain of organization {m.key.organization} ({_listing(owned)}); use one of its "
            "domains or add it to the organization",
        )


@kind_rule("MailboxQuota")
def quota_minimum(m: Manifest, ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec(m)
    offer, maximum = spec["offer"], spec["maxAddresses"]
    least = OFFER_MINIMUM[offer]
    if maximum < least:
        other = min(OFFER_MINIMUM, key=OFFER_MINIMUM.__getitem__)
        alternative = f" or use offer: {other}" if OFFER_MINIMUM[other] <= maximum else ""
        yield m.finding(
            ("spec", "maxAddresses"),
            f"a {offer} quota needs at least {least} addresses (got {maximum}); raise maxAddresses{alternative}",
        )


@kind_rule("MailboxQuota")
def quota_covers_mailboxes(m: Manifest, ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec(m)
    domain = spec["domain"].lower()
    mailboxes = ctx.mailboxes(m.key.organization).get(domain, 0)
    if mailboxes > spec["maxAddresses"]:
        yield m.finding(
            ("spec", "maxAddresses"),
            f"{mailboxes} users have a mailbox on {domain} but the quota allows {spec['maxAddresses']}; raise "
            f"maxAddresses to at least {mailboxes} or remove users (aliases do not count)",
        )


@set_rule
def one_quota_per_domain(ctx: Context) -> Iterator[Finding]:
    first: dict[tuple[str, str], Manifest] = {}
    for m in ctx.manifests:
        if m.kind.name != "MailboxQuota":
            continue
        key = (m.key.organization, m.spec["domain"].lower())
        if key in first:
            other = first[key]
            yield m.finding(
                ("spec", "domain"),
                f"{key[1]} already has a quota: {other.key} ({other.field_origin(('spec', 'domain'))}); a domain "
                "has at most one MailboxQuota: merge them",
            )
        else:
            first[key] = m


# --- customer subscriptions --------------------------------------------------------------------------------


@kind_rule("CustomerSubscription")
def contact_when_customer_edits(m: Manifest, ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec(m)
    if spec["customerCanEditSignatures"] and not spec.get("contact"):
        yield m.finding(
            ("spec", "contact"),
            "customerCanEditSignatures needs a contact: add contact: {name: ..., email: ...} (the person the "
            "customer's signature edits are coordinated with)",
        )


@kind_rule("CustomerSubscription")
def signature_modes_fit_product(m: Manifest, ctx: Context) -> Iterator[Finding]:
    spec = ctx.spec(m)
    if spec["product"] == Product.SIGNATURES_MICROSOFT_365.value:
        return
    for i, mode in enumerate(spec["signatureModes"]):
        if mode == SignatureMode.EXCHANGE_ON_PREMISES.value:
            yield m.finding(
                ("spec", "signatureModes", i),
                f"{mode} is only available with product {Product.SIGNATURES_MICROSOFT_365.value}; remove it",
            )


# --- labels -------------------------------------------------------------------------------------------------


@kind_rule("*")
def reserved_labels(m: Manifest, ctx: Context) -> Iterator[Finding]:
    for key in (m.document.get("metadata") or {}).get("labels") or {}:
        if key.startswith(RESERVED_LABEL_PREFIX):
            yield m.finding(
                ("metadata", "labels", key),
                f"label {key} is reserved: tenancy sets {RESERVED_LABEL_PREFIX} labels itself ({STACK_LABEL} comes "
                "from the stack name); remove it",
            )


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
            try:
                secret = resolve(m, source, ctx.env, ctx.allow_outside, field=path)
            except SecretError as e:
                yield e.as_finding()
                continue
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
    "ADDRESS_FIELDS",
    "KIND_RULES",
    "PLAN_GATED_KINDS",
    "SET_RULES",
    "Context",
    "check",
    "kind_rule",
    "require_valid",
    "set_rule",
]
