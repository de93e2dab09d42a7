"""PyYAML's errors (syntax, reader, limits) → a finding a person can act on, at its file:line:col."""

from __future__ import annotations

from typing import Any

import yaml

from provider.errors import Finding, Severity
from provider.manifests.limits import too_deep


def yaml_error_finding(e: yaml.YAMLError, text: str, file: str) -> Finding:
    """The finding for a YAML error raised while reading `text`."""
    if isinstance(e, yaml.MarkedYAMLError):
        return _syntax_finding(e, text, file)
    if isinstance(e, yaml.reader.ReaderError):
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        message = f"the file contains a control character (#x{_code(e.character):04x}) that YAML does not allow"
        return Finding(file, line, col, Severity.ERROR, message)
    return Finding(file, 1, 1, Severity.ERROR, f"invalid YAML: {e}")  # unmarked: rare


def _code(character: int | str) -> int:
    return character if isinstance(character, int) else ord(character[:1] or "\0")


def _syntax_finding(e: yaml.MarkedYAMLError, text: str, file: str) -> Finding:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message, at_context = _syntax_message(e, text)
    if at_context and e.context_mark is not None:
        line, col = e.context_mark.line + 1, e.context_mark.column + 1
    return Finding(file, line, col, Severity.ERROR, message)


def _char_at(text: str, mark: Any) -> str:
    lines = text.splitlines()
    if mark is None or mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return ""
    return str(lines[mark.line][mark.column])


def _syntax_message(e: yaml.MarkedYAMLError, text: str) -> tuple[str, bool]:
    """A message a person can act on, and whether it is best located at the context mark."""
    problem = (e.problem or "").strip()
    context = (e.context or "").strip()
    started = f" (opened at line {e.context_mark.line + 1})" if e.context_mark else ""
    if "nesting depth" in problem:  # a parser's own depth limit (yaml_events reads past libyaml's): our words
        return too_deep(), False
    if "tab" in problem or _char_at(text, e.problem_mark) == "\t":
        return "a tab character cannot indent YAML; indent with spaces", False
    if "mapping values are not allowed" in problem:
        return ("unexpected ':' here: check this line's indentation, or quote a value that contains ': '"), False
    if "could not find expected ':'" in problem:
        return ("expected 'key: value' on this line: a ':' is missing, or the line continues the previous one "
                "with the wrong indentation"), True
    if "block mapping" in context or "block collection" in context or "expected <block end>" in problem:
        return "bad indentation: this line does not line up with the lines above it; indent it like its siblings", False
    if "block sequence" in context:
        return f"bad indentation: this line does not line up with the list{started}; list items start with '- '", False
    if "quoted scalar" in context:
        return f"a quoted string{started} is never closed", False
    if "flow sequence" in context or "flow mapping" in context:
        bracket = "[" if "sequence" in context else "{"
        return f"'{bracket}'{started} is not closed, or a ',' is missing between its items", False
    if "undefined alias" in problem:
        return "an alias (*name) refers to an anchor (&name) that is not defined earlier in this document", False
    if "duplicate anchor" in context or "duplicate anchor" in problem:
        return "the same anchor (&name) is defined twice in this document; rename one", False
    if "control characters" in problem or "special characters" in problem:
        return "the file contains a control character that YAML does not allow", False
    detail = f"{context}: {problem}" if context else problem
    return f"invalid YAML: {detail}", False
