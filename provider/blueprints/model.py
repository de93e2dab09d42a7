"""Blueprint and Tenant documents (as read, `Source`) → typed values, the blueprint's templates compiled once.

Compiling parses every `${...}` of a blueprint's resources and checks what can be checked without a
Tenant: the syntax, `each`/`index` outside a forEach, and parameters the schema does not declare. Those
are errors at the blueprint's own file:line:col, found by `tenancy validate` even when no Tenant uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provider.blueprints import parameters
from provider.blueprints.documents import BLUEPRINT, TENANT
from provider.blueprints.errors import ExpansionError
from provider.blueprints.expressions import Part, Ref, parse, refs, whole
from provider.errors import Finding, Severity
from provider.manifests.manifest import Origin, Source
from tenancy_kinds.messages import FieldPath, dotted_path

RESOURCES = ("spec", "resources")
CONTROL = ("forEach", "when")  # a blueprint resource's own keys: not part of the resource it makes


@dataclass(frozen=True)
class Text:
    """A template string holding expressions."""

    parts: tuple[Part, ...]


@dataclass
class Template:
    """One entry of a blueprint's spec.resources, compiled."""

    index: int
    body: Any  # the document with `Text` where expressions are
    for_each: Ref | None
    when: Text | None
    origin: Origin
    positions: dict[FieldPath, Origin]  # by the expanded document's paths


@dataclass
class Blueprint:
    name: str
    source: Source
    schema: dict[str, Any]
    templates: list[Template] = field(default_factory=list)

    @property
    def origin(self) -> Origin:
        return self.source.origin


@dataclass(frozen=True)
class Tenant:
    name: str
    labels: dict[str, str]
    blueprint: str
    parameters: dict[str, Any]
    source: Source

    @property
    def origin(self) -> Origin:
        return self.source.origin


def tenant_of(source: Source) -> Tenant:
    meta, spec = source.value["metadata"], source.value.get("spec") or {}
    return Tenant(meta["name"], dict(meta.get("labels") or {}), spec["blueprint"], dict(spec.get("parameters") or {}),
                  source)


def blueprint_of(source: Source, findings: list[Finding]) -> Blueprint | None:
    """The compiled blueprint, or None with its errors appended to `findings` (its Tenants are then not
    expanded: the blueprint's errors say why)."""
    name = source.value["metadata"]["name"]
    spec = source.value["spec"]
    schema = spec.get("parameters", {"type": "object"})
    before = len(findings)

    def error(path: FieldPath, message: str) -> None:
        at = source.at(path)
        dotted = dotted_path(path)
        findings.append(Finding(at.file, at.line, at.col, Severity.ERROR,
                                f"Blueprint {name}: {dotted}: {message}", dotted))

    for problem in parameters.schema_problems(schema):
        error(("spec", "parameters", *problem.path), problem.message)
    blueprint = Blueprint(name, source, schema)
    for index, resource in enumerate(spec["resources"]):
        template = _compile(blueprint, index, resource, error)
        if template is not None:
            blueprint.templates.append(template)
    return blueprint if len(findings) == before else None


def _compile(blueprint: Blueprint, index: int, resource: dict[str, Any], error: Any) -> Template | None:
    prefix = (*RESOURCES, index)
    ok = True

    def compiled(value: Any, path: FieldPath) -> Any:
        nonlocal ok
        if isinstance(value, str):
            try:
                parts = parse(value)
            except ExpansionError as e:
                error(prefix + path, e.message)
                ok = False
                return value
            if parts is None:
                return value
            for r in refs(parts):
                problem = _undeclared(blueprint, resource, r)
                if problem:
                    error(prefix + path, problem)
                    ok = False
            return Text(parts)
        if isinstance(value, dict):
            return {k: compiled(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [compiled(v, path + (i,)) for i, v in enumerate(value)]
        return value

    body = compiled({k: v for k, v in resource.items() if k not in CONTROL}, ())
    for_each = _whole(compiled(resource.get("forEach"), ("forEach",)), "forEach", prefix, error)
    when_text = compiled(resource.get("when"), ("when",))
    when = _whole(when_text, "when", prefix, error)
    if for_each is not None and for_each.root in ("each", "index"):
        error(prefix + ("forEach",), f"forEach names a list of the parameters or the tenant, not {for_each}")
        ok = False
    if not ok or (resource.get("forEach") is not None and for_each is None) or (
            resource.get("when") is not None and when is None):
        return None
    positions = {
        path[len(prefix):]: origin for path, origin in blueprint.source.positions.items()
        if path[: len(prefix)] == prefix
    }
    origin = blueprint.source.at(prefix)
    return Template(index, body, for_each, Text((when,)) if when else None, origin, positions)


def _whole(value: Any, key: str, prefix: FieldPath, error: Any) -> Ref | None:
    if value is None:
        return None
    single = whole(value.parts) if isinstance(value, Text) else None
    if single is None:
        error(prefix + (key,), f'{key} takes one whole expression, e.g. {key}: "${{params.staff}}"')
    return single


def _undeclared(blueprint: Blueprint, resource: dict[str, Any], r: Ref) -> str | None:
    """Why `r` cannot be right whatever the Tenant (None: it may resolve)."""
    in_loop = resource.get("forEach") is not None
    if r.root in ("each", "index") and not in_loop:
        return f"{r} can only be used in a resource with forEach"
    if r.root == "params":
        missing = parameters.declares(blueprint.schema, r.steps)
        if missing is not None:
            return (f"{r} names the parameter {missing}, which the blueprint's parameters schema does not declare; "
                    "declare it under spec.parameters.properties (or fix the name)")
    if r.root == "each":
        loop = resource.get("forEach")
        try:
            parts = parse(loop) if isinstance(loop, str) else None
        except ExpansionError:
            return None  # the forEach's own error says it
        over = whole(parts) if parts else None
        if over is not None and over.root == "params":
            missing = parameters.declares(parameters.items_schema(blueprint.schema, over.steps), r.steps)
            if missing is not None:
                return (f"{r} names {missing}, which the schema of the items of {over} does not declare; declare it "
                        "under their properties (or fix the name)")
    return None


def duplicates(sources: list[Source], kind: str, findings: list[Finding]) -> list[Source]:
    """Two Blueprints (or Tenants) of one name are an error naming both places; the first one stays."""
    first: dict[str, Source] = {}
    for source in sources:
        if source.kind != kind:
            continue
        name = source.value["metadata"]["name"]
        if name in first:
            at = source.at(("metadata", "name"))
            what = "blueprints are global" if kind == BLUEPRINT else "a Tenant is one customer"
            findings.append(Finding(at.file, at.line, at.col, Severity.ERROR,
                                    f"{kind} {name} is declared twice (first at {first[name].origin}); {what}: rename "
                                    "or remove one of them", "metadata.name"))
        else:
            first[name] = source
    return list(first.values())


__all__ = ["BLUEPRINT", "TENANT", "Blueprint", "Template", "Tenant", "Text", "blueprint_of", "duplicates", "tenant_of"]
