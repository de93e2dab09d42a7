"""Pydantic's validation errors → messages a person can act on: what is wrong and what would be right.

The one translator of the project: manifests (`tenancy validate`), the backend's documents (`/v1`),
Pulumi's `check()` and the API's query parameters all word a pydantic error here, so the same mistake
gets the same words everywhere. `explain` is the public entry, with the small wording helpers (`show`,
`type_name`, `PATTERN_WORDS`) other messages share. Never echoes a secret: a sensitive field's value is
said as "the value".
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic

from tenancy_kinds.facts import dotted
from tenancy_kinds.specs import DNS_PATTERN, EMAIL_PATTERN, HTTPS_URL_PATTERN, LABEL_KEY_PATTERN, SLUG_PATTERN
from tenancy_kinds.table import SERVER_METADATA

FieldPath = tuple[str | int, ...]
Model = type[pydantic.BaseModel] | None  # the model validated (None: parameters of no model, e.g. a query)

PATTERN_WORDS = {
    SLUG_PATTERN: "1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit "
                  "(e.g. acme-sales)",
    DNS_PATTERN: "a lowercase DNS name such as mail.example.com",
    EMAIL_PATTERN: "an email address such as alice@example.com",
    HTTPS_URL_PATTERN: "an https:// URL",
    LABEL_KEY_PATTERN: "a label key: up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter "
                       "or digit, optionally after a DNS prefix and '/' (e.g. team or example.com/team)",
    r"^[A-Z]{2}$": "a two-letter ISO 3166-1 country code in capitals, e.g. DE",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable name: letters, digits and '_', not starting with a digit",
}

_EXPECTED_TYPE = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "list_type": "a list",
    "none_required": "null",
}


def dotted_path(path: Sequence[str | int]) -> str:
    """("spec", "members", 2) → "spec.members[2]"."""
    return dotted(tuple(path))


@dataclass(frozen=True)
class Explained:
    """One error: the `path` it is about, what is wrong and the fix (`text`), and where the text is said
    (`at`: a missing field is said at its parent, a bad mapping key at its mapping)."""

    path: FieldPath
    text: str
    at: FieldPath

    @property
    def message(self) -> str:
        """The text after its place: `spec.members[2]: 'Zed' is not valid: ...`."""
        where = dotted(self.at)
        return f"{where}: {self.text}" if where else self.text


def explain(
    model: Model, value: Any, errors: list[Any], sensitive: frozenset[str] = frozenset()
) -> list[Explained]:
    """Every pydantic error of `model` on `value`, union alternatives folded into one each, duplicates left
    out. `sensitive`: spec fields whose value is never shown (passwords)."""
    plain: list[tuple[FieldPath, Any]] = []
    unions: dict[FieldPath, dict[str, list[tuple[FieldPath, Any]]]] = defaultdict(lambda: defaultdict(list))
    for err in errors:
        path, tag = _trace(model, tuple(err["loc"]))
        if tag is None:
            plain.append((path, err))
        else:
            unions[path[: tag[0]]][tag[1]].append((path, err))
    for prefix, members in unions.items():
        ranked = sorted(members.values(), key=len)
        at = _value_at(value, prefix)
        if isinstance(at, dict) and (len(ranked) == 1 or len(ranked[0]) < len(ranked[1])):
            plain.extend(ranked[0])  # one alternative is clearly what was meant: report its errors
        else:
            plain.append((prefix, {"type": "_union", "members": list(members)}))
    out: list[Explained] = []
    for path, err in plain:
        item = _explained(model, sensitive, value, path, err)
        if item not in out:
            out.append(item)
    return out


def _trace(model: Any, loc: tuple[Any, ...]) -> tuple[FieldPath, tuple[int, str] | None]:
    """The value path of a pydantic `loc` (union member names and `[key]` markers removed), and where a
    union member was chosen: (index into the path, member name)."""
    path: list[str | int] = []
    tag: tuple[int, str] | None = None
    ann: Any = model
    for step in loc:
        if step == "[key]":
            continue
        member = _union_member(ann, step)
        if member is not None:
            tag = (len(path), str(step))
            ann = member
            continue
        path.append(step)
        ann = _child(ann, step)
    return tuple(path), tag


def _unwrap(ann: Any) -> list[Any]:
    """The alternatives of an annotation: Annotated stripped, Optional/Union spread, None left out."""
    while get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    if get_origin(ann) in (Union, UnionType):
        return [a for arg in get_args(ann) for a in _unwrap(arg) if a is not NoneType]
    return [ann]


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, pydantic.BaseModel)


def _union_member(ann: Any, step: Any) -> Any:
    options = _unwrap(ann)
    if len(options) < 2 or not isinstance(step, str):
        return None
    return next((o for o in options if _is_model(o) and o.__name__ == step), None)


def _fields(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """camelCase field name → annotation."""
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def _child(ann: Any, step: Any) -> Any:
    for option in _unwrap(ann):
        if _is_model(option) and isinstance(step, str) and step in _fields(option):
            return _fields(option)[step]
        origin = get_origin(option)
        if origin is list and isinstance(step, int):
            return get_args(option)[0]
        if origin is dict and isinstance(step, str):
            return get_args(option)[1]
    return None


def _model_at(model: Any, path: FieldPath) -> type[pydantic.BaseModel] | None:
    ann = model
    for step in path:
        ann = _child(ann, step)
    models = [o for o in _unwrap(ann) if _is_model(o)]
    return models[0] if len(models) == 1 else None


def _value_at(value: Any, path: FieldPath) -> Any:
    for step in path:
        if isinstance(value, dict) and isinstance(step, str):
            value = value.get(step)
        elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        else:
            return None
    return value


def _explained(model: Model, sensitive: frozenset[str], value: Any, path: FieldPath, err: Any) -> Explained:
    is_key = bool(err.get("loc")) and err["loc"][-1] == "[key]"
    at = path[:-1] if is_key or err["type"] == "missing" else path
    return Explained(path, _text(model, sensitive, value, path, err, is_key), at)


def _text(model: Model, sensitive: frozenset[str], value: Any, path: FieldPath, err: Any, is_key: bool) -> str:
    """One error, said for a person: what is wrong and what would be right. Never echoes a secret."""
    secret = len(path) >= 2 and path[0] == "spec" and path[1] in sensitive
    given = "the value" if secret else show(err.get("input"))
    kind_of_error = err["type"]
    ctx = err.get("ctx") or {}
    if kind_of_error == "_union":
        return _union_text(model, path, _value_at(value, path), secret)
    if kind_of_error == "missing":
        return f"required field '{path[-1]}' is missing; add it"
    if kind_of_error == "extra_forbidden":
        return _unknown_field_text(model, path)
    if kind_of_error in ("enum", "literal_error"):
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = _did_you_mean(err.get("input"), allowed)
        return f"{given} is not allowed{hint}; use one of: {', '.join(allowed)}"
    if kind_of_error == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(str(ctx.get("pattern")), f"text matching {ctx.get('pattern')}")
        if is_key:
            return f"key {given} is not valid: expected {words}"
        return f"{given} is not valid: expected {words}"
    if kind_of_error == "string_too_short":
        least = ctx.get("min_length", 1)
        return ("must not be empty" if least == 1 else f"must be at least {least} characters long")
    if kind_of_error == "string_too_long":
        return f"is too long: at most {ctx.get('max_length')} characters"
    if kind_of_error in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))} (got {given})"
    if kind_of_error in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))} (got {given})"
    if kind_of_error == "value_error":  # a validator's own words, without pydantic's "Value error, "
        return f"{ctx.get('error', err.get('msg', 'invalid value'))}"
    if kind_of_error in _EXPECTED_TYPE:
        got = "a value" if secret else type_name(err.get("input"))
        return f"expected {_EXPECTED_TYPE[kind_of_error]}, got {got}"
    return f"{err.get('msg', 'invalid value')}"


def _unknown_field_text(model: Model, path: FieldPath) -> str:
    at = _model_at(model, path[:-1])
    allowed = [n for n in _fields(at) if n not in SERVER_METADATA] if at else []
    name = str(path[-1])
    where = dotted_path(path[:-1]) or "the document"
    hint = _did_you_mean(name, allowed)
    listing = f"; allowed in {where}: {', '.join(allowed)}" if allowed else ""
    return f"unknown field '{name}'{hint}{listing}"


def _union_text(model: Model, path: FieldPath, given: Any, secret: bool) -> str:
    ann: Any = model
    for step in path:
        ann = _child(ann, step)
    shapes = []
    for option in _unwrap(ann):
        if _is_model(option):
            required = [(f.alias or n) for n, f in option.model_fields.items() if f.is_required()]
            shapes.append("{" + ", ".join(f"{r}: ..." for r in required) + "}")
    text = f"expected one of {' or '.join(shapes)}" if shapes else "invalid value"
    if isinstance(given, dict) and len(given) > 1:
        text = f"use exactly one of {' or '.join(shapes)}, not several fields at once"
    if secret and isinstance(given, str):
        text += ("; a clear-text secret does not belong in a manifest: put it in an environment variable or a file "
                 "and point to it")
    return text


def _did_you_mean(given: Any, allowed: list[str]) -> str:
    if not isinstance(given, str):
        return ""
    close = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
    if not close:
        lowered = {a.lower(): a for a in allowed}
        close = [lowered[given.lower()]] if given.lower() in lowered else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def show(value: Any) -> str:
    """A short rendering of a (non-secret) value for a message."""
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return "'" + shown.replace("\n", "\\n") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value) if len(str(value)) <= 30 else "a very long number"
    return type_name(value)


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "null (nothing)"
    return type(value).__name__


__all__ = ["PATTERN_WORDS", "Explained", "FieldPath", "dotted_path", "explain", "show", "type_name"]
