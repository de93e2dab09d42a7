"""JSON Schemas (draft 2020-12) generated from the table of kinds, and the backend's OpenAPI document.

`schemas/` holds the generated files, checked in so that editors and other tools can use them without
running Python; a test keeps them identical to `render_schemas()`. Output is deterministic: sorted keys,
two-space indentation, a trailing newline.

- `<kind>.schema.json`: one kind's document (e.g. `user.schema.json`, `mailboxquota.schema.json`);
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


def manifest_schema() -> dict[str, Any]:
    """Any resource document: `kind` picks the kind's schema (if/then, so an editor reports the errors of
    the kind written, not of every alternative as a `oneOf` would)."""
    refs, top = models_json_schema([(k.document, "validation") for k in KINDS.values()], by_alias=True)
    dispatch = [
        {
            "if": {"properties": {"kind": {"const": kind.name}}, "required": ["kind"]},
            "then": refs[(kind.document, "validation")],
        }
        for kind in KINDS.values()
    ]
    return {
        "$schema": DRAFT,
        "$id": ID_BASE + MANIFEST_SCHEMA,
        "title": f"Tenancy manifest document ({API_VERSION})",
        "description": "One resource document of a tenancy manifest file; kind selects the document's schema.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"enum": list(KINDS)},
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


__all__ = ["kind_filename", "kind_schema", "manifest_schema", "render_schemas", "stale_schemas", "write_schemas"]
