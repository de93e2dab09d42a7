"""The SCIM resources this server serves (RFC 7643), as scim2-models classes, and its discovery documents.

The two models hold exactly the attributes served, each with its real characteristics: `/Schemas`
publishes what these classes declare (`Model.to_schema()`), so the schema and the server cannot drift
apart. Attributes a tenancy resource always has are `required` (a request may leave some out: the server
fills them in, see `tenancy_backend.scim.mapping`); `emails` is `immutable`, because an address change
replaces the mailbox (SPEC §2), and SCIM refuses it with `mutability`.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import Field
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Filter,
    Meta,
    Mutability,
    Pagination,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    Returned,
    Schema,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)

from tenancy_kinds import TEAM, USER

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
MAX_RESULTS = 1000  # per list response (the service's own page limit)
DOCUMENTATION = "https://tenancy.example/docs/scim"  # a stable identifier, as the JSON Schemas' $id


class Name(ComplexAttribute):
    formatted: Annotated[str | None, Mutability.read_write] = Field(
        None, description="the full name; the user's display name (spec.displayName)"
    )


class Email(ComplexAttribute):
    value: Annotated[str | None, Required.true, Mutability.immutable] = Field(
        None, description="the user's address and mailbox (spec.email)"
    )
    type: Annotated[str | None, Mutability.immutable] = Field(
        None, examples=["work", "home", "other"], description="kept as the directory sent it"
    )
    primary: Annotated[bool | None, Mutability.immutable] = Field(
        None, description="always true: a user has one address"
    )


class User(Resource[Any]):
    """A person or mailing list of the organization (a tenancy User)."""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Uniqueness.server, Required.true, CaseExact.false] = Field(
        None, description="the login name, unique across the backend ignoring case (spec.username)"
    )
    name: Annotated[Name | None, Mutability.read_write] = Field(
        None, description="name.formatted is the display name"
    )
    display_name: Annotated[str | None, Required.true] = Field(
        None, description="spec.displayName; left out, name.formatted, else the userName"
    )
    active: Annotated[bool | None, Required.true] = Field(
        None,
        description="false suspends the account (spec.active): mailbox and mail kept, still billed; left out, true",
    )
    password: Annotated[str | None, Mutability.write_only, Returned.never, CaseExact.true] = Field(
        None, description="write-only; the tenancy strength rules apply"
    )
    emails: Annotated[list[Email] | None, Mutability.immutable, Required.true] = Field(
        None,
        description="one address, the mailbox (spec.email); immutable: a new address is a new user. Left out, "
        "the userName when it is an address",
    )


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Required.true, Mutability.immutable, CaseExact.true] = Field(
        None, description="the id of a User of the organization"
    )
    ref: Annotated[Reference[User] | None, Mutability.immutable] = Field(
        None, serialization_alias="$ref", validation_alias="$ref", description="the member's location"
    )
    type: Annotated[str | None, Mutability.immutable] = Field(
        None, examples=["User"], description="always User: a team holds users"
    )


class Group(Resource[Any]):
    """A work team of the organization (a tenancy Team)."""

    __schema__ = URN(GROUP_SCHEMA)

    display_name: Annotated[str | None, Required.true] = Field(None, description="spec.displayName")
    members: list[GroupMember] | None = Field(None, description="the team's members (spec.members), users only")


# SCIM's resource types (RFC 7643 §3) and the kinds of the table they are made of.
SCIM_USER, SCIM_GROUP = "User", "Group"
SERVED: dict[str, type[Resource[Any]]] = {SCIM_USER: User, SCIM_GROUP: Group}  # resource type name → model
ENDPOINTS = {SCIM_USER: "Users", SCIM_GROUP: "Groups"}
KIND_OF = {SCIM_USER: USER.name, SCIM_GROUP: TEAM.name}
RESOURCE_TYPE_OF = {kind: resource_type for resource_type, kind in KIND_OF.items()}


@functools.cache
def served_schemas() -> tuple[Schema, ...]:
    """The schemas of the served resources, then those of the discovery resources (RFC 7643 §7); built
    once (copy one before giving it a meta)."""
    out = []
    described: list[type[Resource[Any]]] = [*SERVED.values(), ServiceProviderConfig, ResourceType, Schema]
    for model in described:
        schema = model.to_schema()
        schema.name = model.__name__
        out.append(schema)
    return tuple(out)


def resource_types() -> list[ResourceType]:
    out = []
    for name, model in SERVED.items():
        resource_type = ResourceType.from_resource(model)
        resource_type.endpoint = Reference(f"/{ENDPOINTS[name]}")
        resource_type.description = (model.__doc__ or name).strip()
        resource_type.schema_extensions = None
        out.append(resource_type)
    return out


def service_provider_config() -> ServiceProviderConfig:
    """What this server supports: PATCH, filters, sorting, ETags, passwords; no bulk, no cursors."""
    return ServiceProviderConfig(
        documentation_uri=Reference(DOCUMENTATION),
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=True),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="a tenancy API token (tenancy token create --organization ORG), as "
                "`Authorization: Bearer <token>`",
                primary=True,
            )
        ],
        pagination=Pagination(cursor=False, index=True, default_page_size=100, max_page_size=MAX_RESULTS),
    )


def meta(resource_type: str, location: str, *, version: str | None = None, **dates: Any) -> Meta:
    return Meta(resource_type=resource_type, location=location, version=version, **dates)


__all__ = [
    "ENDPOINTS",
    "GROUP_SCHEMA",
    "MAX_RESULTS",
    "SERVED",
    "USER_SCHEMA",
    "Email",
    "Group",
    "GroupMember",
    "Name",
    "User",
    "meta",
    "resource_types",
    "served_schemas",
    "service_provider_config",
]
