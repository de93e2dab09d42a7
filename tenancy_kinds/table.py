"""The table of kinds: every kind's model, identity, immutable fields, references and order, declared once.

Every layer reads this table (validation, rules, diff, ordering, client paths, the backend, Pulumi,
schemas); no layer branches on a kind's name. It lives in its own package, beside `provider` and
`tenancy_backend`, because both halves ask it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any, NamedTuple

from tenancy_kinds.specs import (
    API_VERSION,
    AliasSpec,
    CustomerSubscriptionSpec,
    CustomerSubscriptionStatus,
    MailboxQuotaSpec,
    MailboxQuotaStatus,
    Model,
    OrganizationSpec,
    OrganizationStatus,
    TeamSpec,
    UserSpec,
    UserStatus,
    WireUserSpec,
    document_model,
)

STACK_LABEL = "tenancy/stack"

# --- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A spec field naming another resource of the same organization (or, for `parent`, an organization)."""

    field: str  # camelCase spec field
    kind: str
    many: bool = False


@dataclass(frozen=True)
class Kind:
    name: str
    plural: str  # the API collection segment
    spec: type[Model]
    status: type[Model] | None
    scoped: bool  # lives under an organization (every kind but Organization)
    immutable: frozenset[str] = frozenset()  # a change means replace
    sensitive: frozenset[str] = frozenset()  # write-only, never compared by value, never printed
    rotation: dict[str, str] = field(default_factory=dict)  # sensitive field → the version field that resends it
    references: tuple[Reference, ...] = ()
    unordered: frozenset[str] = frozenset()  # list fields compared as sets (sorted in the essence)
    rank: int = 0  # creation tier: lower ranks first when nothing more specific orders two changes
    delete_archives: bool = False  # DELETE keeps the resource, archived and readable
    replace_note: str = ""  # what a replace destroys, said in the plan
    unique: tuple[tuple[str, str], ...] = ()  # (spec field, namespace): values unique across the backend
    wire_spec: type[Model] | None = None  # the backend's variant of the spec, when it differs
    document: type[Model] = field(init=False)  # the manifest document model
    wire_document: type[Model] = field(init=False)  # the document model the backend accepts

    def __post_init__(self) -> None:
        document = document_model(self.name, self.spec, self.scoped)
        object.__setattr__(self, "document", document)
        wire = document_model(self.name, self.wire_spec, self.scoped) if self.wire_spec else document
        object.__setattr__(self, "wire_document", wire)

    @property
    def api_spec(self) -> type[Model]:
        return self.wire_spec or self.spec

    @property
    def spec_fields(self) -> list[str]:
        """The camelCase names of the spec's fields, in declaration order."""
        return [f.alias or name for name, f in self.spec.model_fields.items()]

    def defaults(self) -> dict[str, Any]:
        """Every spec field that has a default, with it (camelCase, JSON values). A fresh dict each call."""
        return dict(self._defaults)

    @cached_property
    def _defaults(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, f in self.spec.model_fields.items():
            if not f.is_required():
                value = f.get_default(call_default_factory=True)
                out[f.alias or name] = _plain(value)
        return out

    def essence(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The comparable core of a spec: defaults filled in, sets sorted, sensitive fields left out.

        `spec` must already be valid for this kind (manifest or wire form) and JSON-plain (no enums: plans
        compare 200,000 of these at 100,000 resources, so nothing is converted here). Lists are shared with
        `spec`, except unordered ones, which are new sorted lists.
        """
        out = self.defaults()
        for k, v in spec.items():
            if v is not None or k not in out:
                out[k] = v
        for name in self.sensitive:
            out.pop(name, None)
        for name in self.unordered:
            if isinstance(out.get(name), list):
                out[name] = sorted(set(out[name]))
        return out


_SCALARS = frozenset({str, int, float, bool, type(None)})  # exact types: a str Enum is not one of them


def _plain(value: Any) -> Any:
    """Enums to their values, recursively; dicts keep their keys."""
    if type(value) in _SCALARS:  # the common case first: plans call this for every field of every resource
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


ORGANIZATION = Kind(
    name="Organization",
    plural="organizations",
    spec=OrganizationSpec,
    status=OrganizationStatus,
    scoped=False,
    references=(Reference("parent", "Organization"),),
    unordered=frozenset({"domains"}),
    unique=(("domains", "domain"),),
    rank=0,
)
USER = Kind(
    name="User",
    plural="users",
    spec=UserSpec,
    wire_spec=WireUserSpec,
    status=UserStatus,
    scoped=True,
    immutable=frozenset({"email"}),
    sensitive=frozenset({"password"}),
    rotation={"password": "passwordVersion"},
    unique=(("email", "address"),),
    rank=2,
    replace_note="replacing a User deletes it first: its mailbox and all its mail are destroyed",
)
TEAM = Kind(
    name="Team",
    plural="teams",
    spec=TeamSpec,
    status=None,
    scoped=True,
    references=(Reference("members", "User", many=True), Reference("leader", "User")),
    unordered=frozenset({"members", "externalMembers", "shares"}),
    rank=3,
)
MAILBOX_QUOTA = Kind(
    name="MailboxQuota",
    plural="mailbox-quotas",
    spec=MailboxQuotaSpec,
    status=MailboxQuotaStatus,
    scoped=True,
    immutable=frozenset({"domain"}),
    unique=(("domain", "quota"),),
    rank=1,
)
ALIAS = Kind(
    name="Alias",
    plural="aliases",
    spec=AliasSpec,
    status=None,
    scoped=True,
    references=(Reference("user", "User"),),
    unique=(("address", "address"),),
    rank=3,
)
CUSTOMER_SUBSCRIPTION = Kind(
    name="CustomerSubscription",
    plural="customer-subscriptions",
    spec=CustomerSubscriptionSpec,
    status=CustomerSubscriptionStatus,
    scoped=True,
    immutable=frozenset({"product"}),
    unordered=frozenset({"signatureModes"}),
    rank=1,
    delete_archives=True,
    replace_note="replacing a CustomerSubscription archives the old subscription and starts a new trial",
)

KINDS: dict[str, Kind] = {
    k.name: k for k in (ORGANIZATION, USER, TEAM, MAILBOX_QUOTA, ALIAS, CUSTOMER_SUBSCRIPTION)
}
KINDS_BY_PLURAL: dict[str, Kind] = {k.plural: k for k in KINDS.values()}


def mail_domain(address: str) -> str:
    """The domain an email address is on, lowercased (the part after the last @)."""
    return address.rsplit("@", 1)[-1].lower()


class ResourceKey(NamedTuple):
    """A resource's identity: unique per (kind, organization, name). Organizations have organization ''."""

    kind: str
    organization: str
    name: str

    def __str__(self) -> str:
        if self.organization:
            return f"{self.kind} {self.organization}/{self.name}"
        return f"{self.kind} {self.name}"

    @classmethod
    def of(cls, document: dict[str, Any]) -> ResourceKey:
        meta = document.get("metadata") or {}
        kind = document.get("kind", "")
        organization = "" if kind == ORGANIZATION.name else str(meta.get("organization") or "")
        return cls(kind, organization, str(meta.get("name", "")))


def owning_organization(document: dict[str, Any]) -> str:
    """The organization a document belongs to: itself for an Organization."""
    meta = document.get("metadata") or {}
    if document.get("kind") == ORGANIZATION.name:
        return str(meta.get("name", ""))
    return str(meta.get("organization", ""))


def kind_of(name: str) -> Kind:
    return KINDS[name]


def to_snake(camel: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in camel)


SERVER_METADATA = ("uid", "resourceVersion", "createdAt", "updatedAt")

__all__ = [
    "KINDS",
    "KINDS_BY_PLURAL",
    "SERVER_METADATA",
    "STACK_LABEL",
    "Kind",
    "Reference",
    "ResourceKey",
    "kind_of",
    "mail_domain",
    "owning_organization",
    "to_snake",
]
