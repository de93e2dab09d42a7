"""JSON Schemas (draft 2020-12) generated from the table of kinds, and the backend's OpenAPI document.

`schemas/` holds the generated files, checked in so that editors and other tools can use them without
running Python; a test keeps them identical to `render_schemas()`. Output is deterministic: sorted keys,
two-space indentation, a trailing newline.

- `<kind>.schema.json`: one kind's document (e.g. `user.schema.json`, `mailboxquota.schema.json`);
- `blueprint.schema.json`, `tenant.schema.json`: the two documents of SPEC §6; inside a blueprint's
  `spec.resources` each entry is its kind's document where any value may also be a `${...}` expression
  (`apiVersion` and `metadata.organization` optional), so an editor completes the fields there too;
- `manifest.schema.json`: any document, dispatched on `kind` (what an editor wants for a manifest file);
- `openapi.json`: the tenancy HTTP API, when `tenancy_backend.openapi` is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from provider.blueprints.documents import BLUEPRINT, MODELS, TENANT
from tenancy_kinds import API_VERSION, KINDS, Kind

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://tenancy.example/schemas/v1/"  # a stable identifier, not a download location
MANIFEST_SCHEMA = "manifest.schema.json"
OPENAPI = "openapi.json"
_OPENAPI_MODULE = "tenancy_backend.openapi"


def kind_filename(kind: Kind) -> str:
    return f"{kind.name.lower()}.schema.json"


def kind_schema(kind: Kind) -> dict[str, Any]:
    schema = kind.document.model_json_schema(by_alias=True)
    return {
        "$schema": DRAFT,
        "$id": ID_BASE + kind_filename(kind),
        **schema,
        "title": f"Tenancy {kind.name} ({API_VERSION})",
    }


EXPRESSION = "Expression"
TEMPLATE = "Template"  # the suffix of a definition's blueprint-resource version
_DEF = "#/$defs/"
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_VALUES = ("items", "additionalProperties")


def _source_filename(name: str) -> str:
    return f"{name.lower()}.schema.json"


def _all_definitions() -> tuple[dict[str, Any], dict[str, Any]]:
    """The definitions of every document (kinds, Blueprint, Tenant) with the blueprint-resource versions
    of the kinds' ones, and the `$ref` of each document by name."""
    models = [k.document for k in KINDS.values()] + [MODELS[BLUEPRINT], MODELS[TENANT]]
    refs, top = models_json_schema([(m, "validation") for m in models], by_alias=True)
    defs: dict[str, Any] = top["$defs"]
    kind_defs = {name: d for name, d in defs.items() if not name.startswith((BLUEPRINT, TENANT))}
    defs.update({name + TEMPLATE: _templated(d) for name, d in kind_defs.items()})
    defs[EXPRESSION] = {
        "type": "string",
        "pattern": r"\$\{",
        "description": "A ${...} expression: ${tenant.name}, ${tenant.labels.KEY}, ${params.PATH}, ${each.PATH} or "
                       "${index}; a whole-value expression keeps its type; $${ is a literal ${.",
    }
    for kind in KINDS.values():
        document = defs[refs[(kind.document, "validation")]["$ref"][len(_DEF):] + TEMPLATE]
        document["required"] = [r for r in document.get("required", []) if r not in ("apiVersion", "spec")]
        document["properties"]["forEach"] = {"$ref": _DEF + EXPRESSION, "description": "One resource per item"}
        document["properties"]["when"] = {"$ref": _DEF + EXPRESSION, "description": "Kept when the value is truthy"}
        document["properties"].pop("status", None)
        metadata = document["properties"]["metadata"]
        for ref in [metadata, *metadata.get("anyOf", [])]:
            if "$ref" in ref and ref["$ref"] != _DEF + EXPRESSION:  # organization defaults to ${tenant.name}
                target = defs[ref["$ref"][len(_DEF):]]
                target["required"] = [r for r in target.get("required", []) if r != "organization"]
    resources = defs["BlueprintSpec"]["properties"]["resources"]
    resources["items"] = {
        "type": "object",
        "required": ["kind", "metadata"],
        "properties": {"kind": {"enum": list(KINDS)}},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind.name}}, "required": ["kind"]},
                "then": {"$ref": refs[(kind.document, "validation")]["$ref"] + TEMPLATE},
            }
            for kind in KINDS.values()
        ],
    }
    defs.pop("BlueprintResource", None)
    names = {m.__name__: refs[(m, "validation")] for m in models}
    return defs, names


