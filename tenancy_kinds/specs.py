"""What a resource document may say: patterns, enumerations and the pydantic models of every kind's spec,
status and document. The table of kinds (`tenancy_kinds.table`) gives each kind its model from here.

Models are pydantic v2 with camelCase aliases and `extra="forbid"`, so an unknown field is an error, never
silently dropped. A spec model describes what a *manifest* may say. The backend accepts the same
documents, except that a User's `password` arrives there as the clear value (`WireUserSpec`), because the
provider resolves the `fromEnv` / `fromFile` source before sending it.
"""

from __future__ import annotations

from collections import Counter
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel
from pydantic.types import JsonValue

API_VERSION = "tenancy/v1"

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
# DNS names are case-insensitive: any case is accepted, and kept lowercased (`DnsName`).
DNS_PATTERN = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
EMAIL_PATTERN = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
# White space as any of the regular-expression dialects that read these patterns means it (Python's `re`,
# pydantic-core's Rust `regex`, ECMA-262 in JSON Schema tools): their `\s` differ (U+0085, U+001C..1F and
# U+FEFF are white space to some and not to others), so the patterns name the characters and never use `\s`.
SPACE = r"\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
HTTPS_URL_PATTERN = rf"^https://[^{SPACE}/$.?#][^{SPACE}]*$"
LABEL_KEY_PATTERN = r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]


def _lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


DnsName = Annotated[str, StringConstraints(pattern=DNS_PATTERN, max_length=253), BeforeValidator(_lowercase)]
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=254)]
HttpsUrl = Annotated[str, StringConstraints(pattern=HTTPS_URL_PATTERN, max_length=2048)]
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=253)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=2000)]
USERNAME_PATTERN = rf"^[^{SPACE}\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^{SPACE}\x00-\x1f\x7f])?$"
# A login name: 1..254 characters, no control characters, no leading or trailing space (a directory's userName).
Username = Annotated[str, StringConstraints(min_length=1, max_length=254, pattern=USERNAME_PATTERN)]


class Model(BaseModel):
    """Base of every document part: camelCase in documents, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, use_enum_values=True, defer_build=True)


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
    active: bool = Field(
        default=True, description="false suspends the account: no login; mailbox and mail kept, still billed"
    )
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
UNIQUE_ITEMS: dict[str, JsonValue] = {"uniqueItems": True}


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
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, json_schema_extra={"additionalProperties": False})
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


def document_model(kind: str, spec: type[Model], scoped: bool) -> type[Model]:
    metadata: type[Model] = ScopedMetadata if scoped else OrganizationMetadata
    namespace: dict[str, Any] = {
        "__annotations__": {
            "api_version": Literal["tenancy/v1"],
            "kind": Literal[kind],
            "metadata": metadata,
            "spec": spec,
            "status": dict[str, Any] | None,
        },
        "status": None,
        "__doc__": f"A {kind} resource document (apiVersion tenancy/v1).",
    }
    return type(f"{kind}Document", (Model,), namespace)
