"""The YAML 1.2 core schema, as editors read YAML: what a plain scalar means and which tags are ours.

`yes`/`no`/`on`/`off` stay strings (YAML 1.2), so `country: NO` is Norway, not false. Any tag outside the
core schema (`!!python/object`, `!custom`) is never constructed: the readers refuse it.
"""

from __future__ import annotations

import re
from typing import Any

CORE = "tag:yaml.org,2002:"
SCALAR_TAGS = frozenset(CORE + t for t in ("str", "int", "float", "bool", "null"))
COLLECTION_TAGS = {"seq": CORE + "seq", "map": CORE + "map"}
MERGE = "<<"  # the merge key (`<<: *defaults`), read by the full reader

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
_SPECIAL_STARTS = frozenset("~nNtTfF0123456789+-.")  # the first characters of _NULLS, _TRUE, _FALSE and numbers


def core_value(text: str) -> Any:
    """A plain scalar under the YAML 1.2 core schema (what editors use): yes/no/on/off stay strings."""
    if text and text[0] not in _SPECIAL_STARTS:  # most values: no null, boolean or number starts this way
        return text
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    try:
        if _INT.fullmatch(text):
            return int(text, 10)
        if _OCT.fullmatch(text):
            return int(text, 0)  # '0o17': the prefix says the base
        if _HEX.fullmatch(text):
            return int(text, 0)
    except ValueError:  # more digits than Python converts: not a number anyone means
        return text
    if _FLOAT.fullmatch(text):
        return number(float(text))
    if _INF.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    return text


def number(value: float) -> int | float:
    """JSON's data model: 5.0 is the integer 5 (as JSON Schema and editors see it), so maxAddresses: 5.0 is fine."""
    return int(value) if value.is_integer() else value


def short_tag(tag: str) -> str:
    return "!!" + tag[len(CORE):] if tag.startswith(CORE) else tag
