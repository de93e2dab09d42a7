"""Label selectors and pagination cursors: validated here, turned into SQL expressions.

The selector grammar is `tenancy_kinds.selectors` (the provider's `--selector` parses the same way);
values are matched as bound parameters, never spliced into SQL.
"""

from __future__ import annotations

import base64
import binascii
import json

from sqlalchemy import ColumnElement, and_, or_, true

from tenancy_kinds import STACK_LABEL
from tenancy_kinds.selectors import SELECTOR_EXAMPLES, Op, SelectorError, Term
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


def encode_cursor(last_id: int) -> str:
    raw = json.dumps({"after": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id a page starts after (0 for the first page); BadRequest for anything we did not issue."""
    if cursor is None or cursor == "":
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = data["after"]
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63:
            raise ValueError(after)
        return after
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        message = "invalid cursor: pass the nextCursor of the previous page unchanged, or omit it to start over"
        raise BadRequest(message, [{"path": "cursor", "message": message}]) from None


__all__ = ["Op", "Term", "decode_cursor", "encode_cursor", "parse_selector", "selector_clause"]
