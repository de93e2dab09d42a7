"""The OpenAPI document of the Tenancy API, deterministic, with the real document models as bodies.

FastAPI contributes paths and parameters from the routes; this module adds the request and response
bodies (the kinds' wire document models from `tenancy_kinds`), RFC 9457 problem responses and bearer
security. `schemas/openapi.json` is this document, written with sorted keys (`write_openapi`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from tenancy_kinds import KINDS

DESCRIPTION = (
    "The reference Tenancy HTTP API: organizations (tenants) and their users, teams, mailbox quotas, "
    "aliases and customer subscriptions, as resource documents. Errors are RFC 9457 problem documents "
    "(`application/problem+json`) with `errors: [{path, message}]`."
)
PROBLEM_JSON = "application/problem+json"
REF = "#/components/schemas/{model}"

READ_PROBLEMS = (400, 401, 404, 422, 429, 503)
WRITE_PROBLEMS = (400, 401, 403, 404, 409, 412, 413, 422, 429, 503)


class ProblemError(BaseModel):
    path: str = Field(description="where in the request, e.g. spec.email or operations[3].spec.members")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemError] = Field(default_factory=list)


class Money(BaseModel):
    amount: str = Field(pattern=r"^-?[0-9]+\.[0-9]{2}$")
    currency: str


class Prices(BaseModel):
    currency: str
    subscriptions: dict[str, str]


class Deposit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: str = Field(pattern=r"^[0-9]{1,7}(\.[0-9]{1,2})?$", examples=["50.00"])


class Operation(BaseModel):
    """One changeset operation; `document` is a resource document of `kind` (create and update)."""

    model_config = ConfigDict(extra="forbid")

    op: str = Field(pattern="^(create|update|delete)$")
    kind: str = Field(pattern="^(" + "|".join(KINDS) + ")$")
    organization: str | None = None
    name: str | None = None
    document: dict[str, Any] | None = None
    ifMatch: str | None = None


class Changeset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operations: list[Operation] = Field(min_length=1)


class Health(BaseModel):
    status: str


def _component_schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [k.wire_document for k in KINDS.values()]
    models += [Problem, Money, Prices, Deposit, Changeset, Health]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    any_document = {"oneOf": [{"$ref": REF.format(model=_name(k.wire_document))} for k in KINDS.values()]}
    schemas["AnyDocument"] = any_document
    schemas["ChangesetResults"] = {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": {"anyOf": [any_document, {"type": "null"}]}}},
    }
    schemas["Export"] = {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": any_document}},
    }
    for kind in KINDS.values():
        schemas[f"{kind.name}List"] = {
            "type": "object",
            "required": ["items", "nextCursor"],
            "properties": {
                "items": {"type": "array", "items": {"$ref": REF.format(model=_name(kind.wire_document))}},
                "nextCursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    return schemas


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=ref)}}}


def _response_for(model: str, kind_name: str | None) -> tuple[str, dict[str, Any]]:
    """The success status and response object of an operation, by its `x-tenancy-response` tag."""
    etag = {"ETag": {"description": "the resourceVersion, quoted", "schema": {"type": "string"}}}
    doc = _name(KINDS[kind_name].wire_document) if kind_name else ""
    table: dict[str, tuple[str, dict[str, Any]]] = {
        "doc": ("200", {"description": "the document", "headers": etag, "content": _json(doc)}),
        "list": ("200", {"description": "one page", "content": _json(f"{kind_name}List")}),
        "deleted": ("204", {"description": "deleted"}),
        "archived": ("200", {"description": "the archived document", "headers": etag, "content": _json(doc)}),
        "changeset": ("200", {"description": "one result per operation", "content": _json("ChangesetResults")}),
        "export": ("200", {"description": "every resource in scope", "content": _json("Export")}),
        "prices": ("200", {"description": "monthly prices per user", "content": _json("Prices")}),
        "health": ("200", {"description": "the service is up", "content": _json("Health")}),
    }
    return table[model]


def _body_for(tag: str, kind_name: str | None) -> dict[str, Any]:
    ref = {"doc": _name(KINDS[kind_name].wire_document) if kind_name else "", "changeset": "Changeset", "deposit": "Deposit"}
    return {"required": True, "content": _json(ref[tag])}


def _problems(codes: tuple[int, ...]) -> dict[str, Any]:
    from http import HTTPStatus

    out: dict[str, Any] = {}
    for code in codes:
        response: dict[str, Any] = {
            "description": HTTPStatus(code).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}}},
        }
        if code == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if code == 429:
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        out[str(code)] = response
    return out


def _customise_operation(method: str, operation: dict[str, Any]) -> None:
    kind_name = operation.pop("x-tenancy-kind", None)
    body = operation.pop("x-tenancy-body", None)
    model = operation.pop("x-tenancy-response", "doc")
    status, response = _response_for(model, kind_name)
    generated = [code for code in operation.get("responses", {}) if code.startswith("2")]
    status = generated[0] if generated and status != "204" else status
    responses: dict[str, Any] = {status: response}
    if body:
        operation["requestBody"] = _body_for(body, kind_name)
    if operation.get("operationId") == "health":
        operation["security"] = []
    else:
        responses.update(_problems(WRITE_PROBLEMS if method in ("post", "put", "delete") else READ_PROBLEMS))
        if status == "201":
            responses["201"]["headers"] = {**response.get("headers", {}), "Location": {"schema": {"type": "string"}}}
    operation["responses"] = responses


def customise(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (cached on the app), bodies and problems filled in."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version="3.1.0",
        description=app.description,
        routes=app.routes,
        separate_input_output_schemas=False,
    )
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            _customise_operation(method, operation)
    components = document.setdefault("components", {})
    components["schemas"] = _component_schemas()
    components.setdefault("securitySchemes", {})
    document["security"] = [{name: []} for name in components["securitySchemes"]]
    app.openapi_schema = document
    return document


def openapi_document() -> dict[str, Any]:
    """The Tenancy API's OpenAPI document (no database needed)."""
    from tenancy_backend.api import build_app

    return build_app(None).openapi()


def render_openapi(document: dict[str, Any] | None = None) -> str:
    """The checked-in form (sorted keys, indent 2, trailing newline), which `GET /openapi.json` serves too."""
    return json.dumps(openapi_document() if document is None else document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_openapi(path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_openapi(), encoding="utf-8")
    return target


__all__ = ["customise", "openapi_document", "render_openapi", "write_openapi"]
