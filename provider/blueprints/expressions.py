"""`${...}` expressions: paths into the Tenant, its parameters and the forEach item. Pure, on plain data.

An expression is a path and nothing else: `tenant.name`, `tenant.labels.KEY` (the rest of the text is the
label key), `params.PATH`, and inside a forEach `each.PATH` and `index`. PATH steps into mappings by key
and into lists by 0-based number (`params.staff.0.name`). No operator, no call, no code: there is nothing
to evaluate but lookups, and a value found is inserted as it is, never read for expressions again (a
parameter holding `${params.x}` is that text), so nothing can recurse.

A string that is one whole expression keeps the value's type (an integer stays an integer, a list a list);
an expression inside a longer string is interpolated and must be text or a number. `$${` is a literal `${`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provider.blueprints.errors import MAX_EXPRESSION, MAX_SEGMENTS, MAX_STRING, ExpansionError

ROOTS = ("tenant", "params", "each", "index")
FORMS = "tenant.name, tenant.labels.KEY, params.PATH, each.PATH or index"
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Ref:
    """One `${...}`: its root and the steps below it, and the text as written (for messages)."""

    root: str
    steps: tuple[str, ...]
    text: str

    def __str__(self) -> str:
        return "${" + self.text + "}"


Part = str | Ref


def parse(text: str) -> tuple[Part, ...] | None:
    """The literal text and expressions of a string, or None when it holds none (nor an escape)."""
    if "${" not in text:
        return None
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            literal.append(text[i:])
            break
        literal.append(text[i:j])
        if text.startswith("$${", j):
            literal.append("${")
            i = j + 3
        elif text.startswith("${", j):
            end = text.find("}", j + 2)
            if end < 0:
                raise ExpansionError(f"{_short(text[j:])} is never closed: an expression is ${{PATH}} ({FORMS}); "
                                     "write $${ for a literal ${")
            if "".join(literal):
                parts.append("".join(literal))
            literal = []
            parts.append(ref(text[j + 2:end]))
            i = end + 1
        else:
            literal.append("$")
            i = j + 1
    if literal and "".join(literal):
        parts.append("".join(literal))
    return tuple(parts)


def ref(inner: str) -> Ref:
    """The path between `${` and `}`."""
    text = inner.strip()
    if len(text) > MAX_EXPRESSION:
        raise ExpansionError(f"an expression of {len(text):,} characters is longer than {MAX_EXPRESSION} allowed")
    root, _, rest = text.partition(".")
    if root not in ROOTS:
        raise ExpansionError(f"${{{_short(text)}}} is not an expression: a path starts with one of {FORMS} "
                             "(no operators, calls or code)")
    if root == "tenant" and rest.startswith("labels."):
        return Ref(root, ("labels", rest[len("labels."):]), text)  # a label key may hold dots and slashes
    steps = tuple(rest.split(".")) if rest else ()
    if len(steps) > MAX_SEGMENTS:
        raise ExpansionError(f"${{{_short(text)}}} has more than {MAX_SEGMENTS} steps")
    bad = next((s for s in steps if not _SEGMENT.match(s)), None)
    if bad is not None:
        what = "an empty step" if not bad else f"the step {_short(bad)!r}"
        raise ExpansionError(f"${{{_short(text)}}} has {what}: a path is names and list numbers joined by '.' "
                             f"({FORMS}); no operators, calls or code")
    if root == "index" and steps:
        raise ExpansionError(f"${{{_short(text)}}}: index is a number, it has no fields")
    if root == "tenant" and steps != ("name",):
        raise ExpansionError(f"${{{_short(text)}}}: a tenant has name and labels.KEY")
    return Ref(root, steps, text)


def whole(parts: tuple[Part, ...]) -> Ref | None:
    """The expression a string consists of, when it is exactly one."""
    return parts[0] if len(parts) == 1 and isinstance(parts[0], Ref) else None


def refs(parts: tuple[Part, ...]) -> list[Ref]:
    return [p for p in parts if isinstance(p, Ref)]


Scope = Mapping[str, Any]  # {"tenant": {"name", "labels"}, "params": {...}, "each": item, "index": n}


def resolve(r: Ref, scope: Scope) -> Any:
    """The value `r` names in `scope`; raises ExpansionError saying which step does not exist."""
    if r.root not in scope:
        raise ExpansionError(f"{r} can only be used in a resource with forEach")
    value = scope[r.root]
    walked = r.root
    for step in r.steps:
        if isinstance(value, Mapping):
            if step not in value:
                known = ", ".join(sorted(map(str, value))[:10]) or "nothing"
                raise ExpansionError(f"{r} does not resolve: {walked} has no {step!r} (it has {known})")
            value = value[step]
        elif isinstance(value, list):
            if not step.isdigit() or int(step) >= len(value):
                raise ExpansionError(f"{r} does not resolve: {walked} is a list of {len(value)} items, and {step!r} "
                                     "is not one of its numbers (0-based)")
            value = value[int(step)]
        else:
            raise ExpansionError(f"{r} does not resolve: {walked} is {_kind(value)}, it has no {step!r}")
        walked = f"{walked}.{step}"
    return value


def interpolate(parts: tuple[Part, ...], scope: Scope) -> Any:
    """The value of a string's parts: a whole expression's value as it is, else the joined text."""
    single = whole(parts)
    if single is not None:
        return resolve(single, scope)
    out: list[str] = []
    size = 0
    for part in parts:
        text = part if isinstance(part, str) else _as_text(part, resolve(part, scope))
        size += len(text)
        if size > MAX_STRING:
            raise ExpansionError(f"the text grows past {MAX_STRING:,} characters once interpolated")
        out.append(text)
    return "".join(out)


def truthy(value: Any) -> bool:
    """`when`: true, a non-empty list, mapping or text, a non-zero number."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return False


def _as_text(r: Ref, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    raise ExpansionError(f"{r} is {_kind(value)}: inside a longer text an expression must be text or a number "
                         "(make the whole value the expression to insert it as it is)")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


__all__ = [
    "FORMS", "ROOTS", "Part", "Ref", "Scope", "interpolate", "parse", "ref", "refs", "resolve", "truthy", "whole",
]
