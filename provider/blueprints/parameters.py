"""A blueprint's parameters: its JSON Schema checked (the `jsonschema` library, draft 2020-12), a Tenant's
parameters validated against it with the top-level defaults filled in, and which paths the schema declares.

Bounded for hostile schemas: no remote `$ref` is ever fetched, a schema that refers to itself without end
is refused instead of recursing, and a `pattern` with a repeated group that repeats (`(a+)+`, exponential
in Python's regular expressions) is refused before any text meets it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs are installed
import referencing
import referencing.exceptions

from tenancy_kinds.messages import FieldPath

MAX_ERRORS = 10  # schema errors reported per Tenant
MAX_STEPS = 200  # schemas visited to decide whether one path is declared
# A group holding a quantifier, itself repeated: catastrophic backtracking in Python's `re`.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[*+}](?:[^()\\]|\\.)*\)\s*[*+{]")


@dataclass(frozen=True)
class Problem:
    """One thing wrong, at `path` (below the schema, or below the Tenant's parameters)."""

    path: FieldPath
    message: str


def _no_remote(uri: str) -> referencing.Resource[Any]:
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class


_REGISTRY: referencing.Registry[Any] = referencing.Registry(retrieve=_no_remote)  # type: ignore[call-arg]


def schema_problems(schema: Any) -> list[Problem]:
    """What makes `schema` unusable as a parameters schema (empty when it is fine)."""
    if not isinstance(schema, dict):
        return [Problem((), "the parameters schema must be a mapping (a JSON Schema)")]
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        return [Problem(tuple(e.absolute_path), f"is not a valid JSON Schema: {e.message}")]
    except RecursionError:
        return [Problem((), "the parameters schema nests too deeply to be checked")]
    return [Problem(path, f"the pattern {pattern!r} repeats a repeated group, which can take exponential time to "
                          "match; simplify it (e.g. (a+)+ → a+)")
            for path, pattern in _patterns(schema, (), 0) if _NESTED_QUANTIFIER.search(pattern)]


def _patterns(schema: Any, path: FieldPath, depth: int) -> Iterator[tuple[FieldPath, str]]:
    if depth > 200:
        return
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield path + (key,), value
            elif key == "patternProperties" and isinstance(value, dict):
                yield from ((path + (key, p), p) for p in value)
            if isinstance(value, (dict, list)):
                yield from _patterns(value, path + (key,), depth + 1)
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _patterns(value, path + (i,), depth + 1)


def with_defaults(schema: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The parameters with the defaults of the schema's top-level properties filled in (copies)."""
    params = dict(given)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            if name not in params and isinstance(sub, dict) and "default" in sub:
                params[name] = copy.deepcopy(sub["default"])
    return params


def parameter_problems(schema: dict[str, Any], params: dict[str, Any]) -> list[Problem]:
    """Where `params` fails the schema, in the schema's words (at most MAX_ERRORS)."""
    validator = jsonschema.Draft202012Validator(schema, registry=_REGISTRY)
    try:
        errors = sorted(validator.iter_errors(params), key=lambda e: [str(p) for p in e.absolute_path])
    except RecursionError:
        return [Problem((), "the blueprint's parameters schema refers to itself without end; fix its $ref")]
    except referencing.exceptions.Unresolvable as e:
        return [Problem((), f"the blueprint's parameters schema has a $ref that cannot be resolved ({e}); only "
                            "references within the schema (#/$defs/...) are followed")]
    out = []
    for error in errors[:MAX_ERRORS]:
        path = tuple(error.absolute_path)
        name = ".".join(str(p) for p in path)
        where = f"parameter {name}: " if name else ""
        out.append(Problem(path, f"{where}{error.message}"))
    return out


def declares(schema: Any, steps: tuple[str, ...]) -> str | None:
    """None when the schema declares the path (or leaves that part open); else the first step it does not
    declare, as `a.b`. A property is declared by `properties` or `required`; list items by `items`."""
    budget = [MAX_STEPS]
    current: list[Any] = [schema]
    for i, step in enumerate(steps):
        found: list[Any] = []
        for sub in current:
            children = _children(schema, sub, step, budget, 0)
            if children is None:
                return None  # an open part of the schema: anything below it may be there
            found.extend(children)
        if not found:
            return ".".join(steps[: i + 1])
        current = found
    return None


def _children(root: Any, schema: Any, step: str, budget: list[int], depth: int) -> list[Any] | None:
    """The subschemas `step` leads to (None: open, cannot say; []: not declared)."""
    budget[0] -= 1
    if budget[0] < 0 or depth > 20 or not isinstance(schema, dict):
        return None
    out: list[Any] = []
    opened = False
    ref_target = _local_ref(root, schema.get("$ref"))
    for branch in [*(schema.get(k) or [] for k in ("allOf", "anyOf", "oneOf")), [ref_target] if ref_target else []]:
        for sub in branch if isinstance(branch, list) else []:
            found = _children(root, sub, step, budget, depth + 1)
            if found is None:
                opened = True
            else:
                out.extend(found)
    properties, required = schema.get("properties"), schema.get("required")
    items, extra = schema.get("items"), schema.get("additionalProperties")
    constrained = any(k in schema for k in ("properties", "required", "items", "prefixItems", "additionalProperties",
                                            "patternProperties", "$ref", "allOf", "anyOf", "oneOf"))
    if not constrained:
        return None
    if isinstance(properties, dict) and step in properties:
        out.append(properties[step])
    elif isinstance(required, list) and step in required:
        out.append({})
    elif isinstance(extra, dict) or "patternProperties" in schema:
        out.append(extra if isinstance(extra, dict) else {})
    if step.isdigit():
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and int(step) < len(prefix):
            out.append(prefix[int(step)])
        elif isinstance(items, dict):
            out.append(items)
    if opened and not out:
        return None
    return out


def items_schema(schema: Any, steps: tuple[str, ...]) -> Any:
    """The schema of the items of the list at `steps` (for `each.PATH`), or {} (open) when it cannot say."""
    current = schema
    for step in steps:
        if not isinstance(current, dict):
            return {}
        current = _local_ref(schema, current.get("$ref")) or current
        properties = current.get("properties") if isinstance(current, dict) else None
        current = properties.get(step, {}) if isinstance(properties, dict) else {}
    if isinstance(current, dict):
        current = _local_ref(schema, current.get("$ref")) or current
    items = current.get("items") if isinstance(current, dict) else None
    return items if isinstance(items, dict) else {}


def _local_ref(root: Any, ref: Any) -> Any:
    """What a `#/...` reference points at within the schema (None for any other reference)."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    target = root
    for part in (p for p in ref[1:].split("/") if p):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return None
    return target


__all__ = ["Problem", "declares", "items_schema", "parameter_problems", "schema_problems", "with_defaults"]
