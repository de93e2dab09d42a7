"""The business facts a kind declares in the table, and what they say about one document's spec.

Each fact is a small immutable value with the functions that read it, so that offline validation, the
plan, the apply order, the backend's service layer and Pulumi's `check()` all ask the same thing:

- `Unique`: values no two resources may hold (addresses, domains, one quota per domain, display names
  among sibling organizations, usernames): the *claims* of a resource;
- `Mailbox`: the resource consumes a mailbox address on a domain (counted by the domain's quota), unless
  its role exempts it;
- `Limit`: the resource limits the mailbox addresses in use on a domain (a quota);
- `OnOwnDomain`: a value (an address, or a domain) must lie on one of the organization's domains;
- `Archive`: deleting the resource archives it, and archived is final;
- `protected()`: a protected resource is never deleted or replaced.

A spec here is the JSON-plain spec of a valid document, with the kind's defaults filled in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

Spec = Mapping[str, Any]
Path = tuple[str | int, ...]


def dotted(path: Path) -> str:
    """A path as people write it: `spec.domains[0]`, `metadata.labels.team`."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def mail_domain(address: str) -> str:
    """The domain an email address is on, lowercased (the part after the last @); one string per domain
    however many addresses are on it (a plan holds the domain of every mailbox)."""
    return sys.intern(address.rsplit("@", 1)[-1].lower())


class ClaimValue(NamedTuple):
    """One value a resource claims: unique per (namespace, key) across the backend."""

    namespace: str
    key: str  # normalised; prefixed with the narrower set's name for claims unique within one
    path: Path  # where the value is written: ("spec", "domains", 0)
    what: str  # how a person calls it: "domain 'a.example'"
    rule: str  # the rule, in words, for a message about two holders


@dataclass(frozen=True)
class Unique:
    """`field` (a string, or a list of strings) holds values no other resource may hold in `namespace`.

    With `within`, a value is unique only among resources with the same value of that field (an
    organization's display name among the organizations with the same parent). `noun` names the value in
    messages (`"address"`, `"a mailbox quota for domain"`).
    """

    namespace: str
    field: str
    noun: str
    rule: str
    normalise: Callable[[str], str] = str.lower
    within: str | None = None
    default_from: str | None = None  # left out, the value is this field's (a username is the email)

    def values(self, spec: Spec) -> list[ClaimValue]:
        return [
            ClaimValue(self.namespace, key, path, self._words(value, scope), self.rule)
            for path, value, key, scope in self._held(spec)
        ]

    def keys(self, spec: Spec) -> list[tuple[str, str]]:
        """(namespace, key) of each value, as `values` has them, without their paths and words (the rules and
        the apply order compare the claims of every resource; messages are for the few that clash)."""
        raw = spec.get(self.field)
        if raw is None and self.default_from is not None:
            raw = spec.get(self.default_from)
        if isinstance(raw, str):  # one value (the common case)
            if not raw:
                return []
            return [(self.namespace, self._key(raw, spec.get(self.within) if self.within else None))]
        return [(self.namespace, key) for _, _, key, _ in self._held(spec)]

    def _held(self, spec: Spec) -> list[tuple[Path, str, str, Any]]:
        """(path, value as written, key, scope) of each value held."""
        field = self.field
        raw = spec.get(field)
        if raw is None and self.default_from is not None:
            field, raw = self.default_from, spec.get(self.default_from)
        scope = spec.get(self.within) if self.within else None
        if isinstance(raw, str):  # one value (the common case)
            return [(("spec", field), raw, self._key(raw, scope), scope)] if raw else []
        if not isinstance(raw, list):
            return []
        return [
            (("spec", field, index), value, self._key(value, scope), scope)
            for index, value in enumerate(raw)
            if isinstance(value, str) and value
        ]

    def _key(self, value: str, scope: Any) -> str:
        key = self.normalise(value)
        return key if self.within is None else f"{scope or ''}/{key}"

    def _words(self, value: str, scope: Any) -> str:
        what = f"{self.noun} {value!r}"
        if self.within is None:
            return what
        return f"{what} under {scope!r}" if scope else f"{what} at the top level"


def keep(value: str) -> str:
    """A normaliser that keeps the value as written (display names are compared exactly)."""
    return value


@dataclass(frozen=True)
class Mailbox:
    """The resource consumes one mailbox address on the domain of `address`, unless `spec[role]` is one of
    `exempt` (an external user has no mailbox here); a domain's quota counts these, aliases not."""

    address: str
    role: str
    exempt: frozenset[str]

    def domain(self, spec: Spec) -> str | None:
        address = spec.get(self.address)
        if not isinstance(address, str) or "@" not in address or spec.get(self.role) in self.exempt:
            return None
        return mail_domain(address)


@dataclass(frozen=True)
class Limit:
    """The resource limits the mailbox addresses in use on the domain `spec[domain]` to `spec[maximum]`
    (a domain without one is unlimited); the limit may never fall below what is in use."""

    domain: str
    maximum: str

    def of(self, spec: Spec) -> tuple[str, int] | None:
        """(domain, maximum) of a spec, or None when either is missing."""
        domain, maximum = spec.get(self.domain), spec.get(self.maximum)
        if not isinstance(domain, str) or not isinstance(maximum, int):
            return None
        return domain.lower(), maximum


@dataclass(frozen=True)
class OnOwnDomain:
    """`spec[field]` (an address, or with `is_domain` a domain itself) must lie on one of the owning
    organization's domains, unless `spec[role]` is one of `exempt`. `fix` completes the message's fix."""

    field: str
    is_domain: bool = False
    role: str | None = None
    exempt: frozenset[str] = frozenset()
    fix: str = "use one of its domains, or add the domain to the organization"

    def domain(self, spec: Spec) -> str | None:
        """The domain that must be one of the organization's, or None (no value, or exempt)."""
        value = spec.get(self.field)
        if not isinstance(value, str) or (self.role is not None and spec.get(self.role) in self.exempt):
            return None
        if self.is_domain:
            return value.lower()
        return mail_domain(value) if "@" in value else None

    def path(self) -> Path:
        return ("spec", self.field)

    def message(self, value: str, organization: str, domains: list[str]) -> str:
        owned = ", ".join(domains) if domains else "it declares no domains"
        relation = "a domain" if self.is_domain else "on a domain"
        return f"{value} is not {relation} of organization {organization} ({owned}); {self.fix}"


@dataclass(frozen=True)
class Archive:
    """Deleting the resource sets `spec[field]` to `value` (it stays readable), and archived is final."""

    field: str
    value: str

    def archived(self, spec: Spec) -> bool:
        return spec.get(self.field) == self.value

    def reactivates(self, before: Spec, after: Spec) -> bool:
        """Whether going from `before` to `after` would take an archived resource out of the archive."""
        return self.archived(before) and not self.archived(after)

    def refusal(self, key: object) -> str:
        return (
            f"{key} is archived, and archived is final: it cannot be reactivated; keep {self.field} "
            f"{self.value} and create a new one under another name"
        )


def protected(document: Mapping[str, Any] | None) -> bool:
    """A protected resource is never deleted or replaced (`metadata.protected`), by a plan or the backend."""
    return bool(((document or {}).get("metadata") or {}).get("protected"))


__all__ = [
    "Archive",
    "ClaimValue",
    "Limit",
    "Mailbox",
    "OnOwnDomain",
    "Path",
    "Spec",
    "Unique",
    "dotted",
    "keep",
    "mail_domain",
    "protected",
]
