"""Tenants × Blueprints → resource documents, validated by their kinds' models like hand-written ones.

Each expanded resource is a `Manifest` whose origin is its Tenant's document and whose `expansion` names
the blueprint resource it was made from, so that every finding about it (here, in the rules, in the plan)
names both places. Bounded: at most MAX_RESOURCES_PER_TENANT resources and MAX_VALUES_PER_TENANT values
per Tenant, checked before the work is done where the size is known in advance (a forEach's length).
"""

from __future__ import annotations

import difflib
from typing import Any

from provider.blueprints import parameters
from provider.blueprints.documents import BLUEPRINT, TENANT
from provider.blueprints.errors import (
    MAX_RESOURCES_PER_TENANT,
    MAX_VALUES_PER_TENANT,
    ExpansionError,
    too_many_resources,
    too_many_values,
)
from provider.blueprints.expressions import Scope, interpolate, resolve, truthy
from provider.blueprints.model import Blueprint, Template, Tenant, Text, blueprint_of, duplicates, tenant_of
from provider.errors import Finding, Severity
from provider.manifests.manifest import Expansion, Manifest, Origin, Source, path_of
from provider.manifests.validate import manifest
from tenancy_kinds import API_VERSION, BLUEPRINT_LABEL, KINDS, RESERVED_LABEL_PREFIX, TENANT_LABEL
from tenancy_kinds.messages import FieldPath, dotted_path


def expand(sources: list[Source], findings: list[Finding]) -> list[Manifest]:
    """Every Tenant's resources, in the order of the Tenants; problems appended to `findings`."""
    blueprints: dict[str, Blueprint | None] = {}
    places: dict[str, Origin] = {}
    for source in duplicates(sources, BLUEPRINT, findings):
        name = source.value["metadata"]["name"]
        blueprints[name] = blueprint_of(source, findings)
        places[name] = source.origin
    out: list[Manifest] = []
    for source in duplicates(sources, TENANT, findings):
        tenant = tenant_of(source)
        if tenant.blueprint not in blueprints:
            findings.append(_unknown_blueprint(tenant, places))
            continue
        blueprint = blueprints[tenant.blueprint]
        if blueprint is not None:  # None: the blueprint's own errors are reported
            out.extend(expand_tenant(tenant, blueprint, findings))
    return out


def expand_tenant(tenant: Tenant, blueprint: Blueprint, findings: list[Finding]) -> list[Manifest]:
    """One Tenant's resources, or none with the reasons in `findings`."""
    params = parameters.with_defaults(blueprint.schema, tenant.parameters)
    problems = parameters.parameter_problems(blueprint.schema, params)
    if problems:
        for problem in problems:
            path = ("spec", "parameters", *problem.path)
            at = tenant.source.at(path)
            findings.append(Finding(at.file, at.line, at.col, Severity.ERROR,
                                    f"Tenant {tenant.name} (blueprint {blueprint.name} at {blueprint.origin.file}:"
                                    f"{blueprint.origin.line}): {problem.message}", dotted_path(path)))
        return []
    scope = {"tenant": {"name": tenant.name, "labels": tenant.labels}, "params": params}
    budget = _Budget()
    documents: list[tuple[Template, dict[str, Any]]] = []
    for template in blueprint.templates:
        try:
            documents.extend((template, d) for d in _documents(template, tenant, blueprint, scope, budget))
        except ExpansionError as e:
            findings.append(_expansion_finding(tenant, template, e))
            return []
    return [m for m in (_validated(tenant, blueprint, t, d, findings) for t, d in documents) if m is not None]


class _Budget:
    """The resources and values one Tenant has made so far; an inserted value is counted once per id."""

    def __init__(self) -> None:
        self.resources = 0
        self.values = 0
        self.sizes: dict[int, int] = {}

    def add_resources(self, count: int) -> None:
        self.resources += count
        if self.resources > MAX_RESOURCES_PER_TENANT:
            raise ExpansionError(too_many_resources(self.resources))

    def add(self, value: Any) -> None:
        self.values += self.size(value)
        if self.values > MAX_VALUES_PER_TENANT:
            raise ExpansionError(too_many_values())

    def size(self, value: Any) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        known = self.sizes.get(id(value))
        if known is None:
            children = value.values() if isinstance(value, dict) else value
            known = self.sizes[id(value)] = 1 + sum(self.size(v) for v in children)
        return known


def _documents(template: Template, tenant: Tenant, blueprint: Blueprint, scope: Scope, budget: _Budget) -> list[Any]:
    if template.for_each is None:
        scopes: list[Scope] = [scope]
    else:
        items = _resolved(template.for_each, scope, ("forEach",))
        if not isinstance(items, list):
            raise ExpansionError(f"forEach {template.for_each} is {type(items).__name__}, not a list", ("forEach",))
        if budget.resources + len(items) > MAX_RESOURCES_PER_TENANT:  # refused before any is made
            raise ExpansionError(too_many_resources(budget.resources + len(items)), ("forEach",))
        scopes = [{**scope, "each": item, "index": i} for i, item in enumerate(items)]
    out = []
    for each in scopes:
        if template.when is not None and not truthy(_resolved(template.when.parts[0], each, ("when",))):
            continue
        budget.add_resources(1)
        out.append(_document(template, tenant, blueprint, each, budget))
    return out


