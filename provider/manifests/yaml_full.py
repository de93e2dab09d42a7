"""The full reader: each document's nodes → JSON-plain values, every value's position kept by path.

It reads every file the faster paths decline and words every YAML finding: aliases expanded within our
limits, merge keys, core-schema tags (any other tag is an error, never constructed), duplicate mapping
keys refused (PyYAML silently keeps the last one).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from provider.errors import Finding, Severity
from provider.manifests.core_schema import (
    COLLECTION_TAGS,
    CORE,
    MERGE,
    SCALAR_TAGS,
    core_value,
    number,
    short_tag,
)
from provider.manifests.limits import MAX_DEPTH, MAX_NODES, too_deep, too_many_values
from provider.manifests.manifest import Origin
from tenancy_kinds.messages import FieldPath, show
from provider.manifests.syntax import yaml_error_finding
from provider.manifests.yaml_events import Node, Refused, documents


def values(text: str, file: str, findings: list[Finding]) -> Iterator[tuple[Any, dict[FieldPath, Origin]]]:
    """Each non-empty document as (value, positions); YAML problems become findings and end the file."""
    try:
        for root, aliased in documents(text):
            if root is None:
                continue
            builder = _Builder(file, findings, aliased)
            before = len(findings)
            try:
                value = builder.build(root, ())
            except Refused as e:
                findings.append(Finding(file, e.line, e.col, Severity.ERROR, e.message))
                continue
            if value is None or len(findings) > before:  # an empty document, or one with YAML errors
                continue
            builder.positions[()] = Origin(file, root.line, root.col)
            yield value, builder.positions
    except Refused as e:
        findings.append(Finding(file, e.line, e.col, Severity.ERROR, e.message))
    except yaml.YAMLError as e:
        findings.append(yaml_error_finding(e, text, file))


class _Builder:
    """Expands one document's nodes into JSON-like values, recording each value's position by path."""

    def __init__(self, file: str, findings: list[Finding], aliased: bool = False) -> None:
        self.file = file
        self.findings = findings
        self.aliased = aliased  # whether aliases repeat nodes: the words of a limit then say so
        self.positions: dict[FieldPath, Origin] = {}
        self.count = 0

    def error(self, node: Node, message: str) -> None:
        self.findings.append(Finding(self.file, node.line, node.col, Severity.ERROR, message))

    def build(self, node: Node, path: FieldPath, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise Refused(too_many_values(self.aliased), node.line, node.col)
        if depth > MAX_DEPTH:
            raise Refused(too_deep(self.aliased), node.line, node.col)
        if node.kind == "scalar":
            return self.scalar(node)
        if node.tag not in (None, "!", COLLECTION_TAGS[node.kind]):
            self.error(node, f"unsupported YAML tag {short_tag(node.tag or '')}: manifests hold plain values only "
                             "(text, numbers, true/false, null, lists and mappings)")
        if node.kind == "seq":
            return self.sequence(node, path, depth)
        return self.mapping(node, path, depth)

    def scalar(self, node: Node) -> Any:
        text = node.value
        if node.plain:
            return core_value(text)
        if node.tag in (None, "!", CORE + "str"):
            return text
        if node.tag in SCALAR_TAGS:
            value = core_value(text)
            name = node.tag[len(CORE):]
            fits = {"int": type(value) is int, "float": type(value) in (int, float), "bool": type(value) is bool,
                    "null": value is None}[name]
            if fits:
                return number(float(value)) if name == "float" else value
            self.error(node, f"{show(text)} is not a valid {short_tag(node.tag)} value")
            return text
        self.error(node, f"unsupported YAML tag {short_tag(node.tag or '')}: manifests hold plain values only "
                         "(text, numbers, true/false, null, lists and mappings)")
        return text

    def sequence(self, node: Node, path: FieldPath, depth: int) -> list[Any]:
        out = []
        for i, child in enumerate(node.value):
            self.positions[path + (i,)] = Origin(self.file, child.line, child.col)
            out.append(self.build(child, path + (i,), depth + 1))
        return out

    def mapping(self, node: Node, path: FieldPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pairs = list(zip(node.value[0::2], node.value[1::2], strict=True))
        # Merge keys first, so that the mapping's own keys override what `<<: *defaults` brings in.
        for key, value in pairs:
            if key.kind == "scalar" and key.plain and key.value == MERGE:
                self.merge(out, value, path, depth)
        first: dict[str, Node] = {}
        for key, value in pairs:
            if key.kind != "scalar":
                self.error(key, "a mapping key must be plain text, not a list or a mapping")
                continue
            if key.plain and key.value == MERGE:
                continue
            name = key.value
            if name in first:
                self.error(key, f"duplicate key '{name}' (first at line {first[name].line}); YAML would silently keep "
                                "only the last one: remove or rename one of them")
                continue
            first[name] = key
            self.positions[path + (name,)] = Origin(self.file, key.line, key.col)
            out[name] = self.build(value, path + (name,), depth + 1)
        return out

    def merge(self, out: dict[str, Any], value: Node, path: FieldPath, depth: int) -> None:
        sources = value.value if value.kind == "seq" else [value]
        for source in sources:
            if source.kind != "map":
                self.error(source, "a merge key (<<) takes a mapping or a list of mappings, e.g. <<: *defaults")
                continue
            for name, item in self.mapping(source, path, depth).items():
                out.setdefault(name, item)
