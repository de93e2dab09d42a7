"""The OpenAPI document of the Tenancy API, deterministic, telling what the server enforces.

FastAPI contributes paths and parameters from the routes; this module adds the request and response
bodies (the kinds' wire document models from `tenancy_kinds`), RFC 9457 problem responses and bearer
security. `schemas/openapi.json` is this document, written with sorted keys (`write_openapi`).

Every constraint the server puts on one value is in the document, taken from where it is defined:
patterns and lengths from the models and the parsers (`tenancy_kinds`, `tenancy_backend.selectors`),
limits from the service. What the document cannot say is a rule between values (a leader among the
members, a name matching the path, a parent that exists, a password that is not a simple pattern): those
are 409 or 422 with the rule in words (SPEC §4), listed among each operation's responses.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from tenancy_kinds import ISO_3166_ALPHA_2, KINDS, SLUG_PATTERN, Kind
from tenancy_kinds.passwords import MIN_LENGTH as PASSWORD_MIN_LENGTH
from tenancy_backend.errors import status_title
from tenancy_backend.changesets import MAX_OPERATIONS
from tenancy_backend.service import MAX_DEPOSIT

DESCRIPTION = (
    "The reference Tenancy HTTP API: organizations (tenants) and their users, teams, mailbox quotas, "
    "aliases and customer subscriptions, as resource documents. Errors are RFC 9457 problem documents "
    "(`application/problem+json`) with `errors: [{path, message}]`. Request bodies are JSON "
    "(`application/json` or `application/*+json`; anything else is 415). HEAD is served wherever GET is, "
    "OPTIONS answers `Allow`, and 405 lists every method of the resource."
)
PROBLEM_JSON = "application/problem+json"
REF = "#/components/schemas/{model}"
# `operations.check_text` refuses NUL in any string of a request body: no database stores it faithfully.
NUL_FREE = r"^[^\u0000]*$"


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


class Health(BaseModel):
    status: str


# --- request bodies beyond the resource documents -------------------------------------------------


def _amount_pattern(maximum: Decimal) -> str:
    """Decimal strings from 0.01 to `maximum` (a power of ten) with at most two decimals, as
    `tenancy_kinds.billing.parse_amount` and `Service.deposit` accept them (leading zeros included)."""
    whole = int(maximum)
    digits = len(str(whole)) - 1
    if maximum != whole or whole != 10**digits:
        raise ValueError(f"the deposit maximum {maximum} is not a power of ten; extend _amount_pattern")
    return rf"^(?!0*(\.0{{1,2}})?$)0*([0-9]{{1,{digits}}}(\.[0-9]{{1,2}})?|{whole}(\.0{{1,2}})?)$"


def _deposit_schema() -> dict[str, Any]:
    maximum = int(MAX_DEPOSIT)
    amount = {
        "description": f"0.01 to {MAX_DEPOSIT}, at most two decimals",
        "anyOf": [
            {"type": "string", "pattern": _amount_pattern(MAX_DEPOSIT), "examples": ["50.00"]},
            {"type": "integer", "minimum": 1, "maximum": maximum},
        ],
    }
    return _closed({"amount": amount}, ["amount"])


def _closed(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


def _changeset_schema() -> dict[str, Any]:
    """`{"operations": [...]}` as `changesets._parse_step` reads each operation: per kind, a create or an
    update carrying that kind's document, or a delete naming the resource. The branches exclude one another
    (kind, op, name); `anyOf` says so without making a validator or a generator prove it."""
    operations = [branch for kind in KINDS.values() for branch in _operation_schemas(kind)]
    return _closed(
        {"operations": {"type": "array", "minItems": 1, "maxItems": MAX_OPERATIONS, "items": {"anyOf": operations}}},
        ["operations"],
    )


def _operation_schemas(kind: Kind) -> list[dict[str, Any]]:
    slug = {"type": "string", "pattern": SLUG_PATTERN}
    # For an Organization, `organization` is not read. A boolean ifMatch is read as its text, like any int.
    common: dict[str, Any] = {
        "kind": {"const": kind.name},
        "organization": slug if kind.scoped else {},
        "ifMatch": {"type": ["string", "integer", "boolean", "null"]},
    }
    owner = ["organization"] if kind.scoped else []
    document = _name(kind.wire_document)
    write: dict[str, Any] = {**common, "op": {"enum": ["create", "update"]}}
    named = _closed(  # the document's metadata may leave out what the operation names
        {**write, "name": {"type": "string"}, "document": {"$ref": REF.format(model=f"{document}Replace")}},
        ["op", "kind", "name", "document", *owner],
    )
    unnamed = _closed(
        {**write, "name": {"type": "null"}, "document": {"$ref": REF.format(model=f"{document}Create")}},
        ["op", "kind", "document", *owner],
    )
    delete = _closed(
        {**common, "op": {"const": "delete"}, "name": slug, "document": {"description": "ignored"}},
        ["op", "kind", "name", *owner],
    )
    return [named, unnamed, delete]


# --- component schemas ----------------------------------------------------------------------------


def _component_schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [k.wire_document for k in KINDS.values()]
    models += [Problem, Money, Prices, Health]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    for kind in KINDS.values():
        _tighten_document(kind, schemas)
    schemas.update(_request_documents(schemas))
    _tighten_billing_address(schemas)
    schemas["Deposit"] = _deposit_schema()
    schemas["Changeset"] = _changeset_schema()
    for name, schema in schemas.items():
        if name not in ("Problem", "ProblemError", "Money", "Prices", "Health"):
            _nul_free(schema)
    schemas.update(_json_value_schemas())
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
        "description": "without `since`: every document in scope (`items`) and nothing else; with `since`: "
        "also `revision`, `since`, `database` and `deleted`, and `items` holds only what may have changed",
        "properties": {
            "items": {"type": "array", "items": any_document},
            "revision": {"type": "integer", "minimum": 0, "description": "the revision this answer is the state of"},
            "since": {"type": "integer", "minimum": 0, "description": "the revision the changes are counted from"},
            "database": {"type": "string", "pattern": "^[0-9]+$", "description": "the database's identity"},
            "deleted": {
                "type": "array",
                "description": "keys no longer in the export: deleted, moved out of the scope, or no longer selected",
                "items": {
                    "type": "object",
                    "required": ["kind", "organization", "name"],
                    "additionalProperties": False,
                    "properties": {
                        "kind": {"enum": list(KINDS)},
                        "organization": {"anyOf": [{"type": "string", "pattern": SLUG_PATTERN}, {"type": "null"}]},
                        "name": {"type": "string", "pattern": SLUG_PATTERN},
                    },
                },
            },
        },
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


def _resolved(schemas: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return schemas[ref.rsplit("/", 1)[-1]] if ref else schema


def _tighten_document(kind: Kind, schemas: dict[str, Any]) -> None:
    """What the service checks on single values of a kind's document beyond its pydantic model: set-like
    lists hold each value once, a password meets the minimum length, `status` (ignored) is NUL-free JSON."""
    document = schemas[_name(kind.wire_document)]
    document["properties"]["status"] = {
        "anyOf": [{"$ref": REF.format(model="JsonObject")}, {"type": "null"}],
        "description": "read-only: set by the backend, ignored in requests",
    }
    spec = _resolved(schemas, document["properties"]["spec"])["properties"]
    for field in kind.unordered:  # the lists the kinds table compares as sets are refused with a repeat
        spec[field]["uniqueItems"] = True
    for field in kind.sensitive:  # the write-only secrets are passwords (tenancy_kinds.passwords.weakness)
        for branch in spec[field].get("anyOf", [spec[field]]):
            if branch.get("type") == "string":
                branch["minLength"] = PASSWORD_MIN_LENGTH


# What a request body may leave out of metadata because the path (or the changeset operation) gives it
# (`operations._filled`): on a POST to a collection the organization, on a PUT the name too.
_FROM_PATH = {"Create": ("organization",), "Replace": ("organization", "name")}


def _request_documents(schemas: dict[str, Any]) -> dict[str, Any]:
    """`<Kind>DocumentCreate` and `<Kind>DocumentReplace`: the document with the metadata the path gives
    made optional (an Organization's name is never given by a collection's path)."""
    out: dict[str, Any] = {}
    for kind in KINDS.values():
        document = schemas[_name(kind.wire_document)]
        metadata_ref = document["properties"]["metadata"]["$ref"]
        metadata_name = metadata_ref.rsplit("/", 1)[-1]
        for variant, optional in _FROM_PATH.items():
            given = [f for f in optional if f != "organization" or kind.scoped]
            variant_metadata = f"{metadata_name}{variant}"
            if variant_metadata not in out:
                meta = copy.deepcopy(schemas[metadata_name])
                meta["required"] = [f for f in meta["required"] if f not in given]
                meta["description"] = f"metadata; {', '.join(given) or 'nothing'} may be left out: the path gives it"
                out[variant_metadata] = meta
            request = copy.deepcopy(document)
            request["properties"]["metadata"] = {"$ref": REF.format(model=variant_metadata)}
            out[f"{_name(kind.wire_document)}{variant}"] = request
    return out


def _tighten_billing_address(schemas: dict[str, Any]) -> None:
    # tenancy_kinds checks the country against the assigned ISO 3166-1 codes in a validator; say which.
    schemas["BillingAddress"]["properties"]["country"]["enum"] = sorted(ISO_3166_ALPHA_2)


def _nul_free(schema: Any) -> None:
    """Every string of `schema` (recursively) refuses NUL, as `operations.check_text` does."""
    if isinstance(schema, list):
        for item in schema:
            _nul_free(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and "enum" not in schema and "const" not in schema:
        pattern = schema.get("pattern")
        if pattern is None:
            schema["pattern"] = NUL_FREE
        elif "[^" in pattern:  # a negated class may admit NUL: both must hold
            schema.setdefault("allOf", []).append({"pattern": NUL_FREE})
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "$defs"):
            for sub in value.values():
                _nul_free(sub)
        elif isinstance(value, dict | list):
            _nul_free(value)


def _json_value_schemas() -> dict[str, Any]:
    """Any JSON without NUL in its strings or keys (what `status` may hold in a request: it is ignored,
    but read)."""
    value = {
        "anyOf": [
            {"type": "string", "pattern": NUL_FREE},
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": {"$ref": REF.format(model="JsonValue")}},
            {"$ref": REF.format(model="JsonObject")},
        ]
    }
    obj = {
        "type": "object",
        "propertyNames": {"pattern": NUL_FREE},
        "additionalProperties": {"$ref": REF.format(model="JsonValue")},
    }
    return {"JsonValue": value, "JsonObject": obj}


def _name(model: type[BaseModel]) -> str:
    return model.__name__


# --- operations -----------------------------------------------------------------------------------


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=ref)}}}


_REVISION_HEADERS = {
    "X-Tenancy-Revision": {
        "description": "the database's revision this answer is the state of (pass it as `since` next time)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "X-Tenancy-Database": {
        "description": "the database's identity: revisions of another database mean nothing here",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}


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
        "export": ("200", {"description": "every resource in scope, or what changed since a revision",
                           "headers": _REVISION_HEADERS, "content": _json("Export")}),
        "prices": ("200", {"description": "monthly prices per user", "content": _json("Prices")}),
        "health": ("200", {"description": "the service is up", "content": _json("Health")}),
    }
    return table[model]


def _body_for(tag: str, kind_name: str | None, method: str) -> dict[str, Any]:
    variant = {"post": "Create", "put": "Replace"}.get(method, "")
    document = f"{_name(KINDS[kind_name].wire_document)}{variant}" if kind_name else ""
    ref = {"doc": document, "changeset": "Changeset", "deposit": "Deposit"}
    return {"required": True, "content": _json(ref[tag])}


# Why each status can answer, by what an operation has (see `_problem_statuses`).
_REASONS = {
    400: "a malformed cursor, label selector or JSON body",
    401: "no token, or one that is unknown, revoked, expired or malformed",
    403: "the token lacks a right the change needs (granting legal-representative)",
    404: "the organization or resource does not exist, or is outside the token's scope",
    409: "the change conflicts with other resources (a unique value, a quota, protection, a concurrent change)",
    412: "If-Match names a version that is no longer current",
    413: "the body is larger than 1 MiB",
    410: "`since` names a revision the change log no longer holds (or one ahead of the database): export without it",
    415: "the body is not declared as JSON",
    422: "a value outside this document's constraints, or a rule between values (the message names it)",
    429: "too many requests for the token, or too many failed authentications of one token from one address",
    503: "the database is unavailable or busy; retry",
}


def _problem_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """The problem statuses an operation can answer, from what it has: parameters, a body, If-Match."""
    statuses = {401, 429, 503}
    places = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
    if places:
        statuses |= {422}  # FastAPI refuses a parameter outside its schema
    if any(where == "path" for where, _ in places) or ("query", "organization") in places:
        statuses |= {404}
    if {("query", "cursor"), ("query", "labelSelector")} & places:
        statuses |= {400}
    if ("query", "since") in places:
        statuses |= {410}
    if "requestBody" in operation:
        statuses |= {400, 403, 404, 409, 413, 415, 422}
    if method == "delete":
        statuses |= {409}
    if ("header", "If-Match") in places or operation.get("operationId") == "applyChangeset":
        statuses |= {412}
    return statuses


def _problems(codes: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in sorted(codes):
        response: dict[str, Any] = {
            "description": f"{status_title(code)}: {_REASONS[code]}",
            "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="Problem")}}},
        }
        if code == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string", "pattern": "^Bearer "}}}
        if code == 415:
            response["headers"] = {"Accept": {"schema": {"type": "string"}}}
        if code == 429:
            response["headers"] = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
        out[str(code)] = response
    return out


def _plain_parameter(parameter: dict[str, Any]) -> None:
    """An optional parameter is absent or a string: FastAPI's `anyOf [..., null]` (for `str | None`) said a
    JSON null could be sent, which no query or header can."""
    schema = parameter["schema"]
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        del schema["anyOf"]
        schema.update(branches[0])
        if "default" in schema and schema["default"] is None:
            del schema["default"]


def _customise_operation(method: str, operation: dict[str, Any]) -> None:
    kind_name = operation.pop("x-tenancy-kind", None)
    body = operation.pop("x-tenancy-body", None)
    model = operation.pop("x-tenancy-response", "doc")
    status, response = _response_for(model, kind_name)
    generated = [code for code in operation.get("responses", {}) if code.startswith("2")]
    status = generated[0] if generated and status != "204" else status
    responses: dict[str, Any] = {status: response}
    for parameter in operation.get("parameters", []):
        _plain_parameter(parameter)
    if body:
        operation["requestBody"] = _body_for(body, kind_name, method)
    if operation.get("operationId") == "health":
        operation["security"] = []
    else:
        responses.update(_problems(_problem_statuses(method, operation)))
        if status == "201":
            responses["201"]["headers"] = {**response.get("headers", {}), "Location": {"schema": {"type": "string"}}}
    operation["responses"] = responses


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from what a create answers to what can follow it: the resource read, replaced (with
    its ETag as If-Match) and deleted; and, from a new organization, its collections and its deposits. They
    tell a client, and a stateful tester, where the identifiers come from."""
    created = {"name": "$response.body#/metadata/name"}
    for kind in KINDS.values():
        owner = {"org": "$request.path.org"} if kind.scoped else {}
        follow = {
            f"get{kind.name}": {**owner, **created},
            f"replace{kind.name}": {**owner, **created, "header.If-Match": "$response.header.ETag"},
            f"delete{kind.name}": {**owner, **created, "header.If-Match": "$response.header.ETag"},
        }
        _link(paths, f"create{kind.name}", follow)
    org = {"org": "$response.body#/metadata/name"}
    follow = {"deposit": org}
    for kind in KINDS.values():
        if kind.scoped:
            follow |= {f"create{kind.name}": org, f"list{kind.name}s": org}
    _link(paths, f"create{KINDS['Organization'].name}", follow)


def _link(paths: dict[str, Any], source: str, targets: dict[str, dict[str, str]]) -> None:
    operation = next(op for item in paths.values() for op in item.values() if op.get("operationId") == source)
    response = next(r for status, r in operation["responses"].items() if status.startswith("2"))
    response["links"] = {
        target: {"operationId": target, "parameters": parameters} for target, parameters in targets.items()
    }


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
    _add_links(document["paths"])
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