def _resolved(ref: Any, scope: Scope, path: FieldPath) -> Any:
    try:
        return resolve(ref, scope)
    except ExpansionError as e:
        raise e.at(path) from None


def _document(template: Template, tenant: Tenant, blueprint: Blueprint, scope: Scope, budget: _Budget) -> Any:
    document = _build(template.body, scope, budget, ())
    if not isinstance(document, dict):
        return document
    document.setdefault("apiVersion", API_VERSION)
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        kind = KINDS.get(document.get("kind"))  # type: ignore[arg-type]
        if kind is not None and kind.scoped:
            metadata.setdefault("organization", tenant.name)
        labels = metadata.get("labels", {})
        if isinstance(labels, dict):
            for key in labels:
                if isinstance(key, str) and key.startswith(RESERVED_LABEL_PREFIX):
                    raise ExpansionError(
                        f"label {key} is reserved: the expansion sets {BLUEPRINT_LABEL} and {TENANT_LABEL} itself, "
                        f"and tenancy the other {RESERVED_LABEL_PREFIX} labels; remove it from the blueprint",
                        ("metadata", "labels", key),
                    )
            metadata["labels"] = {**labels, BLUEPRINT_LABEL: blueprint.name, TENANT_LABEL: tenant.name}
        ordered = {k: metadata[k] for k in ("name", "organization") if k in metadata}  # as people write it
        document["metadata"] = {**ordered, **metadata}
    return document


def _build(node: Any, scope: Scope, budget: _Budget, path: FieldPath) -> Any:
    """The template with every expression replaced (new containers; inserted values as they are)."""
    if isinstance(node, Text):
        try:
            value = interpolate(node.parts, scope)
        except ExpansionError as e:
            raise e.at(path) from None
        budget.add(value)
        return value
    if isinstance(node, dict):
        budget.add(None)
        return {k: _build(v, scope, budget, path + (k,)) for k, v in node.items()}
    if isinstance(node, list):
        budget.add(None)
        return [_build(v, scope, budget, path + (i,)) for i, v in enumerate(node)]
    budget.add(node)
    return node


def _validated(tenant: Tenant, blueprint: Blueprint, template: Template, document: Any,
               findings: list[Finding]) -> Manifest | None:
    """The expanded document checked by its kind's model; its findings at the Tenant, naming the blueprint."""
    expansion = Expansion(tenant.name, blueprint.name, tenant.origin, template.origin, template.positions)
    found: list[Finding] = []
    made = manifest(document, {(): tenant.origin}, tenant.origin.file, tenant.source.root, found)
    what = _describe(document)
    for f in found:
        note = expansion.note(what, path_of(f.field))
        findings.append(Finding(f.file, f.line, f.col, f.severity, f"{note}: {f.message}", f.field))
    if made is None:
        return None
    made.expansion = expansion
    return made


def _describe(document: Any) -> str:
    """`User acme/bob`, as far as the document says (it may not have validated)."""
    if not isinstance(document, dict):
        return "a resource"
    found = document.get("metadata")
    meta: dict[str, Any] = found if isinstance(found, dict) else {}
    kind, name, org = document.get("kind"), meta.get("name"), meta.get("organization")
    kind_text = kind if isinstance(kind, str) else "resource"
    if not isinstance(name, str):
        return kind_text
    return f"{kind_text} {org}/{name}" if isinstance(org, str) and kind in KINDS and KINDS[kind].scoped else \
        f"{kind_text} {name}"


def _expansion_finding(tenant: Tenant, template: Template, e: ExpansionError) -> Finding:
    at = Expansion("", "", template.origin, template.origin, template.positions).blueprint_origin(e.path)
    dotted = dotted_path(e.path)
    where = f"{dotted}: " if dotted else ""
    message = f"Tenant {tenant.name} (from {at.file}:{at.line}): {where}{e.message}"
    return Finding(tenant.origin.file, tenant.origin.line, tenant.origin.col, Severity.ERROR, message, dotted)


def _unknown_blueprint(tenant: Tenant, places: dict[str, Origin]) -> Finding:
    at = tenant.source.at(("spec", "blueprint"))
    close = difflib.get_close_matches(tenant.blueprint, list(places), n=1)
    if close:
        hint = f"did you mean {close[0]} ({places[close[0]]})?"
    elif places:
        hint = "the blueprints read are " + ", ".join(f"{n} ({o})" for n, o in sorted(places.items())[:5])
    else:
        hint = "no Blueprint was read: give its file or directory too"
    return Finding(at.file, at.line, at.col, Severity.ERROR,
                   f"Tenant {tenant.name}: spec.blueprint: no Blueprint named {tenant.blueprint}; {hint}",
                   "spec.blueprint")


__all__ = ["expand", "expand_tenant"]
