"""Label selectors and pagination cursors: validated here, turned into SQL expressions.

The selector grammar is `tenancy_kinds.selectors` (the provider's `--selector` parses the same way);
values are matched as bound parameters, never spliced into SQL.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, or_, true

from tenancy_kinds import STACK_LABEL
from tenancy_kinds.selectors import SELECTOR_EXAMPLES, SELECTOR_PATTERN, Op, SelectorError, Term
from tenancy_kinds.selectors import parse_selector as parse_terms
from tenancy_backend.db import resources
from tenancy_backend.errors import BadRequest


def parse_selector(selector: str | None) -> list[Term]:
    """The terms of a label selector (the grammar is `tenancy_kinds.selectors`'); BadRequest naming the bad
    term when it is malformed."""
    try:
        return parse_terms(selector)
    except SelectorError as e:
        raise _bad(e.selector, e.why) from None


def _bad(selector: str, why: str) -> BadRequest:
    message = f"invalid labelSelector {selector[:200]!r}: {why}. {SELECTOR_EXAMPLES}"
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
