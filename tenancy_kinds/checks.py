"""The rules one resource can break on its own, each a function from a spec to findings.

A check takes the resource's name and its spec (JSON-plain, the kind's defaults filled in) and yields
`(path, message)`: the field the finding is about, and what is wrong with the fix. The table of kinds
gives each kind its checks; offline validation, the backend and Pulumi's `check()` all run these, so the
same mistake gets the same words everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tenancy_kinds.facts import Path, Spec
from tenancy_kinds.specs import OFFER_MINIMUM, OrgType, Product, Role, SignatureMode

Finding = tuple[Path, str]
Check = Callable[[str, Spec], Iterator[Finding]]


def standard_charset(name: str, spec: Spec) -> Iterator[Finding]:
    if spec.get("type") == OrgType.STANDARD.value and spec.get("charset") != "UTF-8":
        yield (
            ("spec", "charset"),
            f"a standard organization must use charset UTF-8 (got '{spec.get('charset')}'); set charset: UTF-8 "
            "or type: custom",
        )


def not_its_own_parent(name: str, spec: Spec) -> Iterator[Finding]:
    if spec.get("parent") == name:
        yield ("spec", "parent"), f"organization {name} cannot be its own parent; give it another parent or none"


def domains_listed_once(name: str, spec: Spec) -> Iterator[Finding]:
    seen: set[str] = set()
    for index, domain in enumerate(spec.get("domains") or []):
        lowered = str(domain).lower()
        if lowered in seen:
            yield ("spec", "domains", index), f"domain {lowered} is listed twice; list it once"
        seen.add(lowered)


def leader_is_member(name: str, spec: Spec) -> Iterator[Finding]:
    leader = spec.get("leader")
    if leader and leader not in (spec.get("members") or []):
        yield (
            ("spec", "leader"),
            f"'{leader}' leads the team but is not one of its members; add {leader} to spec.members",
        )


def quota_minimum(name: str, spec: Spec) -> Iterator[Finding]:
    offer, maximum = spec.get("offer"), spec.get("maxAddresses")
    if not isinstance(offer, str) or offer not in OFFER_MINIMUM or not isinstance(maximum, int):
        return
    least = OFFER_MINIMUM[offer]
    if maximum < least:
        other = min(OFFER_MINIMUM, key=OFFER_MINIMUM.__getitem__)
        alternative = f" or use offer: {other}" if OFFER_MINIMUM[other] <= maximum else ""
        yield (
            ("spec", "maxAddresses"),
            f"a {offer} quota needs at least {least} addresses (got {maximum}); raise maxAddresses{alternative}",
        )


def contact_when_customer_edits(name: str, spec: Spec) -> Iterator[Finding]:
    if spec.get("customerCanEditSignatures") and not spec.get("contact"):
        yield (
            ("spec", "contact"),
            "customerCanEditSignatures needs a contact: add contact: {name: ..., email: ...} (the person the "
            "customer's signature edits are coordinated with)",
        )


def signature_modes_fit_product(name: str, spec: Spec) -> Iterator[Finding]:
    if spec.get("product") == Product.SIGNATURES_MICROSOFT_365.value:
        return
    for index, mode in enumerate(spec.get("signatureModes") or []):
        if mode == SignatureMode.EXCHANGE_ON_PREMISES.value:
            yield (
                ("spec", "signatureModes", index),
                f"{mode} is only available with product {Product.SIGNATURES_MICROSOFT_365.value}; remove it",
            )


def billing_rights_for_collaborators(name: str, spec: Spec) -> Iterator[Finding]:
    """Advice: billingRights means something only for collaborators (administrators have them)."""
    if spec.get("billingRights") and spec.get("role") != Role.COLLABORATOR.value:
        yield (
            ("spec", "billingRights"),
            f"billingRights only matters for collaborators (role {spec.get('role')} ignores it); remove it",
        )


__all__ = [
    "billing_rights_for_collaborators",
    "Check",
    "Finding",
    "contact_when_customer_edits",
    "domains_listed_once",
    "leader_is_member",
    "not_its_own_parent",
    "quota_minimum",
    "signature_modes_fit_product",
    "standard_charset",
]
