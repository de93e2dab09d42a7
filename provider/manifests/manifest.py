"""What reading gives: a `Manifest` (one validated document and where it came from), a `ManifestSet`,
and the `Origin` (file:line:col) of anything written in a file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider.errors import Finding, Severity
from tenancy_kinds import Kind, ResourceKey
from tenancy_kinds.messages import FieldPath, dotted_path


@dataclass(frozen=True, order=True)
class Origin:
    """A position in a manifest file; line and col are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class Manifest:
    """One validated resource document and where it came from."""

    key: ResourceKey
    kind: Kind
    document: dict[str, Any]  # JSON-plain, camelCase, only what the file says (no defaults filled in)
    origin: Origin
    root: Path  # the directory given on the command line: secrets files may not leave it
    positions: dict[FieldPath, Origin] = field(default_factory=dict, repr=False, compare=False)
    # Set by the loader's fast paths: computes `positions` on first need (most manifests never need them).
    locate: Callable[[], dict[FieldPath, Origin]] | None = field(default=None, repr=False, compare=False)

    @property
    def spec(self) -> dict[str, Any]:
        return self.document.get("spec") or {}

    @property
    def organization(self) -> str:
        """The owning organization: the Organization itself, or metadata.organization."""
        return self.key.name if not self.kind.scoped else self.key.organization

    def field_origin(self, path: FieldPath) -> Origin:
        """Where a field is written, or its nearest written parent (a missing field points at its parent)."""
        path = tuple(path)
        if self.locate is not None:
            self.positions, self.locate = self.locate(), None
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.origin

    def finding(self, path: FieldPath, text: str, severity: Severity = Severity.ERROR) -> Finding:
        """A finding located at `path`, its message prefixed with the dotted field name."""
        at = self.field_origin(path)
        dotted = dotted_path(path)
        message = f"{dotted}: {text}" if dotted else text
        return Finding(at.file, at.line, at.col, severity, message, dotted)


@dataclass
class ManifestSet:
    manifests: list[Manifest]
    stack: str | None = None
    roots: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # the manifest files read (config files excluded)
    warnings: list[Finding] = field(default_factory=list)
    policies: list[Path] = field(default_factory=list)  # `policy:` of tenancy.yaml, relative to where it is

    def __iter__(self) -> Iterator[Manifest]:
        return iter(self.manifests)

    def __len__(self) -> int:
        return len(self.manifests)

    def of_kind(self, name: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind.name == name]

    def get(self, key: ResourceKey) -> Manifest | None:
        return next((m for m in self.manifests if m.key == key), None)

    def documents(self) -> list[dict[str, Any]]:
        return [m.document for m in self.manifests]
