"""`tenancy.yaml` beside the manifests: the stack they belong to (`stack: production`) and the policies that
judge their plans (`policy: [policies/]`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from provider.errors import Finding, Severity
from provider.manifests.discover import CONFIG_NAMES
from provider.manifests.manifest import Origin
from tenancy_kinds.messages import FieldPath
from tenancy_kinds.messages import PATTERN_WORDS, show
from provider.manifests.text import read_text
from provider.manifests.yaml_full import values
from tenancy_kinds import SLUG_PATTERN

CONFIG_FIELDS = ("stack", "policy")

_SLUG = re.compile(SLUG_PATTERN)
Document = tuple[dict[str, Any], dict[FieldPath, Origin]]


def read_config(roots: list[Path], findings: list[Finding]) -> tuple[str | None, list[Path]]:
    """The stack named by the roots' tenancy.yaml files (they must agree when several name one), and the
    policy paths they list."""
    stack: str | None = None
    where = ""
    policies: list[Path] = []
    for root in roots:
        config = next((root / n for n in CONFIG_NAMES if (root / n).is_file()), None)
        document = _config_document(config, findings) if config else None
        if config is None or document is None:
            continue
        policies.extend(_config_policies(config, *document, findings))
        found = _config_stack(*document, findings)
        if found is None:
            continue
        name, at = found
        if stack is not None and name != stack:
            findings.append(
                _finding(at, f"stack: '{name}' differs from stack '{stack}' in {where}; plan and apply one stack at "
                             "a time, or pass --stack", "stack")
            )
            continue
        stack, where = name, str(config)
    return stack, policies


def _config_document(config: Path, findings: list[Finding]) -> Document | None:
    """One tenancy.yaml as (mapping, positions), its unknown fields reported; None when it holds none."""
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
    return value, positions


def _config_stack(
    value: dict[str, Any], positions: dict[FieldPath, Origin], findings: list[Finding]
) -> tuple[str, Origin] | None:
    """The `stack:` of one tenancy.yaml and where it is written, or None (no stack, or an error found)."""
    stack = value.get("stack")
    if stack is None:
        return None
    where = positions[("stack",)]
    if not isinstance(stack, str) or not _SLUG.match(stack):
        words = PATTERN_WORDS[SLUG_PATTERN]
        findings.append(_finding(where, f"stack: {show(stack)} is not valid: expected {words}", "stack"))
        return None
    return stack, where


def _config_policies(
    config: Path, value: dict[str, Any], positions: dict[FieldPath, Origin], findings: list[Finding]
) -> list[Path]:
    """The `policy:` paths of one tenancy.yaml (a list, or one path), relative to its directory."""
    listed = value.get("policy")
    if listed is None:
        return []
    if isinstance(listed, str):
        entries: list[tuple[FieldPath, Any]] = [(("policy",), listed)]
    elif isinstance(listed, list):
        entries = [(("policy", i), entry) for i, entry in enumerate(listed)]
    else:
        message = "policy: expected a list of .rego files or directories, such as `policy: [policies/]`"
        findings.append(_finding(positions[("policy",)], message, "policy"))
        return []
    paths = []
    for where, entry in entries:
        at = positions.get(where, positions[("policy",)])
        if not isinstance(entry, str) or not entry:
            findings.append(_finding(at, f"policy: {show(entry)} is not a path to a .rego file or directory", "policy"))
        elif not (config.parent / entry).exists():
            findings.append(_finding(at, f"policy: '{entry}' does not exist (relative to {config.parent})", "policy"))
        else:
            paths.append(config.parent / entry)
    return paths


def _finding(at: Origin, message: str, field: str = "", severity: Severity = Severity.ERROR) -> Finding:
    return Finding(at.file, at.line, at.col, severity, message, field)
