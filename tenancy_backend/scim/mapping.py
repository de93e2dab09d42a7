"""Tenancy documents ⇄ SCIM resources (SPEC §8). Pure: documents and models in, documents and models out.

Users ↔ User: `userName` ↔ spec.username, the primary of `emails` ↔ spec.email, `displayName` and
`name.formatted` ↔ spec.displayName, `active` ↔ spec.active, `password` → the password (write-only),
`externalId` kept in the resource's directory record, `id` = metadata.uid, `meta.version` = the ETag.
Groups ↔ Team: `displayName`, `members` (`value` = a user's id), `externalId`.

What SCIM does not show (a user's role, subscription, passwordVersion...; a team's leader, shares...)
is left as it is by every write. A user created over SCIM gets a name derived from its username, role
`collaborator` on one of the organization's domains and `external` (no mailbox) elsewhere, and
subscription `free`; nothing carries a stack label.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scim2_models import InvalidValueException, MutabilityException, Reference

from tenancy_kinds import API_VERSION, EMAIL_PATTERN, Role, Tier, mail_domain
from tenancy_backend.scim.models import (
    ENDPOINTS,
    Email,
    Group,
    GroupMember,
    Name,
    User,
    meta,
)

EXTERNAL_ID = "externalId"
EMAIL_TYPE = "emailType"  # the type of the address, as the directory sent it (Entra filters on it)
CLEARED = "cleared"  # optional SCIM attributes the directory left out or removed (name)
_ADDRESS = re.compile(EMAIL_PATTERN)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Place:
    """Where an organization's SCIM resources live: its base URL, e.g. https://host/scim/v2/acme."""

    base: str

    def location(self, resource_type: str, uid: str) -> str:
        return f"{self.base}/{ENDPOINTS[resource_type]}/{uid}"


@dataclass(frozen=True)
class Written:
    """What a SCIM write becomes: the tenancy document, and the resource's directory record."""

    document: dict[str, Any]
    directory: dict[str, Any] | None


def etag(document: Mapping[str, Any]) -> str:
    return f'"{document["metadata"]["resourceVersion"]}"'


def uid_of(document: Mapping[str, Any]) -> str:
    return str(document["metadata"]["uid"])


def directory_of(document: Mapping[str, Any]) -> dict[str, Any]:
    return dict((document.get("status") or {}).get("directory") or {})


def slug(text: str, fallback: str) -> str:
    """A resource name derived from a login or display name: lowercase ASCII, dashes, at most 63
    characters (an address gives its local part: ada.lovelace@acme.example → ada-lovelace)."""
    base = text.rsplit("@", 1)[0] if _ADDRESS.match(text) else text
    ascii_text = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode().lower()
    name = _NOT_SLUG.sub("-", ascii_text).strip("-")[:63].strip("-")
    return name or fallback


def _meta(document: Mapping[str, Any], resource_type: str, place: Place) -> Any:
    metadata = document["metadata"]
    return meta(
        resource_type,
        place.location(resource_type, metadata["uid"]),
        version=etag(document),
        created=metadata["createdAt"],
        last_modified=metadata["updatedAt"],
    )


def _record(resource: User | Group, cleared: list[str], email_type: str | None = None) -> dict[str, Any] | None:
    record: dict[str, Any] = {}
    if resource.external_id is not None:
        record[EXTERNAL_ID] = resource.external_id
    if email_type is not None:
        record[EMAIL_TYPE] = email_type
    if cleared:
        record[CLEARED] = cleared
    return record or None


# --- users ----------------------------------------------------------------------------------------


def user_resource(document: Mapping[str, Any], place: Place) -> User:
    spec = document["spec"]
    directory = directory_of(document)
    shown_name = "name" not in directory.get(CLEARED, [])
    return User(
        id=uid_of(document),
        external_id=directory.get(EXTERNAL_ID),
        meta=_meta(document, "User", place),
        user_name=spec["username"],
        name=Name(formatted=spec["displayName"]) if shown_name else None,
        password=None,
        display_name=spec["displayName"],
        active=spec["active"],
        emails=[Email(value=spec["email"], type=directory.get(EMAIL_TYPE), primary=True)],
    )


def _primary_email(resource: User) -> Email:
    """A user's email: the primary one, else its only or first one."""
    emails = [e for e in resource.emails or [] if e.value]
    if not emails:
        raise InvalidValueException(
            detail="a user needs an address: send emails, or a userName that is an address"
        )
    return next((e for e in emails if e.primary), emails[0])


def primary_address(resource: User) -> str:
    return str(_primary_email(resource).value)


def _display_name(after: User, before: User | None) -> str:
    """displayName and name.formatted are one field: the one this request changed wins (displayName when
    both did), else displayName, else name.formatted, else the userName."""
    formatted = after.name.formatted if after.name else None
    before_formatted = before.name.formatted if before and before.name else None
    if before is not None and after.display_name == before.display_name and formatted and formatted != before_formatted:
        return formatted
    return after.display_name or formatted or str(after.user_name)


