"""What reading gives: a `Manifest` (one validated document and where it came from), a `ManifestSet`,
the `Origin` (file:line:col) of anything written in a file, the `Expansion` that made a resource out of a
Tenant and a Blueprint (SPEC §6), and the `Source`: a Blueprint or Tenant document as written."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from provider.errors import Finding, Severity
from tenancy_kinds import Kind, ResourceKey
from tenancy_kinds.messages import FieldPath, dotted_path


@dataclass(frozen=True, order=True, slots=True)
class Origin:
    """A position in a manifest file; line and col are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def nearest(positions: dict[FieldPath, Origin], path: FieldPath, default: Origin) -> Origin:
    """Where `path` is written, or its nearest written parent, or `default`."""
    path = tuple(path)
    while path:
        if path in positions:
            return positions[path]
        path = path[:-1]
    return default


def path_of(dotted: str) -> FieldPath:
    """A finding's dotted field (`spec.members[2]`) as a path again (for the blueprint line it names)."""
    parts = dotted.replace("[", ".").replace("]", "").split(".")
    return tuple(int(part) if part.isdigit() else part for part in parts if part)


@dataclass(frozen=True)
class Source:
    """A Blueprint or a Tenant document as written (not a resource: `provider.blueprints` expands them)."""

    kind: str
    value: dict[str, Any]
    positions: dict[FieldPath, Origin] = field(repr=False, compare=False)
    root: Path = field(compare=False)

    @property
    def origin(self) -> Origin:
        return self.positions[()]

    def at(self, path: FieldPath) -> Origin:
        return nearest(self.positions, path, self.origin)


@dataclass(frozen=True)
class Expansion:
    """Where an expanded resource comes from: the Tenant (its document's file:line:col) and the blueprint
    resource it was made from (`positions`: that resource's fields, by the expanded document's paths)."""

    tenant: str
    blueprint: str
    tenant_origin: Origin
    resource_origin: Origin  # the blueprint resource (`- kind: ...` in spec.resources)
    positions: dict[FieldPath, Origin] = field(default_factory=dict, repr=False, compare=False)

    def blueprint_origin(self, path: FieldPath) -> Origin:
        """The blueprint's line for a field of the expanded document (its nearest written parent)."""
        return nearest(self.positions, path, self.resource_origin)

    def note(self, what: str, path: FieldPath = ()) -> str:
        """`User acme/bob (from blueprints/mail.yaml:24)`: what a finding about the resource starts with."""
        at = self.blueprint_origin(path)
        return f"{what} (from {at.file}:{at.line})"


_NO_POSITIONS: Mapping[FieldPath, Origin] = MappingProxyType({})  # one for every manifest without them
_SHORT = 24  # characters: a spec's words that repeat across resources (a role, a tier, a member's name)


def shared(document: dict[str, Any]) -> dict[str, Any]:
    """The validated document, its words that repeat across manifests made one string each (in place):
    apiVersion, kind, the organization, and the spec's short strings, alone or in lists. Every manifest
    read made its own copy of each: a million manifests spend 300 MB less."""
    intern = sys.intern
    document["apiVersion"] = intern(document["apiVersion"])
    document["kind"] = intern(document["kind"])
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and type(metadata.get("organization")) is str:
        metadata["organization"] = intern(metadata["organization"])
    spec = document.get("spec")
    if isinstance(spec, dict):
        for field_name, value in spec.items():
            if type(value) is str:
                if len(value) <= _SHORT:
                    spec[field_name] = intern(value)
            elif type(value) is list:
                value[:] = [intern(v) if type(v) is str and len(v) <= _SHORT else v for v in value]
    return document


class FileOfPositions(Protocol):
    """Every document's field positions in one file, read on first request (`positions.FilePositions`)."""

    def document(self, index: int) -> Mapping[FieldPath, Origin]: ...


@dataclass(slots=True)
class Manifest:
    """One validated resource document and where it came from."""

    key: ResourceKey
    kind: Kind
    document: dict[str, Any]  # JSON-plain, camelCase, only what the file says (no defaults filled in)
    origin: Origin
    root: Path  # the directory given on the command line: secrets files may not leave it
    positions: Mapping[FieldPath, Origin] = field(default_factory=lambda: _NO_POSITIONS, repr=False, compare=False)
    # Set by the loader's fast paths: the file's positions, read on first need (most manifests never need
    # them), of which this manifest's document is number `index` (two fields, not a closure: a million
    # manifests spare 250 MB).
    located: FileOfPositions | None = field(default=None, repr=False, compare=False)
    index: int = field(default=0, repr=False, compare=False)
    # Set on a resource a Tenant expands to: `origin` is then the Tenant's, and findings name the blueprint.
    expansion: Expansion | None = field(default=None, repr=False, compare=False)

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
        if self.located is not None:
            self.positions, self.located = self.located.document(self.index), None
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.origin

    def finding(self, path: FieldPath, text: str, severity: Severity = Severity.ERROR) -> Finding:
        """A finding located at `path`, its message prefixed with the dotted field name (and, for an
        expanded resource, located at its Tenant and naming the blueprint's line)."""
        at = self.field_origin(path)
        dotted = dotted_path(path)
        message = f"{dotted}: {text}" if dotted else text
        if self.expansion is not None:
            message = f"{self.expansion.note(str(self.key), path)}: {message}"
        return Finding(at.file, at.line, at.col, severity, message, dotted)

    def noted(self, finding: Finding) -> Finding:
        """A finding made elsewhere about this resource, worded as `finding` words it."""
        if self.expansion is None:
            return finding
        path = path_of(finding.field)
        message = f"{self.expansion.note(str(self.key), path)}: {finding.message}"
        return Finding(finding.file, finding.line, finding.col, finding.severity, message, finding.field)

    @property
    def place(self) -> str:
        """Where the resource is declared, for a message about another one: `file:line:col`, and for an
        expanded resource its Tenant and blueprint line."""
        if self.expansion is None:
            return str(self.origin)
        e = self.expansion
        at = e.resource_origin
        return f"{self.origin}, Tenant {e.tenant} from {at.file}:{at.line}"


@dataclass
class ManifestSet:
    manifests: list[Manifest]
    stack: str | None = None
    roots: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)  # the manifest files read (config files excluded)
    warnings: list[Finding] = field(default_factory=list)
    policies: list[Path] = field(default_factory=list)  # `policy:` of tenancy.yaml, relative to where it is
    # The key of each manifest file's text as it was read (`cache.entry_for`), by the file's path; empty
    # without a cache. The plan memo recognises the files by them where their stats moved (provider.memo).
    text_keys: dict[str, str] = field(default_factory=dict)

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

    def tenants(self) -> list[str]:
        """The Tenants that expanded to at least one resource, in order."""
        return list(dict.fromkeys(m.expansion.tenant for m in self.manifests if m.expansion is not None))
