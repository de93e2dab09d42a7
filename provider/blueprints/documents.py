"""The shapes of the two documents that are not resources (SPEC §6): `kind: Blueprint` and `kind: Tenant`.

Pydantic models, so that the readers check them as strictly as the resource documents (unknown fields are
errors, worded by the one translator) and `provider.schemas` publishes their JSON Schemas. A blueprint's
resources are templates: their fields are checked after expansion, by their kind's own model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tenancy_kinds import API_VERSION
from tenancy_kinds.specs import LabelKey, LabelValue, LongText, Model, Slug

BLUEPRINT = "Blueprint"
TENANT = "Tenant"
SOURCE_KINDS = (BLUEPRINT, TENANT)  # read by the manifest readers, expanded by provider.blueprints


class BlueprintMetadata(Model):
    """Blueprints are global: a name, optionally labels; no organization."""

    name: Slug
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, json_schema_extra={"additionalProperties": False})


class BlueprintResource(Model):
    """One resource document with `${...}` expressions; `apiVersion` may be omitted and
    `metadata.organization` defaults to `${tenant.name}` (every kind but Organization)."""

    api_version: Literal["tenancy/v1"] | None = None
    kind: str = Field(min_length=1, max_length=100)
    for_each: str | None = Field(default=None, alias="forEach", description='One resource per item: "${params.LIST}"')
    when: str | None = Field(default=None, description='Kept only when the value is truthy: "${params.PATH}"')
    metadata: dict[str, Any]
    spec: dict[str, Any] = Field(default_factory=dict)


class BlueprintSpec(Model):
    description: LongText | None = None
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="A JSON Schema (draft 2020-12) for Tenant.spec.parameters; top-level defaults are filled in.",
    )
    resources: list[BlueprintResource] = Field(min_length=1, max_length=1000)


class BlueprintDocument(Model):
    """A Blueprint: the shape of a customer, declared once (SPEC §6)."""

    api_version: Literal["tenancy/v1"]
    kind: Literal["Blueprint"]
    metadata: BlueprintMetadata
    spec: BlueprintSpec


class TenantMetadata(Model):
    name: Slug
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, json_schema_extra={"additionalProperties": False})


class TenantSpec(Model):
    blueprint: Slug
    parameters: dict[str, Any] = Field(default_factory=dict)


class TenantDocument(Model):
    """A Tenant: one customer made from a Blueprint (SPEC §6)."""

    api_version: Literal["tenancy/v1"]
    kind: Literal["Tenant"]
    metadata: TenantMetadata
    spec: TenantSpec


MODELS: dict[str, type[Model]] = {BLUEPRINT: BlueprintDocument, TENANT: TenantDocument}
assert API_VERSION == "tenancy/v1"

__all__ = [
    "BLUEPRINT",
    "MODELS",
    "SOURCE_KINDS",
    "TENANT",
    "BlueprintDocument",
    "BlueprintResource",
    "BlueprintSpec",
    "TenantDocument",
    "TenantSpec",
]
