"""YAML manifest files → validated resource documents, each field located as `file:line:col`; every Tenant
expanded (SPEC §6, `provider.blueprints`) after all files are read, before the set's duplicates are refused.

The public surface is here (`load`, `collect`, `load_text`, `discover` and the values they return); each
module of the package has one job, listed from the top down (a module imports only those below it,
tests/test_layering.py):

- `parallel`: many files, from the cache or read by two processes;
- `read`: one file's text → manifests and findings, by the first reader that accepts it;
- `cache`: the cache of validated files, keyed by their text and the validating code;
- `validate`: a document → a Manifest through its kind's pydantic model; `config`: tenancy.yaml;
  `positions`: field positions computed on demand;
- `yaml_fast` (yaml-rs), `yaml_plain` (libyaml's events → values), `yaml_full` (values with positions,
  aliases, merge keys, every YAML finding): the three readers;
- `yaml_events`: events → one node graph per document, nesting bounded;
- `manifest`: Manifest, ManifestSet, Origin; `text`: a file's text; `syntax`: YAML errors reworded;
- `limits`: our limits; `messages`: pydantic errors reworded; `discover`: which files are manifests;
  `core_schema`: what a plain scalar means.

What the readers guarantee: safe values only (the YAML 1.2 core schema; any other tag is an error, never
constructed; `yes`/`no` stay strings); bounded (files over 10 MiB, nesting deeper than 100 levels and
documents that expand through aliases to more than 100,000 values are refused); duplicate mapping keys are
errors; every error names a file, a line and a column (1-based), and is worded for a person.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from provider.errors import ConfigError, Finding, ManifestError, Severity
from provider.manifests.config import read_config
from provider.manifests.discover import CONFIG_NAMES, FOREIGN_FILES, discover
from provider.manifests.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from provider.manifests.manifest import Expansion, Manifest, ManifestSet, Origin, Source
from tenancy_kinds.messages import FieldPath, dotted_path
from provider.manifests.parallel import read_files
from provider.manifests.read import parse_manifests
from provider.manifests.validate import without_duplicates


def load(paths: Iterable[str | os.PathLike[str]]) -> ManifestSet:
    """Read and validate every manifest under `paths`. Raises `ManifestError` listing every error found.

    Raises `ConfigError` for a path that does not exist or holds no manifest at all.
    """
    manifest_set, findings = collect(paths)
    if any(f.severity is Severity.ERROR for f in findings):
        raise ManifestError(findings)
    return manifest_set


def collect(paths: Iterable[str | os.PathLike[str]]) -> tuple[ManifestSet, list[Finding]]:
    """Like `load`, but returns the valid manifests with every finding instead of raising on errors."""
    files, roots = discover(paths)
    if not files:
        shown = ", ".join(str(r) for r in roots)
        raise ConfigError(f"no manifests (*.yaml, *.yml) found in {shown}")
    findings: list[Finding] = []
    manifests: list[Manifest] = []
    sources: list[Source] = []
    keys: dict[str, str] = {}
    for file_manifests, file_findings in read_files(files, sources, keys):
        manifests.extend(file_manifests)
        findings.extend(file_findings)
    manifests = without_duplicates(manifests + _expanded(sources, findings), findings)
    stack, policies = read_config(roots, findings)
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    manifest_set = ManifestSet(manifests, stack, roots, [f for f, _ in files], warnings, policies, keys)
    return manifest_set, sorted(findings)


def load_text(text: str, file: str = "manifest.yaml", root: str | os.PathLike[str] = ".") -> ManifestSet:
    """Validate manifests given as text (tests, tools); no stack is read. Raises `ManifestError`."""
    sources: list[Source] = []
    manifests, findings = parse_manifests(text, file, Path(root), sources)
    manifests = without_duplicates(manifests + _expanded(sources, findings), findings)
    if any(f.severity is Severity.ERROR for f in findings):
        raise ManifestError(findings)
    return ManifestSet(manifests, None, [Path(root)], [], [f for f in findings if f.severity is Severity.WARNING])


def _expanded(sources: list[Source], findings: list[Finding]) -> list[Manifest]:
    """Every Tenant's resources (SPEC §6), expanded in one place for every command."""
    if not sources:
        return []
    # Imported here: provider.blueprints reads its documents through this package's modules.
    from provider.blueprints.expand import expand

    return expand(sources, findings)


__all__ = [
    "Expansion",
    "CONFIG_NAMES",
    "FOREIGN_FILES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "FieldPath",
    "Manifest",
    "ManifestSet",
    "Origin",
    "collect",
    "discover",
    "dotted_path",
    "load",
    "load_text",
]