def _templated(schema: Any) -> Any:
    """A definition as a blueprint resource writes it: references point at the template versions, and
    every value may instead be a `${...}` expression."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if "$ref" in out and out["$ref"].startswith(_DEF):
        out["$ref"] = out["$ref"] + TEMPLATE
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_templated(s) for s in out[key]]
    for key in _SUBSCHEMA_VALUES:
        if isinstance(out.get(key), dict):
            out[key] = _templated(out[key])
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: _or_expression(_templated(s)) for name, s in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _or_expression(out["items"])
    return out


def _or_expression(schema: Any) -> Any:
    if not isinstance(schema, dict) or schema.get("const") is not None:
        return schema  # apiVersion and kind are written as they are
    return {"anyOf": [schema, {"$ref": _DEF + EXPRESSION}]}


def source_schema(name: str) -> dict[str, Any]:
    """blueprint.schema.json or tenant.schema.json."""
    defs, refs = _all_definitions()
    model = MODELS[name]
    document = defs.pop(refs[model.__name__]["$ref"][len(_DEF):])
    used = _referenced(document, defs)
    return {
        "$schema": DRAFT,
        "$id": ID_BASE + _source_filename(name),
        **document,
        "title": f"Tenancy {name} ({API_VERSION})",
        "$defs": {k: v for k, v in defs.items() if k in used},
    }


def _referenced(schema: Any, defs: dict[str, Any]) -> set[str]:
    """The definitions `schema` needs, transitively."""
    found: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_DEF) and ref[len(_DEF):] not in found:
                found.add(ref[len(_DEF):])
                pending.append(defs.get(ref[len(_DEF):]))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def manifest_schema() -> dict[str, Any]:
    """Any document: `kind` picks the kind's schema (if/then, so an editor reports the errors of the kind
    written, not of every alternative as a `oneOf` would)."""
    defs, refs = _all_definitions()
    documents = {kind.name: refs[kind.document.__name__] for kind in KINDS.values()}
    documents.update({name: refs[MODELS[name].__name__] for name in (BLUEPRINT, TENANT)})
    dispatch = [
        {"if": {"properties": {"kind": {"const": name}}, "required": ["kind"]}, "then": ref}
        for name, ref in documents.items()
    ]
    top = {"$defs": defs}
    return {
        "$schema": DRAFT,
        "$id": ID_BASE + MANIFEST_SCHEMA,
        "title": f"Tenancy manifest document ({API_VERSION})",
        "description": "One document of a tenancy manifest file (a resource, a Blueprint or a Tenant); kind selects "
                       "the document's schema.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"enum": list(documents)},
        },
        "allOf": dispatch,
        "$defs": top["$defs"],
    }


def _openapi_document() -> dict[str, Any] | None:
    """The backend's OpenAPI document, or None while the backend module does not exist (yet)."""
    try:
        if importlib.util.find_spec(_OPENAPI_MODULE) is None:
            return None
    except ModuleNotFoundError:
        return None
    module = importlib.import_module(_OPENAPI_MODULE)
    document: dict[str, Any] = module.openapi_document()
    return document


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """Every generated file: name → text."""
    out = {kind_filename(k): _text(kind_schema(k)) for k in KINDS.values()}
    out.update({_source_filename(name): _text(source_schema(name)) for name in (BLUEPRINT, TENANT)})
    out[MANIFEST_SCHEMA] = _text(manifest_schema())
    openapi = _openapi_document()
    if openapi is not None:
        out[OPENAPI] = _text(openapi)
    return dict(sorted(out.items()))


def write_schemas(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write every generated file into `out_dir` (created if needed); returns the paths written."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(out_dir: str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """Files in `out_dir` that differ from what would be generated, as (path, why)."""
    directory = Path(out_dir)
    rendered = render_schemas()
    stale: list[tuple[Path, str]] = []
    for name, text in rendered.items():
        path = directory / name
        if not path.is_file():
            stale.append((path, "missing"))
        elif path.read_text(encoding="utf-8") != text:
            stale.append((path, "out of date"))
    if directory.is_dir():
        for path in sorted(directory.glob("*.schema.json")):
            if path.name not in rendered:
                stale.append((path, "no longer generated (no such kind)"))
    return stale


__all__ = [
    "kind_filename", "kind_schema", "manifest_schema", "render_schemas", "source_schema", "stale_schemas",
    "write_schemas",
]
