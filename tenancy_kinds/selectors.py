"""The label-selector grammar, parsed once for both halves: the backend's `labelSelector` (turned into SQL
there) and the provider's `--selector` (matched against a plan's operations).

A selector is comma-separated terms, all of which must hold (AND): `k=v` (or `k==v`), `k!=v` (also true
when the label is absent, as in Kubernetes), `k` (exists) and `!k` (absent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from tenancy_kinds.specs import LABEL_KEY_PATTERN

_VALUE_CHARACTERS = r"[^,=!\x00-\x1f\x7f]{0,253}"
# What `str.strip` removes (`str.isspace`), named character by character: `\s` means other things in
# ECMA-262 and in Rust's regex, which read this pattern in the OpenAPI document (tests/foundation/test_patterns.py).
STRIPPED = r"\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_KEY = re.compile(LABEL_KEY_PATTERN)
_VALUE = re.compile(f"^{_VALUE_CHARACTERS}$")
MAX_SELECTOR_TERMS = 20
SELECTOR_EXAMPLES = "Use comma-separated terms such as `team=sales`, `tier!=free`, `env`, `!legacy`."


def _selector_pattern() -> str:
    """The grammar `parse_selector` accepts, as one regular expression (for the OpenAPI document): terms
    `k`, `!k`, `k=v`, `k==v`, `k!=v`, at most MAX_SELECTOR_TERMS, with whitespace around the parts (what
    `str.strip` removes); a blank selector selects everything."""
    space = f"[{STRIPPED}]*"
    key = f"(?:{LABEL_KEY_PATTERN.removeprefix('^').removesuffix('$')})"
    term = rf"{space}(?:{key}|!{space}{key}|{key}{space}(?:==?|!=){space}{_VALUE_CHARACTERS}){space}"
    return rf"^(?:{space}|{term}(?:,{term}){{0,{MAX_SELECTOR_TERMS - 1}}})$"


SELECTOR_PATTERN = _selector_pattern()


class Op(StrEnum):
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


class SelectorError(ValueError):
    """A malformed selector; `why` says what is wrong with it (each half words the whole message)."""

    def __init__(self, selector: str, why: str) -> None:
        super().__init__(why)
        self.selector = selector
        self.why = why


def parse_selector(selector: str | None) -> list[Term]:
    """The terms of a label selector (none for an empty one); SelectorError naming the bad term."""
    if selector is None or not selector.strip():
        return []
    raw_terms = [t.strip() for t in selector.split(",")]
    if len(raw_terms) > MAX_SELECTOR_TERMS:
        raise SelectorError(selector, f"at most {MAX_SELECTOR_TERMS} terms are allowed")
    return [_parse_term(selector, t) for t in raw_terms]


def matches(terms: list[Term], labels: dict[str, str]) -> bool:
    """Whether labels satisfy every term."""
    return all(term.matches(labels) for term in terms)


def _parse_term(selector: str, term: str) -> Term:
    if not term:
        raise SelectorError(selector, "empty term (two commas in a row, or a trailing comma)")
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
        raise SelectorError(selector, f"{term.key!r} is not a valid label key")
    if not _VALUE.match(term.value):
        raise SelectorError(selector, f"{term.value!r} is not a valid label value")
    return term


__all__ = ["MAX_SELECTOR_TERMS", "SELECTOR_EXAMPLES", "SELECTOR_PATTERN", "Op", "SelectorError", "Term", "matches", "parse_selector"]
