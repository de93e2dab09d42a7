"""`tenancy.yaml` beside the manifests: the stack they belong to (`stack: production`)."""

from __future__ import annotations

import re
from pathlib import Path

from provider.errors import Finding, Severity
from provider.kinds import SLUG_PATTERN
from provider.manifests.discover import CONFIG_NAMES
from provider.manifests.manifest import Origin
from provider.manifests.messages import PATTERN_WORDS, show
from provider.manifests.text import read_text
from provider.manifests.yaml_full import values

CONFIG_FIELDS = ("stack",)

_SLUG = re.compile(SLUG_PATTERN)


def read_stack(roots: list[Path], findings: list[Finding]) -> str | None:
    """The stack named by the roots' tenancy.yaml files; they must agree when several name one."""
    stack: str | None = None
    where = ""
    for root in roots:
        config = next((root / n for n in CONFIG_NAMES if (root / n).is_file()), None)
        found = _config_stack(config, findings) if config else None
        if config is None or found is None:
            continue
        name, at = found
        if stack is not None and name != stack:
            findings.append(
                _finding(at, f"stack: '{name}' differs from stack '{stack}' in {where}; plan and apply one stack at "
                             "a time, or pass --stack", "stack")
            )
            continue
        stack, where = name, str(config)
    return stack


def _config_stack(config: Path, findings: list[Finding]) -> tuple[str, Origin] | None:
    """The `stack:` of one tenancy.yaml and where it is written, or None (no stack, or an error found)."""
    text, problems = read_text(config)
    findings.extend(problems)
    documents = list(values(text, str(config), findings)) if text is not None else []
    if not documents:
        return None
    value, positions = documents[0]
    at = positions[()]
    if len(documents) > 1:
        findings.append(_finding(at, "tenancy.yaml must hold a single document"))
    if not isinstance(value, dict):
        findings.append(_finding(at, "tenancy.yaml must be a mapping such as `stack: production`"))
        return None
    for key in value:
        if key not in CONFIG_FIELDS:
            message = f"unknown field '{key}' in tenancy.yaml; allowed: {', '.join(CONFIG_FIELDS)}"
            findings.append(_finding(positions[(key,)], message, key))
    stack = value.get("stack")
    if stack is None:
        return None
    where = positions[("stack",)]
    if not isinstance(stack, str) or not _SLUG.match(stack):
        words = PATTERN_WORDS[SLUG_PATTERN]
        findings.append(_finding(where, f"stack: {show(stack)} is not valid: expected {words}", "stack"))
        return None
    return stack, where


def _finding(at: Origin, message: str, field: str = "", severity: Severity = Severity.ERROR) -> Finding:
    return Finding(at.file, at.line, at.col, severity, message, field)
