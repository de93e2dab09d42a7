"""A document → a `Manifest`, checked against its kind's pydantic model from the table of kinds (strict,
from JSON, so exactly what the published JSON Schemas accept); and a file's or a set's duplicates refused."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import pydantic

from provider.blueprints.documents import MODELS as SOURCE_MODELS
from provider.blueprints.documents import SOURCE_KINDS
from provider.errors import Finding, Severity
from tenancy_kinds import API_VERSION, KINDS, Kind, ResourceKey
from provider.manifests.manifest import Manifest, Origin, Source, shared
from tenancy_kinds.messages import FieldPath, dotted_path, explain, show, type_name


def manifest(
    value: Any,
    positions: dict[FieldPath, Origin],
    file: str,
    root: Path,
    findings: list[Finding],
    sources: list[Source] | None = None,
) -> Manifest | None:
    """A validated Manifest, or None with the reasons appended to `findings`. A valid Blueprint or Tenant
    document is appended to `sources` (None: they are refused, as in a blueprint's own resources)."""
    origin = positions[()]

    def error(path: FieldPath, message: str) -> None:
        at = _nearest(positions, path, origin)
        findings.append(Finding(file, at.line, at.col, Severity.ERROR, message, dotted_path(path)))

    if not isinstance(value, dict):
        error((), "a document must be a mapping with apiVersion, kind, metadata and spec; "
                  f"this one is {type_name(value)}")
        return None
    if sources is not None and value.get("kind") in SOURCE_KINDS and value.get("apiVersion") == API_VERSION:
        source_model = SOURCE_MODELS[value["kind"]]
        try:
            source_model.model_validate_json(json.dumps(value), strict=True)
        except pydantic.ValidationError as e:
            for explained in explain(source_model, value, e.errors()):
                error(explained.path, explained.message)
            return None
        sources.append(Source(value["kind"], value, positions, root))
        return None
    kind = _kind_of(value, error, sources is not None)
    if kind is None:
        return None
    try:
        model = kind.document.model_validate_json(json.dumps(value), strict=True)
    except pydantic.ValidationError as e:
        for explained in explain(kind.document, value, e.errors(), kind.sensitive):
            error(explained.path, explained.message)
        return None
    if value.get("status") is not None:
        at = _nearest(positions, ("status",), origin)
        findings.append(Finding(file, at.line, at.col, Severity.WARNING,
                                "status: is reported by the backend and ignored in manifests; remove it", "status"))
    document = shared(model.model_dump(by_alias=True, mode="json", exclude_unset=True))
    return Manifest(ResourceKey.of(document), kind, document, origin, root, positions)


def without_duplicates(manifests: list[Manifest], findings: list[Finding]) -> list[Manifest]:
    """The same (kind, organization, name) twice is an error naming both places; the first one stays."""
    first: dict[ResourceKey, Manifest] = {}
    for m in manifests:
        if m.key in first:
            findings.append(
                m.finding(
                    ("metadata", "name"),
                    f"{m.key} is declared twice (first at {first[m.key].place}); names are unique per kind "
                    "and organization: rename or remove one of them",
                )
            )
        else:
            first[m.key] = m
    return list(first.values())


def _nearest(positions: dict[FieldPath, Origin], path: FieldPath, default: Origin) -> Origin:
    while path:
        if path in positions:
            return positions[path]
        path = path[:-1]
    return default


def _kind_of(value: dict[str, Any], error: Any, sources: bool = True) -> Kind | None:
    """The document's kind, after apiVersion and kind are checked (the rest means nothing without them).
    `sources`: whether a Blueprint or Tenant may stand here (not inside a blueprint)."""
    kinds = ", ".join([*KINDS, *(SOURCE_KINDS if sources else ())])
    api_version = value.get("apiVersion")
    ok = True
    if api_version is None:
        error((), f"apiVersion is missing; add apiVersion: {API_VERSION}")
        ok = False
    elif api_version != API_VERSION:
        error(("apiVersion",), f"apiVersion: unknown apiVersion {show(api_version)}; use {API_VERSION}")
        ok = False
    name = value.get("kind")
    if name is None:
        error((), f"kind is missing; add kind: one of {kinds}")
        return None
    if isinstance(name, str) and name in SOURCE_KINDS:
        error(("kind",), f"kind: a {name} cannot stand inside a blueprint's resources; use one of: {kinds}")
        return None
    if not isinstance(name, str) or name not in KINDS:
        hint = _closest_kind(name)
        suggestion = f" (did you mean {hint}?)" if hint else ""
        error(("kind",), f"kind: unknown kind {show(name)}{suggestion}; use one of: {kinds}")
        return None
    return KINDS[name] if ok else None


def _closest_kind(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    folded = {re.sub(r"[^a-z]", "", k.lower()): k for k in [*KINDS, *SOURCE_KINDS]}
    squeezed = re.sub(r"[^a-z]", "", name.lower())
    if squeezed in folded:
        return folded[squeezed]
    plural = {k.plural.replace("-", ""): k.name for k in KINDS.values()}
    if squeezed in plural:
        return plural[squeezed]
    close = difflib.get_close_matches(squeezed, list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None
