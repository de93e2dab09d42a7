"""Pulumi property bags ⇄ resource documents, and the checks on them. Pure: no network, no Pulumi runtime.

A Pulumi resource of a kind has flat, snake_case properties: `name` (metadata.name), `organization`
(scoped kinds), `labels`, `protected`, one property per spec field (`display_name`, `billing_address`,
`max_addresses`, ...), and, as outputs only, `uid`, `resource_version` and one property per status field
(`user_count`, `monthly_cost`, `trial_ends_at`, ...). Nested objects (`billing_address`, `contact`,
`monthly_cost`) have snake_case keys too; camelCase keys are accepted on input.

Everything here reads the table of kinds: no kind is named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pulumi.output import Unknown
from pydantic import ValidationError

from provider import rules
from tenancy_kinds import API_VERSION, STACK_LABEL, Kind, to_snake
from tenancy_kinds.messages import explain
from tenancy_kinds.passwords import weakness

# A value not known in a preview: the wire's marker (pulumi.runtime.rpc.UNKNOWN), which the SDK hands the
# dynamic provider as an `Unknown` (it keeps unknowns), anywhere in a property, a list's item included.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
IDENTITY = ("name", "organization")
METADATA = ("name", "organization", "labels", "protected")
SERVER = ("uid", "resource_version")


def to_camel(snake: str) -> str:
    """`postal_code` → `postalCode`; a name already in camelCase is left alone."""
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), snake)


def _keys(value: Any, rename: Any) -> Any:
    """Renames the keys of nested objects, recursively (spec and status values hold no free-form maps).

    Whole floats become ints: Pulumi carries every number as a double, and no spec field is a float.
    """
    if isinstance(value, dict):
        return {rename(k): _keys(v, rename) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(v, rename) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def snake_keys(value: Any) -> Any:
    """A document value (camelCase keys) as a property value (snake_case keys)."""
    return _keys(value, to_snake)


# --- names ----------------------------------------------------------------------------------------


def spec_properties(kind: Kind) -> dict[str, str]:
    """snake_case property → camelCase spec field, in the spec's declaration order."""
    return {to_snake(f): f for f in kind.spec_fields}


def status_properties(kind: Kind) -> dict[str, str]:
    """snake_case output → camelCase status field."""
    if kind.status is None:
        return {}
    return {to_snake(name): f.alias or name for name, f in kind.status.model_fields.items()}


def input_properties(kind: Kind) -> list[str]:
    """Every property a program may set, in signature order."""
    metadata = [p for p in METADATA if kind.scoped or p != "organization"]
    return metadata[:1] + list(spec_properties(kind)) + metadata[1:]


def output_properties(kind: Kind) -> list[str]:
    """The properties only the backend sets."""
    return list(SERVER) + list(status_properties(kind))


def secret_properties(kind: Kind) -> list[str]:
    return sorted(to_snake(f) for f in kind.sensitive)


def immutable_properties(kind: Kind) -> list[str]:
    return sorted(to_snake(f) for f in kind.immutable)


def check_table(kind: Kind) -> None:
    """Spec, status and metadata properties share one namespace: a collision would lose a value."""
    names = input_properties(kind) + output_properties(kind)
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise AssertionError(f"{kind.name}: Pulumi properties collide: {', '.join(clashes)}")


# --- properties → documents -----------------------------------------------------------------------


def document(kind: Kind, props: dict[str, Any], *, strict: bool = False) -> dict[str, Any]:
    """The resource document a property bag describes (a User's password stays as given, in clear).

    With `strict`, properties this kind does not have are carried into the spec, so that validation
    names them; otherwise they are ignored (the engine adds `__provider`, outputs come back as olds).
    """
    specs = spec_properties(kind)
    metadata: dict[str, Any] = {"name": props.get("name")}
    if kind.scoped:
        metadata["organization"] = props.get("organization")
    if props.get("labels") is not None:
        metadata["labels"] = dict(props["labels"])
    if props.get("protected") is not None:
        metadata["protected"] = props["protected"]
    if props.get("uid") is not None:
        metadata["uid"] = props["uid"]
    if props.get("resource_version") is not None:
        metadata["resourceVersion"] = str(props["resource_version"])
    spec = {field: _keys(props[p], to_camel) for p, field in specs.items() if props.get(p) is not None}
    if strict:
        known = set(specs) | set(METADATA) | set(output_properties(kind))
        spec.update({to_camel(p): v for p, v in props.items() if p not in known and not p.startswith("__")})
    return {"apiVersion": API_VERSION, "kind": kind.name, "metadata": metadata, "spec": spec}


