"""The table of kinds: every kind's model, identity, immutable fields, references and order, declared once.

Every layer reads this table (validation, rules, diff, ordering, client paths, the backend, Pulumi,
schemas); no layer branches on a kind's name. Models are pydantic v2 with camelCase aliases and
`extra="forbid"`, so an unknown field is an error, never silently dropped.

A spec model describes what a *manifest* may say. The backend accepts the same documents, except that a
User's `password` arrives there as the clear value (`WIRE_SPECS`), because the provider resolves the
`fromEnv` / `fromFile` source before sending it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonDict

API_VERSION = "tenancy/v1"
STACK_LABEL = "tenancy/stack"

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
DNS_PATTERN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
EMAIL_PATTERN = r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
HTTPS_URL_PATTERN = r"^https://[^\s/$.?#][^\s]*$"
LABEL_KEY_PATTERN = r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
DnsName = Annotated[str, StringConstraints(pattern=DNS_PATTERN, max_length=253)]
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=254)]
HttpsUrl = Annotated[str, StringConstraints(pattern=HTTPS_URL_PATTERN, max_length=2048)]
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=253)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=2000)]
# A login name: 1..254 characters, no control characters, no leading or trailing space (a directory's userName).
Username = Annotated[str, StringConstraints(min_length=1, max_length=254, pattern=r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$")]


class Model(BaseModel):
    """Base of every document part: camelCase in documents, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, use_enum_values=True)


# --- enumerations ---------------------------------------------------------------------------------


class OrgType(str, Enum):
    STANDARD = "standard"
    CUSTOM = "custom"


class Edition(str, Enum):
    BASIC = "basic"
    PROFESSIONAL = "professional"


class Tier(str, Enum):
    """An organization's plan and a user's subscription share these tiers."""

    FREE = "free"
    ENTRY = "entry"
    PRO = "pro"


class Role(str, Enum):
    LEGAL_REPRESENTATIVE = "legal-representative"
    ADMINISTRATOR = "administrator"
    COLLABORATOR = "collaborator"
    EXTERNAL = "external"


ADMIN_ROLES = frozenset({Role.LEGAL_REPRESENTATIVE.value, Role.ADMINISTRATOR.value})
PAID_PLANS = frozenset({Tier.ENTRY.value, Tier.PRO.value})


class AccountType(str, Enum):
    PERSON = "person"
    MAILING_LIST = "mailing-list"


class Share(str, Enum):
    CALENDARS = "calendars"
    DOCUMENTS = "documents"
    CONTACTS = "contacts"
    MAILBOXES = "mailboxes"


class Offer(str, Enum):
    STARTER = "starter"
    STANDARD = "standard"


OFFER_MINIMUM = {Offer.STARTER.value: 1, Offer.STANDARD.value: 5}


class Product(str, Enum):
    SIGNATURES_MICROSOFT_365 = "signatures-microsoft-365"
    SIGNATURES_GOOGLE_WORKSPACE = "signatures-google-workspace"


class SignatureMode(str, Enum):
    SERVER_SIDE = "server-side"
    CLIENT_SIDE = "client-side"
    EXCHANGE_ON_PREMISES = "exchange-on-premises"


class SubscriptionState(str, Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Phase(str, Enum):
    TRIAL = "trial"
    ACTIVE = "active"
    ARCHIVED = "archived"


# --- spec parts -----------------------------------------------------------------------------------


# The 249 officially assigned ISO 3166-1 alpha-2 codes (as listed by pycountry 24.6): user-assigned codes
# (XX, ZZ, QQ...) and reserved ones (UK: the United Kingdom is GB) are not countries.
ISO_3166_ALPHA_2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
    BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
    ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
    IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
    NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
    SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
    VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()
)


def _country(code: str) -> str:
    if code not in ISO_3166_ALPHA_2:
        hint = " (the United Kingdom is GB)" if code == "UK" else ""
        raise ValueError(f"{code!r} is not an officially assigned ISO 3166-1 alpha-2 country code{hint}")
    return code


class BillingAddress(Model):
    name: Text
    street: Text
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    city: Text
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_country)] = Field(
        description="ISO 3166-1 alpha-2 country code, e.g. DE"
    )


class FromEnv(Model):
    from_env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        description="name of the environment variable holding the password"
    )


class FromFile(Model):
    from_file: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="path of a file holding the password, relative to the manifest"
    )


SecretSource = FromEnv | FromFile


class Contact(Model):
    name: Text
    email: Email


class Money(Model):
    amount: str
    currency: str = "EUR"


# --- specs ----------------------------------------------------------------------------------------


class OrganizationSpec(Model):
    display_name: Text
    parent: Slug | None = None
    type: OrgType = OrgType.STANDARD
    edition: Edition = Edition.BASIC
    charset: Annotated[str, StringConstraints(min_length=1, max_length=40)] = "UTF-8"
    logo_url: HttpsUrl | None = None
    plan: Tier = Tier.FREE
    domains: list[DnsName] = Field(default_factory=list)
    billing_address: BillingAddress | None = None


