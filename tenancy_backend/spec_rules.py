"""What the backend checks and derives from one spec alone, per kind (a table, read by the service).

- `checks`: rules a single valid spec must satisfy (charset, leader among members, quota minimum, ...);
- `columns`: values denormalised into `resources` for queries (role, tier, mail domain, parent);
- `claims`: backend-wide unique values the resource holds (domains, addresses, one quota per domain);
- `plan_gated`: the kind can only be managed in an organization on a paid plan;
- `domain_field`: the spec field whose mail domain must be one of the organization's domains.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from provider.kinds import KINDS, OFFER_MINIMUM, OrgType, Product, Reference, Role, SignatureMode, mail_domain
from tenancy_backend.errors import Violation

Spec = dict[str, Any]
UNPROCESSABLE = 422


class Claim(NamedTuple):
    namespace: str
    key: str
    field: str  # the spec field (camelCase) holding the value
    what: str  # how a person calls it: "domain 'a.example'"


def referenced_names(spec: Spec, ref: Reference) -> list[str]:
    """The names a spec field refers to (one or many), without duplicates."""
    value = spec.get(ref.field)
    if ref.many:
        return list(dict.fromkeys(value or []))
    return [value] if value else []


@dataclass(frozen=True)
class KindRules:
    checks: Callable[[str, Spec], list[Violation]] = lambda name, spec: []
    columns: Callable[[Spec], dict[str, Any]] = lambda spec: {}
    claims: Callable[[Spec], list[Claim]] = lambda spec: []
    plan_gated: bool = False
    domain_field: str | None = None


# --- Organization ---------------------------------------------------------------------------------


def _organization_checks(name: str, spec: Spec) -> list[Violation]:
    out = []
    if spec["type"] == OrgType.STANDARD.value and spec["charset"] != "UTF-8":
        out.append(
            Violation(
                UNPROCESSABLE,
                "spec.charset",
                f"a standard organization must use charset UTF-8 (got {spec['charset']!r}); "
                "use charset UTF-8 or type custom",
            )
        )
    if spec.get("parent") == name:
        out.append(Violation(UNPROCESSABLE, "spec.parent", f"organization {name!r} cannot be its own parent"))
    domains: Counter[str] = Counter(spec["domains"])
    for domain, count in domains.items():
        if count > 1:
            out.append(
                Violation(UNPROCESSABLE, "spec.domains", f"domain {domain!r} is listed {count} times; list it once")
            )
    return out


def _organization_claims(spec: Spec) -> list[Claim]:
    out = [Claim("domain", d, "domains", f"domain {d!r}") for d in dict.fromkeys(spec["domains"])]
    sibling_key = f"{spec.get('parent') or ''}/{spec['displayName']}"
    parent = f"under {spec['parent']!r}" if spec.get("parent") else "at the top level"
    out.append(Claim("org-display-name", sibling_key, "displayName", f"displayName {spec['displayName']!r} {parent}"))
    return out


# --- User, Alias, MailboxQuota --------------------------------------------------------------------


def _user_columns(spec: Spec) -> dict[str, Any]:
    return {"role": spec["role"], "tier": spec["subscription"], "mail_domain": mail_domain(spec["email"])}


def claim_key(value: str) -> str:
    """The key a unique value is claimed under: addresses and usernames ignore case."""
    return value.lower()


def _address_claim(field: str) -> Callable[[Spec], list[Claim]]:
    def claims(spec: Spec) -> list[Claim]:
        address = spec[field]
        return [Claim("address", claim_key(address), field, f"address {address!r}")]

    return claims


def _user_claims(spec: Spec) -> list[Claim]:
    """A user's address and its login name: each unique across the backend (a login name ignores case, as
    an address does and as SCIM compares userName). The stored username is never absent (`fill_derived`)."""
    username = spec["username"]
    claims = _address_claim("email")(spec)
    claims.append(Claim("username", claim_key(username), "username", f"username {username!r}"))
    return claims


def _quota_checks(name: str, spec: Spec) -> list[Violation]:
    minimum = OFFER_MINIMUM[spec["offer"]]
    if spec["maxAddresses"] < minimum:
        return [
            Violation(
                UNPROCESSABLE,
                "spec.maxAddresses",
                f"offer {spec['offer']!r} needs maxAddresses of at least {minimum} (got {spec['maxAddresses']})",
            )
        ]
    return []


def _quota_claims(spec: Spec) -> list[Claim]:
    domain = spec["domain"]
    return [Claim("quota-domain", domain, "domain", f"a mailbox quota for domain {domain!r}")]


# --- Team -----------------------------------------------------------------------------------------


def _team_checks(name: str, spec: Spec) -> list[Violation]:
    leader = spec.get("leader")
    if leader and leader not in spec["members"]:
        return [
            Violation(
                UNPROCESSABLE,
                "spec.leader",
                f"leader {leader!r} must be one of the team's members; add {leader!r} to members",
            )
        ]
    return []


# --- CustomerSubscription -------------------------------------------------------------------------


def _subscription_checks(name: str, spec: Spec) -> list[Violation]:
    out = []
    if spec["customerCanEditSignatures"] and not spec.get("contact"):
        out.append(
            Violation(
                UNPROCESSABLE,
                "spec.contact",
                "a contact {name, email} is required when customerCanEditSignatures is true",
            )
        )
    exchange = SignatureMode.EXCHANGE_ON_PREMISES.value
    if exchange in spec["signatureModes"] and spec["product"] != Product.SIGNATURES_MICROSOFT_365.value:
        out.append(
            Violation(
                UNPROCESSABLE,
                "spec.signatureModes",
                f"signature mode {exchange!r} is only available for product "
                f"{Product.SIGNATURES_MICROSOFT_365.value!r}",
            )
        )
    return out


RULES: dict[str, KindRules] = {
    "Organization": KindRules(
        checks=_organization_checks,
        columns=lambda spec: {"parent": spec.get("parent")},
        claims=_organization_claims,
    ),
    "User": KindRules(
        columns=_user_columns, claims=_user_claims, plan_gated=True, domain_field="email"
    ),
    "Team": KindRules(checks=_team_checks, plan_gated=True),
    "MailboxQuota": KindRules(
        checks=_quota_checks,
        columns=lambda spec: {"mail_domain": spec["domain"]},
        claims=_quota_claims,
        plan_gated=True,
        domain_field="domain",
    ),
    "Alias": KindRules(
        columns=lambda spec: {"mail_domain": mail_domain(spec["address"])},
        claims=_address_claim("address"),
        plan_gated=True,
        domain_field="address",
    ),
    "CustomerSubscription": KindRules(checks=_subscription_checks),
}
assert set(RULES) == set(KINDS), "every kind needs its backend rules"

PLAN_GATED_KINDS = tuple(name for name, rules in RULES.items() if rules.plan_gated)
EXTERNAL_ROLE = Role.EXTERNAL.value

__all__ = [
    "EXTERNAL_ROLE", "PLAN_GATED_KINDS", "RULES", "Claim", "KindRules", "claim_key", "mail_domain", "referenced_names"
]