def live_document(kind: Kind, outs: dict[str, Any]) -> dict[str, Any]:
    """The backend's document as Pulumi last saw it (a resource's outputs), status included."""
    doc = document(kind, outs)
    doc["status"] = {f: _keys(outs[p], to_camel) for p, f in status_properties(kind).items() if outs.get(p) is not None}
    return doc


# --- documents → properties -----------------------------------------------------------------------


def outputs(kind: Kind, doc: dict[str, Any]) -> dict[str, Any]:
    """A backend document as Pulumi outputs: every input but the write-only ones, plus server facts."""
    meta = doc.get("metadata") or {}
    out: dict[str, Any] = {"name": meta.get("name")}
    if kind.scoped:
        out["organization"] = meta.get("organization")
    out["labels"] = dict(meta.get("labels") or {})
    out["protected"] = bool(meta.get("protected", False))
    spec, status = doc.get("spec") or {}, doc.get("status") or {}
    for p, field in spec_properties(kind).items():
        if field in kind.sensitive:
            continue
        out[p] = snake_keys(spec.get(field))
    out["uid"] = meta.get("uid")
    out["resource_version"] = meta.get("resourceVersion")
    for p, field in status_properties(kind).items():
        out[p] = snake_keys(status.get(field))
    return out


def inputs_of(kind: Kind, outs: dict[str, Any]) -> dict[str, Any]:
    """The inputs that would declare a resource exactly as it is (for `import`): outputs minus server facts.

    A CLI stack's label is left out: it is reserved, never declared, and an update keeps it.
    """
    server = set(output_properties(kind))
    inputs = {k: v for k, v in outs.items() if k not in server and v is not None}
    if "labels" in inputs:
        inputs["labels"] = {k: v for k, v in inputs["labels"].items() if k != STACK_LABEL}
    return inputs


# --- checks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One problem with one property (dotted snake_case path, e.g. `billing_address.postal_code`)."""

    property: str
    reason: str


def _property_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location in a document → the Pulumi property path (`billing_address.postal_code`)."""
    if loc[:1] == ("metadata",) and len(loc) > 1:
        return str(loc[1])  # name, organization, labels, protected: flat properties
    out = ""
    for step in loc[1:] if loc[:1] == ("spec",) else loc:
        out += f"[{step}]" if isinstance(step, int) else ("." if out else "") + to_snake(str(step))
    return out or "<document>"


def unknown_properties(props: dict[str, Any]) -> set[str]:
    return {k for k, v in props.items() if _holds_unknown(v)}


def _holds_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_unknown(v) for v in value)
    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


def check(kind: Kind, props: dict[str, Any]) -> list[Failure]:
    """Structural validation (the same models as `tenancy validate`) and the rules one resource can break.

    Properties still unknown (a preview, an output of a resource not created yet) are not judged.
    """
    unknown = unknown_properties(props)
    known = {k: v for k, v in props.items() if k not in unknown}
    doc = document(kind, known, strict=True)
    failures: list[Failure] = []
    try:
        kind.validate_wire(doc)  # with JSON's own types, as the backend and `tenancy validate` judge
    except ValidationError as e:  # worded by the project's one translator, as `tenancy validate` words them
        for explained in explain(kind.wire_document, doc, e.errors(), kind.sensitive):
            path = _property_path(explained.path)
            if path.split(".")[0].split("[")[0] not in unknown:
                failures.append(Failure(path, explained.text))
        return failures
    return [] if unknown else _rules(kind, doc)


def _finding_property(path: tuple[str | int, ...]) -> str:
    """A finding's document path (("spec", "signatureModes", 0)) → the property path (signature_modes[0])."""
    if path[:1] == ("metadata",):
        return str(path[1]) if len(path) > 1 else "<document>"
    return _property_path(path)


def _rules(kind: Kind, doc: dict[str, Any]) -> list[Failure]:
    """The business rules a single resource can break (the table of kinds' own checks, the reserved labels,
    the password strength), said before anything reaches the backend: the same as `tenancy validate`."""
    spec = kind.effective(doc["spec"])
    found = [Failure(_finding_property(p), m) for p, m in kind.findings(doc["metadata"]["name"], spec)]
    found.extend(Failure(_finding_property(p), m) for p, m in rules.reserved_label_findings(doc))
    for field in kind.sensitive:
        value = spec.get(field)
        if isinstance(value, str) and (why := weakness(value)) is not None:
            found.append(Failure(to_snake(field), f"the {to_snake(field)} is too weak: {why}"))
    return found
