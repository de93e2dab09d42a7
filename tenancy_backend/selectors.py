"""Label selectors and pagination cursors: parsed and validated here, turned into SQL expressions.

A selector is comma-separated terms, all of which must hold (AND): `k=v` (or `k==v`), `k!=v` (also true
when the label is absent, as in Kubernetes), `k` (exists) and `!k` (absent). Values are matched as bound
parameters, never spliced into SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import ColumnElement, and_, or_, true

from tenancy_kinds import LABEL_KEY_PATTERN, STACK_LABEL
from tenancy_backend.db import resources
from tenancy_backend.errors import BadRequest

_VALUE_CHARACTERS = r"[^,=!\x00-\x1f\x7f]{0,253}"
_KEY = re.compile(LABEL_KEY_PATTERN)
_VALUE = re.compile(f"^{_VALUE_CHARACTERS}$")
MAX_SELECTOR_TERMS = 20


def _selector_pattern() -> str:
    """The grammar `parse_selector` accepts, as one regular expression (for the OpenAPI document): terms
    `k`, `!k`, `k=v`, `k==v`, `k!=v`, at most MAX_SELECTOR_TERMS, with whitespace around the parts (`\\s`
    is what `str.strip` removes); a blank selector selects everything."""
    key = f"(?:{LABEL_KEY_PATTERN.removeprefix('^').removesuffix('$')})"
    term = rf"\s*(?:{key}|!\s*{key}|{key}\s*(?:==?|!=)\s*{_VALUE_CHARACTERS})\s*"
    return rf"^(?:\s*|{term}(?:,{term}){{0,{MAX_SELECTOR_TERMS - 1}}})$"


SELECTOR_PATTERN = _selector_pattern()


class Op(str, Enum):
    EQUALS = "="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    ABSENT = "!"


@dataclass(frozen=True)
class Term:
    op: Op
    key: str
    value: str = ""

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op is Op.EQUALS:
            return present and labels[self.key] == self.value
        if self.op is Op.NOT_EQUALS:
            return labels.get(self.key) != self.value
        return present if self.op is Op.EXISTS else not present


def parse_selector(selector: str | None) -> list[Term]:
    """The terms of a label selector; BadRequest naming the bad term when it is malformed."""
    if selector is None or not selector.strip():
        return []
    raw_terms = [t.strip() for t in selector.split(",")]
    if len(raw_terms) > MAX_SELECTOR_TERMS:
        raise _bad(selector, f"at most {MAX_SELECTOR_TERMS} terms are allowed")
    return [_parse_term(selector, t) for t in raw_terms]


def _parse_term(selector: str, term: str) -> Term:
    if not term:
        raise _bad(selector, "empty term (two commas in a row, or a trailing comma)")
    if "!=" in term:
        key, value = (s.strip() for s in term.split("!=", 1))
        return _checked(selector, Term(Op.NOT_EQUALS, key, value))
    if "=" in term:
        key, value = (s.strip() for s in term.replace("==", "=", 1).split("=", 1))
        return _checked(selector, Term(Op.EQUALS, key, value))
    if term.startswith("!"):
        return _checked(selector, Term(Op.ABSENT, term[1:].strip()))
    return _checked(selector, Term(Op.EXISTS, term))


def _checked(selector: str, term: Term) -> Term:
    if not _KEY.match(term.key):
        raise _bad(selector, f"{term.key!r} is not a valid label key")
    if not _VALUE.match(term.value):
        raise _bad(selector, f"{term.value!r} is not a valid label value")
    return term


def _bad(selector: str, why: str) -> BadRequest:
    message = (
        f"invalid labelSelector {selector[:200]!r}: {why}. "
        "Use comma-separated terms such as `team=sales`, `tier!=free`, `env`, `!legacy`."
    )
    return BadRequest(message, [{"path": "labelSelector", "message": message}])


def selector_clause(terms: list[Term]) -> ColumnElement[bool]:
    """A WHERE clause over the `resources` table for the terms (the stack label uses its own column)."""
    clauses = [_term_clause(t) for t in terms]
    return and_(true(), *clauses)


def _term_clause(term: Term) -> ColumnElement[bool]:
    value = resources.c.stack if term.key == STACK_LABEL else resources.c.labels[term.key].as_string()
    if term.op is Op.EQUALS:
        return value == term.value
    if term.op is Op.NOT_EQUALS:
        return or_(value.is_(None), value != term.value)
    return value.is_not(None) if term.op is Op.EXISTS else value.is_(None)


# --- cursors --------------------------------------------------------------------------------------


# A cursor is the id the next page starts after, in hexadecimal: every string of the pattern is a cursor
# (a page, possibly empty), so the OpenAPI document can say exactly which cursors are refused. Ids are far
# below 16^15; the empty cursor is the first page.
CURSOR_PATTERN = r"^[0-9a-f]{0,15}$"
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(last_id: int) -> str:
    return f"{last_id:x}"


def decode_cursor(cursor: str | None) -> int:
    """The id a page starts after (0 for the first page); BadRequest for anything not of CURSOR_PATTERN."""
    if cursor is None or cursor == "":
        return 0
    if not _CURSOR.fullmatch(cursor):
        message = "invalid cursor: pass the nextCursor of the previous page unchanged, or omit it to start over"
        raise BadRequest(message, [{"path": "cursor", "message": message}])
    return int(cursor, 16)


__all__ = [
    "CURSOR_PATTERN",
    "SELECTOR_PATTERN",
    "Op",
    "Term",
    "decode_cursor",
    "encode_cursor",
    "parse_selector",
    "selector_clause",
]