class UserSpec(Model):
    email: Email
    display_name: Text
    role: Role = Role.COLLABORATOR
    subscription: Tier = Tier.FREE
    account_type: AccountType = AccountType.PERSON
    billing_rights: bool = False
    billing_reminders: bool = True
    password: SecretSource | None = Field(default=None, description="write-only secret source")
    password_version: Annotated[int, Field(ge=1, le=2**31 - 1)] = 1  # stays an exact integer everywhere
    active: bool = Field(default=True, description="false suspends the account: no login; mailbox and mail kept, still billed")
    username: Username | None = Field(default=None, description="the login name; default: the email")


class WireUserSpec(UserSpec):
    """A User as the backend receives it: the password is the clear value (write-only)."""

    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None  # type: ignore[assignment]


def _listed_once(values: list[Any]) -> list[Any]:
    """A list that is a set (members, shares...): each value once."""
    counts = Counter(getattr(v, "value", v) for v in values)
    repeated = [(value, n) for value, n in counts.items() if n > 1]
    if repeated:
        value, n = repeated[0]
        raise ValueError(f"{value!r} is listed {n} times; list it once")
    return values


LISTED_ONCE = AfterValidator(_listed_once)
UNIQUE_ITEMS: JsonDict = {"uniqueItems": True}


class TeamSpec(Model):
    display_name: Text
    description: LongText | None = None
    members: Annotated[list[Slug], LISTED_ONCE] = Field(default_factory=list, json_schema_extra=UNIQUE_ITEMS)
    external_members: Annotated[list[Email], LISTED_ONCE] = Field(default_factory=list, json_schema_extra=UNIQUE_ITEMS)
    leader: Slug | None = None
    shares: Annotated[list[Share], LISTED_ONCE] = Field(default_factory=list, json_schema_extra=UNIQUE_ITEMS)


class MailboxQuotaSpec(Model):
    domain: DnsName
    offer: Offer = Offer.STANDARD
    max_addresses: Annotated[int, Field(ge=1, le=10_000_000)]


class AliasSpec(Model):
    address: Email
    user: Slug


class CustomerSubscriptionSpec(Model):
    product: Product
    customer_name: Text
    users: Annotated[int, Field(ge=1, le=10_000_000)] = 1
    customer_can_edit_signatures: bool = False
    contact: Contact | None = None
    signature_modes: Annotated[list[SignatureMode], LISTED_ONCE] = Field(
        default_factory=lambda: [SignatureMode.SERVER_SIDE], json_schema_extra=UNIQUE_ITEMS
    )
    state: SubscriptionState = SubscriptionState.ACTIVE


# --- statuses (read-only, from the backend) -------------------------------------------------------


class OrganizationStatus(Model):
    user_count: int = 0
    admin_count: int = 0
    monthly_cost: Money | None = None
    balance: Money | None = None


class UserStatus(Model):
    mailbox: bool = False


class MailboxQuotaStatus(Model):
    used_addresses: int = 0


class CustomerSubscriptionStatus(Model):
    subscription_id: str | None = None
    phase: Phase | None = None
    trial_ends_at: str | None = None


# --- documents ------------------------------------------------------------------------------------


class _MetadataBase(Model):
    name: Slug
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, json_schema_extra={"additionalProperties": False}
    )
    protected: bool = False
    # Server-managed and read-only: accepted so that a document read from the API can be sent back.
    uid: str | None = None
    resource_version: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class OrganizationMetadata(_MetadataBase):
    pass


class ScopedMetadata(_MetadataBase):
    organization: Slug


def _document_model(kind: str, spec: type[Model], scoped: bool) -> type[Model]:
    metadata: type[Model] = ScopedMetadata if scoped else OrganizationMetadata
    namespace: dict[str, Any] = {
        "__annotations__": {
            "api_version": Literal["tenancy/v1"],
            "kind": Literal[kind],  # type: ignore[valid-type]
            "metadata": metadata,
            "spec": spec,
            "status": dict[str, Any] | None,
        },
        "status": None,
        "__doc__": f"A {kind} resource document (apiVersion tenancy/v1).",
    }
    return type(f"{kind}Document", (Model,), namespace)


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
    # Spec fields whose absent value is another field's value (a User's username is its email): the backend
    # stores the value, and the essence reads an absent one as the other field, so that neither side diffs.
    derived_defaults: dict[str, str] = field(default_factory=dict)
    wire_spec: type[Model] | None = None  # the backend's variant of the spec, when it differs
    document: type[Model] = field(init=False)  # the manifest document model
    wire_document: type[Model] = field(init=False)  # the document model the backend accepts

    def __post_init__(self) -> None:
        document = _document_model(self.name, self.spec, self.scoped)
        object.__setattr__(self, "document", document)
        wire = _document_model(self.name, self.wire_spec, self.scoped) if self.wire_spec else document
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
    unique=(("email", "address"), ("username", "username")),
    derived_defaults={"username": "email"},
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
    "ADMIN_ROLES",
    "mail_domain",
    "API_VERSION",
    "KINDS",
    "KINDS_BY_PLURAL",
    "OFFER_MINIMUM",
    "PAID_PLANS",
    "SERVER_METADATA",
    "STACK_LABEL",
    "Kind",
    "Reference",
    "ResourceKey",
    "kind_of",
    "owning_organization",
    "to_snake",
]
