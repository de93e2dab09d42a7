"""The table of kinds: every kind's model, identity, immutable fields, references and order, declared once.

Every layer reads this table (validation, rules, diff, ordering, client paths, the backend, Pulumi,
schemas); no layer branches on a kind's name. It lives in its own package, beside `provider` and
`tenancy_backend`, because both halves ask it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from tenancy_kinds import checks
from tenancy_kinds.checks import Check
from tenancy_kinds.facts import Archive, ClaimValue, Limit, Mailbox, OnOwnDomain, Path, Unique, keep, mail_domain
from tenancy_kinds.specs import (
    PAID_PLANS,
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
    Role,
    SubscriptionState,
    UserStatus,
    WireUserSpec,
    document_model,
)

STACK_LABEL = "tenancy/stack"
# Every resource a Tenant (SPEC §6) expands to carries its name here: `--target Tenant/NAME` reads it.
TENANT_LABEL = "tenancy/tenant"
BLUEPRINT_LABEL = "tenancy/blueprint"  # ... and the Blueprint it was made from
# Labels under this prefix are tenancy's own: a declaration may not set them (the expansion of a Tenant
# sets TENANT_LABEL and BLUEPRINT_LABEL, and `tenancy render` writes them so, as a pair).
RESERVED_LABEL_PREFIX = "tenancy/"
EXPANSION_LABELS = (BLUEPRINT_LABEL, TENANT_LABEL)

# --- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A spec field naming another resource of the same organization (or, for `parent`, an organization)."""

    field: str  # camelCase spec field
    kind: str
    many: bool = False

    def names(self, spec: dict[str, Any]) -> list[str]:
        """The names the field refers to (one or many), each once."""
        value = spec.get(self.field)
        if self.many:
            return list(dict.fromkeys(value or []))
        return [value] if value else []


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
    replace_note: str = ""  # what a replace destroys, said in the plan
    # The business facts (tenancy_kinds.facts, tenancy_kinds.checks), read by every layer that needs them.
    claims: tuple[Unique, ...] = ()  # values no two resources may hold
    mailbox: Mailbox | None = None  # the resource consumes a mailbox address (counted by the domain's quota)
    limit: Limit | None = None  # the resource limits the mailbox addresses in use on a domain
    on_own_domain: OnOwnDomain | None = None  # a value that must lie on one of the organization's domains
    plan_gated: bool = False  # only an organization on a paid plan may hold it
    checks: tuple[Check, ...] = ()  # the rules one resource can break on its own
    advice: tuple[Check, ...] = ()  # likewise, for what is allowed but probably not meant (warnings)
    role: str | None = None  # the spec field holding a person's role (administrators are counted by it)
    billing: str | None = None  # the spec field holding the subscription tier billed to the organization
    archive: Archive | None = None  # DELETE archives it (it stays readable); archived is final
    # Spec fields whose absent value is another field's value (a User's username is its email): the backend
    # stores the value, and the essence reads an absent one as the other field, so that neither side diffs.
    derived_defaults: dict[str, str] = field(default_factory=dict)
    wire_spec: type[Model] | None = None  # the backend's variant of the spec, when it differs
    document: type[Model] = field(init=False)  # the manifest document model
    wire_document: type[Model] = field(init=False)  # the document model the backend accepts

    def __post_init__(self) -> None:
        document = document_model(self.name, self.spec, self.scoped)
        object.__setattr__(self, "document", document)
        wire = document_model(self.name, self.wire_spec, self.scoped) if self.wire_spec else document
        object.__setattr__(self, "wire_document", wire)

    @property
    def parent_field(self) -> str | None:
        """The field naming a resource's parent of the same kind (an organization's hierarchy), if any."""
        return next((r.field for r in self.references if r.kind == self.name), None)

    @property
    def delete_archives(self) -> bool:
        return self.archive is not None

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

    def validate_wire(self, document: Any) -> Model:
        """A document as the backend receives it, validated with JSON's own types, as manifests are: "yes"
        is not true, and "5" and true are not 5 (lax coercion would store values nobody wrote). A whole
        number written 5.0 is 5, as in JSON Schema and in manifests. Raises pydantic's ValidationError."""
        try:
            return self.wire_document.model_validate_json(_encoded(document), strict=True)
        except ValidationError:  # refused documents only: again with 5.0 read as 5 (any other error stands)
            return self.wire_document.model_validate_json(_encoded(_whole_numbers(document)), strict=True)

    def fill_derived(self, spec: dict[str, Any]) -> None:
        """Give each absent derived field its source field's value, in place (see `derived_defaults`)."""
        for name, source in self.derived_defaults.items():
            if spec.get(name) is None and spec.get(source) is not None:
                spec[name] = spec[source]

    def essence(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The comparable core of a spec: defaults filled in (derived ones too), sets sorted, sensitive fields
        left out.

        `spec` must already be valid for this kind (manifest or wire form) and JSON-plain (no enums: plans
        compare 200,000 of these at 100,000 resources, so nothing is converted here). Lists are shared with
        `spec`, except unordered ones, which are new sorted lists.
        """
        out = self.defaults()
        for k, v in spec.items():
            if v is not None or k not in out:
                out[k] = v
        self.fill_derived(out)
        for name in self.sensitive:
            out.pop(name, None)
        for name in self.unordered:
            if isinstance(out.get(name), list):
                out[name] = sorted(set(out[name]))
        return out

    def effective(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec with the kind's defaults filled in (the facts reason about effective values)."""
        out = dict(self._defaults)
        for k, v in spec.items():  # a loop, not update() of a generator: three times faster, asked 100,000s of times
            if v is not None:
                out[k] = v
        return out

    def claim_values(self, spec: dict[str, Any]) -> list[ClaimValue]:
        """Every unique value the resource holds, from an effective spec."""
        return [value for unique in self.claims for value in unique.values(spec)]

    def claim_keys(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        """(namespace, key) of every unique value the resource holds, from an effective spec: `claim_values`
        without the words for messages."""
        return [key for unique in self.claims for key in unique.keys(spec)]

    def findings(self, name: str, spec: dict[str, Any]) -> list[tuple[Path, str]]:
        """What the resource's own checks say about an effective spec: (path, message) each."""
        return [found for check in self.checks for found in check(name, spec)]

    def advice_for(self, name: str, spec: dict[str, Any]) -> list[tuple[Path, str]]:
        """What the resource's own advice says (warnings): (path, message) each."""
        return [found for check in self.advice for found in check(name, spec)]

    def mailbox_domain(self, spec: dict[str, Any]) -> str | None:
        """The domain on which the resource consumes a mailbox address, or None."""
        return self.mailbox.domain(spec) if self.mailbox else None

    def limit_of(self, spec: dict[str, Any]) -> tuple[str, int] | None:
        """(domain, maximum) when the resource limits the mailboxes on a domain, else None."""
        return self.limit.of(spec) if self.limit else None

    def owned_domain(self, spec: dict[str, Any]) -> str | None:
        """The domain that must be one of the organization's, or None."""
        return self.on_own_domain.domain(spec) if self.on_own_domain else None

    def archived(self, spec: dict[str, Any]) -> bool:
        return self.archive is not None and self.archive.archived(spec)


def _encoded(document: Any) -> bytes:
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:  # integers beyond 64 bits: the standard library encodes them
        return json.dumps(document).encode()


def _whole_numbers(value: Any) -> Any:
    """`value` with every float that is a whole number made an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


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


EXEMPT_FROM_MAILBOX = frozenset({Role.EXTERNAL.value})  # external users have no mailbox and no domain of ours
ADDRESS_RULE = "an address belongs to one user or alias across the whole backend"


def plan_allows_gated(organization_spec: dict[str, Any]) -> bool:
    """Whether an organization's plan lets it hold the plan-gated kinds (users, teams, aliases, quotas)."""
    return organization_spec.get("plan") in PAID_PLANS


ORGANIZATION = Kind(
    name="Organization",
    plural="organizations",
    spec=OrganizationSpec,
    status=OrganizationStatus,
    scoped=False,
    references=(Reference("parent", "Organization"),),
    unordered=frozenset({"domains"}),
    claims=(
        Unique("domain", "domains", "domain", "a domain belongs to exactly one organization"),
        Unique(
            "org-display-name",
            "displayName",
            "displayName",
            "organizations with the same parent need distinct display names",
            normalise=keep,
            within="parent",
        ),
    ),
    checks=(checks.standard_charset, checks.not_its_own_parent, checks.domains_listed_once),
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
    claims=(
        Unique("address", "email", "address", ADDRESS_RULE),
        Unique(
            "username",
            "username",
            "username",
            "a username belongs to one user across the whole backend (left out, it is the email): choose another",
            default_from="email",
        ),
    ),
    derived_defaults={"username": "email"},
    mailbox=Mailbox("email", "role", EXEMPT_FROM_MAILBOX),
    on_own_domain=OnOwnDomain(
        "email",
        role="role",
        exempt=EXEMPT_FROM_MAILBOX,
        fix="use an address on one of its domains, add the domain to the organization, or set role: external",
    ),
    plan_gated=True,
    advice=(checks.billing_rights_for_collaborators,),
    role="role",
    billing="subscription",
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
    plan_gated=True,
    checks=(checks.leader_is_member,),
    rank=3,
)
MAILBOX_QUOTA = Kind(
    name="MailboxQuota",
    plural="mailbox-quotas",
    spec=MailboxQuotaSpec,
    status=MailboxQuotaStatus,
    scoped=True,
    immutable=frozenset({"domain"}),
    claims=(
        Unique(
            "quota-domain", "domain", "a mailbox quota for domain", "a domain has at most one MailboxQuota: merge them"
        ),
    ),
    limit=Limit("domain", "maxAddresses"),
    on_own_domain=OnOwnDomain("domain", is_domain=True),
    plan_gated=True,
    checks=(checks.quota_minimum,),
    rank=1,
)
ALIAS = Kind(
    name="Alias",
    plural="aliases",
    spec=AliasSpec,
    status=None,
    scoped=True,
    references=(Reference("user", "User"),),
    claims=(Unique("address", "address", "address", ADDRESS_RULE),),
    on_own_domain=OnOwnDomain(
        "address", fix="an alias must use one of its domains, or add the domain to the organization"
    ),
    plan_gated=True,
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
    checks=(checks.contact_when_customer_edits, checks.signature_modes_fit_product),
    archive=Archive("state", SubscriptionState.ARCHIVED.value),
    rank=1,
    replace_note="replacing a CustomerSubscription archives the old subscription and starts a new trial",
)

KINDS: dict[str, Kind] = {k.name: k for k in (ORGANIZATION, USER, TEAM, MAILBOX_QUOTA, ALIAS, CUSTOMER_SUBSCRIPTION)}
KINDS_BY_PLURAL: dict[str, Kind] = {k.plural: k for k in KINDS.values()}
# The one kind not scoped: organizations are the tenants every other resource lives under (their key has
# organization ''), and they form the hierarchy. The backend's storage of tenants asks for it by this name.
TENANT_KIND = ORGANIZATION.name
assert [k.name for k in KINDS.values() if not k.scoped] == [TENANT_KIND]
PLAN_GATED_KINDS = tuple(k.name for k in KINDS.values() if k.plan_gated)
PEOPLE_KINDS = tuple(k.name for k in KINDS.values() if k.role is not None)  # counted as users, admins among them
BILLED_KINDS = tuple(k.name for k in KINDS.values() if k.billing is not None)
MAILBOX_KINDS = tuple(k.name for k in KINDS.values() if k.mailbox is not None)
LIMIT_KINDS = tuple(k.name for k in KINDS.values() if k.limit is not None)


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
    "ADDRESS_RULE",
    "ALIAS",
    "CUSTOMER_SUBSCRIPTION",
    "MAILBOX_QUOTA",
    "ORGANIZATION",
    "TEAM",
    "USER",
    "EXEMPT_FROM_MAILBOX",
    "BILLED_KINDS",
    "KINDS",
    "LIMIT_KINDS",
    "PEOPLE_KINDS",
    "MAILBOX_KINDS",
    "PLAN_GATED_KINDS",
    "KINDS_BY_PLURAL",
    "SERVER_METADATA",
    "STACK_LABEL",
    "BLUEPRINT_LABEL",
    "EXPANSION_LABELS",
    "RESERVED_LABEL_PREFIX",
    "TENANT_KIND",
    "TENANT_LABEL",
    "Kind",
    "Reference",
    "ResourceKey",
    "kind_of",
    "mail_domain",
    "owning_organization",
    "plan_allows_gated",
    "to_snake",
]
