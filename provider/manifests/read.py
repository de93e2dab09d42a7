"""One file's text → its manifests and findings, from the cache or by the first reader that accepts it:

1. `yaml_fast` (yaml-rs, one pydantic validation per kind) for simple YAML of valid manifests;
2. `yaml_plain` (libyaml's events → values) for other plain YAML of valid manifests;
3. `yaml_full` + `validate` for everything else: every finding worded with its file:line:col.

The first two decline anything with a finding, so every path gives the same manifests and findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provider.errors import Finding
from provider.manifests import cache
from provider.manifests.manifest import Manifest, Origin, Source
from provider.manifests.positions import FilePositions, prevalidated
from provider.manifests.text import read_text
from provider.manifests.validate import manifest
from provider.manifests.yaml_fast import simple_documents
from provider.manifests.yaml_full import values
from provider.manifests.yaml_plain import plain_values


def read_file(
    file: Path,
    root: Path,
    sources: list[Source] | None = None,
    keys: dict[str, str] | None = None,
    previous: Path | None = None,
) -> tuple[list[Manifest], list[Finding]]:
    """The file's manifests and findings, its Blueprints and Tenants appended to `sources`, the key of the
    text read (`cache.entry_for`) into `keys`; a file read without a finding is remembered in the cache,
    unless it holds a Blueprint or a Tenant: those are read afresh every time (their expansion depends on
    other files, and is never cached). `previous`: the cache entry of what the file held before, whose
    documents of the same text are taken again (`yaml_fast.simple_documents`)."""
    text, findings = read_text(file)
    if text is None:
        return [], findings
    entry = cache.entry_for(text)
    if entry is not None and keys is not None:
        keys[str(file)] = entry.name
    found = None if entry is None else cache.cached(entry, text, str(file), root)
    if found is not None:
        return found, []
    held: list[Source] = []
    digests: list[str] = []
    known = None if previous is None or entry is None else cache.known(previous)
    try:
        manifests, findings = parse_manifests(text, str(file), root, held, known, digests, on_disk=True)
    except (KeyError, TypeError, AttributeError, ValueError):
        if known is None:
            raise
        held, digests = [], []  # an earlier entry that is not ours (its documents not manifests): read afresh
        manifests, findings = parse_manifests(text, str(file), root, held, None, digests, on_disk=True)
    if entry is not None and not findings and not held:
        cache.store(entry, manifests, digests or None)
    if sources is not None:
        sources.extend(held)
    return manifests, findings


def cached_file(file: Path, root: Path, keys: dict[str, str] | None = None) -> list[Manifest] | None:
    """The file's manifests from the cache (the key of the text read into `keys`), or None (not cached, or
    unreadable: `read_file` words why)."""
    text, _ = read_text(file)
    entry = None if text is None else cache.entry_for(text)
    if entry is None or text is None:
        return None
    found = cache.cached(entry, text, str(file), root)
    if found is not None and keys is not None:
        keys[str(file)] = entry.name
    return found


def parse_manifests(
    text: str,
    file: str,
    root: Path,
    sources: list[Source] | None = None,
    known: dict[str, dict[str, Any]] | None = None,
    digests: list[str] | None = None,
    on_disk: bool = False,
) -> tuple[list[Manifest], list[Finding]]:
    """The manifests and findings of a file's text, by the first reader that accepts it; its Blueprints and
    Tenants (read by the full reader: they need their positions) are appended to `sources`. The fast reader
    takes `known` documents again (`yaml_fast.simple_documents`) and puts each document's digest into
    `digests`. `on_disk`: the text is the file's, whose field positions are read again from the file when
    asked (`positions.FilePositions`)."""
    # A Blueprint or a Tenant needs its positions: such a file goes straight to the full reader (the names in
    # the text are a hint only; the faster readers decline these documents anyway).
    sourced = "Blueprint" in text or "Tenant" in text
    fast = None if sourced else fast_manifests(text, file, root, known, digests, on_disk)
    if fast is None and not sourced:
        fast = plain_manifests(text, file, root, on_disk)
    if fast is not None:
        return fast, []
    manifests: list[Manifest] = []
    findings: list[Finding] = []
    for value, positions in values(text, file, findings):
        found = manifest(value, positions, file, root, findings, sources if sources is not None else [])
        if found is not None:
            manifests.append(found)
    return manifests, findings


def fast_manifests(
    text: str,
    file: str,
    root: Path,
    known: dict[str, dict[str, Any]] | None = None,
    digests: list[str] | None = None,
    on_disk: bool = False,
) -> list[Manifest] | None:
    """The Rust reader's manifests (see `yaml_fast`), or None when it declines the file; the digest of each
    document's text into `digests`."""
    documents = simple_documents(text, known)
    if documents is None:
        return None
    if digests is not None:
        digests.extend(digest for *_, digest in documents)
    return prevalidated(documents, text, file, root, on_disk)


def plain_manifests(text: str, file: str, root: Path, on_disk: bool = False) -> list[Manifest] | None:
    """Valid manifests in plain YAML (no anchor, alias, merge key or tag), read from libyaml's events.

    None when anything in the file needs the full reader: a YAML feature above, a limit reached, a syntax
    error, a finding of any kind. Then the full reader runs on the whole file and words every finding; so
    both paths give the same manifests and the same findings. Field positions are only computed (by the
    full reader, once per file) when a rule asks where a field is written.
    """
    documents = plain_values(text)
    if documents is None:
        return None
    lazy = FilePositions(text, file, on_disk)
    manifests: list[Manifest] = []
    for index, (value, line, col) in enumerate(documents):
        findings: list[Finding] = []
        found = manifest(value, {(): Origin(file, line, col)}, file, root, findings)
        if found is None or findings:
            return None
        found.located, found.index = lazy, index
        manifests.append(found)
    return manifests