def user_document(
    resource: User,
    organization: str,
    domains: list[str],
    *,
    current: Mapping[str, Any] | None = None,
    before: User | None = None,
) -> Written:
    """The User document a SCIM user stands for: a new one, or `current` with SCIM's fields replaced."""
    address = primary_address(resource)
    if current is None:
        role = Role.COLLABORATOR if mail_domain(address) in {d.lower() for d in domains} else Role.EXTERNAL
        spec: dict[str, Any] = {"email": address, "role": role.value, "subscription": Tier.FREE.value}
        metadata: dict[str, Any] = {"name": slug(str(resource.user_name), "user"), "organization": organization}
    else:
        spec = dict(current["spec"])
        if address.lower() != str(spec["email"]).lower():
            raise MutabilityException(attribute="emails", detail=IMMUTABLE_ADDRESS)
        kept = ("name", "organization", "labels", "protected")
        metadata = {k: v for k, v in current["metadata"].items() if k in kept}
    active = True if resource.active is None else resource.active
    spec.update(username=resource.user_name, displayName=_display_name(resource, before), active=active)
    if resource.password is not None:
        spec["password"] = resource.password
    document = {"apiVersion": API_VERSION, "kind": "User", "metadata": metadata, "spec": spec}
    cleared = [] if resource.name and resource.name.formatted else ["name"]
    return Written(document, _record(resource, cleared, _primary_email(resource).type))


IMMUTABLE_ADDRESS = (
    "emails is immutable: a user's address is its mailbox, and a new address would destroy it; create a user "
    "with the new address (then delete this one) instead"
)


def same_address(resource: User, stored: User) -> User:
    """`resource` with its emails written as stored, when they name the stored address (ignoring case and
    the sub-attributes left out); MutabilityException when they name another one."""
    if resource.emails and stored.emails:
        if primary_address(resource).lower() != primary_address(stored).lower():
            raise MutabilityException(attribute="emails", detail=IMMUTABLE_ADDRESS)
        resource.emails = [e.model_copy() for e in stored.emails]
    return resource


def _key(payload: Mapping[str, Any], name: str) -> str | None:
    """The key a payload uses for an attribute (SCIM attribute names ignore case)."""
    return next((k for k in payload if isinstance(k, str) and k.lower() == name.lower()), None)


def _value(payload: Mapping[str, Any], name: str) -> Any:
    key = _key(payload, name)
    return None if key is None else payload[key]


def with_user_defaults(payload: Any, stored: User | None = None) -> Any:
    """A POST or PUT body with what a tenancy user always has filled in where it is left out: displayName
    (name.formatted, else the userName), active (true), emails (the stored ones; on creation the userName
    when it is an address). Anything but an object is returned as it is, for the model to refuse."""
    if not isinstance(payload, dict):
        return payload
    out = dict(payload)
    user_name = _value(out, "userName")
    name = _value(out, "name")
    if _value(out, "displayName") is None:
        formatted = _value(name, "formatted") if isinstance(name, dict) else None
        out[_key(out, "displayName") or "displayName"] = formatted or user_name
    if _value(out, "active") is None:
        out[_key(out, "active") or "active"] = True
    if not _value(out, "emails"):
        if stored is not None and stored.emails:
            out[_key(out, "emails") or "emails"] = [
                e.model_dump(scim_ctx=None, exclude_none=True) for e in stored.emails
            ]
        elif isinstance(user_name, str) and _ADDRESS.match(user_name):
            out[_key(out, "emails") or "emails"] = [{"value": user_name, "primary": True}]
    return out


# --- groups ---------------------------------------------------------------------------------------


def group_resource(document: Mapping[str, Any], uids: Mapping[str, str], place: Place) -> Group:
    """A team as a Group; `uids` maps the organization's user names to their ids."""
    spec = document["spec"]
    members = [
        GroupMember(value=uids[name], ref=Reference(place.location("User", uids[name])), type="User")
        for name in spec.get("members", [])
        if name in uids
    ]
    return Group(
        id=uid_of(document),
        external_id=directory_of(document).get(EXTERNAL_ID),
        meta=_meta(document, "Group", place),
        display_name=spec["displayName"],
        members=members or None,
    )


def member_ids(resource: Group) -> list[str]:
    return list(dict.fromkeys(str(m.value) for m in resource.members or [] if m.value))


def group_document(
    resource: Group, organization: str, names: Mapping[str, str], *, current: Mapping[str, Any] | None = None
) -> Written:
    """The Team document a SCIM group stands for; `names` maps user ids to names (unknown ids refused).

    A leader who leaves the members stops leading (the directory owns membership)."""
    unknown = [uid for uid in member_ids(resource) if uid not in names]
    if unknown:
        raise InvalidValueException(
            detail=f"members: no user with id {unknown[0]!r} in organization {organization!r}; "
            "a team's members are users of its organization"
        )
    members = [names[uid] for uid in member_ids(resource)]
    if current is None:
        spec: dict[str, Any] = {}
        metadata: dict[str, Any] = {"name": slug(str(resource.display_name), "team"), "organization": organization}
    else:
        spec = dict(current["spec"])
        metadata = {
            k: v for k, v in current["metadata"].items() if k in ("name", "organization", "labels", "protected")
        }
    spec.update(displayName=resource.display_name, members=members)
    if spec.get("leader") not in members:
        spec["leader"] = None
    document = {"apiVersion": API_VERSION, "kind": "Team", "metadata": metadata, "spec": spec}
    return Written(document, _record(resource, []))


def without_member(document: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A team document without one member (a deprovisioned user): the same team otherwise."""
    spec = dict(document["spec"])
    spec["members"] = [m for m in spec.get("members", []) if m != name]
    if spec.get("leader") == name:
        spec["leader"] = None
    return {**document, "spec": spec}


__all__ = [
    "Place",
    "Written",
    "directory_of",
    "etag",
    "group_document",
    "group_resource",
    "member_ids",
    "primary_address",
    "same_address",
    "slug",
    "uid_of",
    "user_document",
    "user_resource",
    "with_user_defaults",
    "without_member",
]
