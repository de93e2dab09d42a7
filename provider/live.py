"""The live state as of one revision, read incrementally: the last export seen is kept in the cache
directory and completed with what changed since its revision (`GET /v1/export?since=REV`).

A cache file is one export of one view: the backend, the token's scope (a SHA-256 of the token, never the
token), the organization and the label selector are its key and are written inside it again; it holds
the revision and database identity the export is the state of, and a SHA-256 of its documents, which
follow a line each after their key (kind, organization and name, tab-separated): read back without
decoding any of them, kept so (`provider.documents`). A file that is unreadable, of another format, laid
out otherwise, of another view, of another database, whose checksum does not
match, or whose revision the backend cannot continue from (410 Gone, or ahead of the backend) is never
trusted: the whole export is read again and the file rewritten (atomically, by rename). Exports carry no
secret. `TENANCY_NO_CACHE=1` turns the cache off; it lives beside the manifest cache. After an apply, the
read-back's changes complete the cache when they outnumber it (`complete_cache`: a first apply).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import orjson

from provider.documents import Documents
from provider.errors import BackendError
from provider.manifests.cache import keyed_entry
from tenancy_kinds import KINDS, ResourceKey, framing

CACHE_FORMAT = "tenancy-export-cache/3"  # /3: a document a line, after its key
GONE = 410


@dataclass(frozen=True)
class LiveState:
    """The documents of one export and the revision (of database `database`) they are the state of; both
    None when the backend does not say (then nothing is cached). The documents are kept compact
    (`provider.documents`)."""

    documents: Documents
    revision: int | None = None
    database: str | None = None


@dataclass(frozen=True)
class LiveDelta:
    """What changed from revision `since` to `revision`: documents that may differ (kept compact, as a live
    state's), and keys gone."""

    revision: int
    since: int
    database: str
    items: Documents
    deleted: list[ResourceKey]


class IncrementalClient(Protocol):
    """What a client offers for incremental reads (HttpClient and EmbeddedClient do)."""

    @property
    def cache_identity(self) -> str: ...

    def snapshot(self, organization: str | None = None, label_selector: str | None = None) -> LiveState: ...

    def changes(
        self, since: int, organization: str | None = None, label_selector: str | None = None
    ) -> LiveDelta | None: ...


def token_scope(token: str | None) -> str:
    """What identifies a token's scope in a cache key: its SHA-256, never the token."""
    return "anonymous" if not token else "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def delta_of(body: Any) -> LiveDelta | None:
    """The since-form of an export body, or None when it is not one (an older backend answered whole)."""
    if not isinstance(body, dict):
        return None
    revision, since, database = body.get("revision"), body.get("since"), body.get("database")
    items, deleted = body.get("items"), body.get("deleted")
    if not (isinstance(revision, int) and isinstance(since, int) and isinstance(database, str)):
        return None
    if not (isinstance(items, list | Documents) and isinstance(deleted, list)):
        return None
    keys = [ResourceKey(str(d["kind"]), str(d.get("organization") or ""), str(d["name"])) for d in deleted]
    return LiveDelta(revision, since, database, Documents.of(items), keys)


# --- reading through the cache --------------------------------------------------------------------


def read_live(client: Any, organization: str | None = None, label_selector: str | None = None) -> LiveState:
    """The live state: the cached export completed with the changes since its revision, or (no cache, a
    cache not to be trusted, a backend that cannot continue from it) a whole export, then cached."""
    if not hasattr(client, "snapshot"):
        return LiveState(Documents.of(client.export(organization, label_selector)))
    view = _View(client.cache_identity, organization, label_selector)
    entry = view.entry()
    cached = None if entry is None else _load(entry, view)
    if cached is not None:
        state = _continued(client, cached, view)
        if state is not None:
            if entry is not None and state.revision != cached.revision:
                _store(entry, view, state)
            return state
    state = client.snapshot(organization, label_selector)
    if entry is not None and state.revision is not None:
        _store(entry, view, state)
    return state  # type: ignore[no-any-return]


def _continued(client: IncrementalClient, cached: LiveState, view: _View) -> LiveState | None:
    """The cached export with the changes since applied; None when the backend cannot continue from it."""
    assert cached.revision is not None
    try:
        delta = client.changes(cached.revision, view.organization, view.selector)
    except BackendError as e:
        if e.status == GONE:
            return None
        raise
    if delta is None or delta.database != cached.database or delta.since != cached.revision:
        return None
    if delta.revision < cached.revision:
        return None
    return LiveState(applied(cached.documents, delta), delta.revision, delta.database)


def complete_cache(client: Any, delta: LiveDelta) -> None:
    """After an apply, the cached export of the client's whole view completed with `delta` (what the
    backend reports since the cache's revision: the read-back has it in hand) when the delta holds at least
    as many documents as the cache: the next plan then reads only what changed after the apply, not the
    apply's own changes again from the log (after a cold apply of 1,000,000 resources, the whole fleet).
    A smaller delta, or a cache of another revision or database, is left to the next plan (`read_live`)."""
    if not hasattr(client, "snapshot"):
        return
    view = _View(client.cache_identity, None, None)
    entry = view.entry()
    header = None if entry is None else _header(entry, view)
    count = None if header is None else header.get("count")
    if entry is None or not isinstance(count, int) or count > len(delta.items):
        return
    cached = _load(entry, view)
    if cached is None or cached.revision != delta.since or cached.database != delta.database:
        return
    if delta.revision > delta.since:
        _store(entry, view, LiveState(applied(cached.documents, delta), delta.revision, delta.database))


def applied(documents: Iterable[dict[str, Any]], delta: LiveDelta) -> Documents:
    """The documents with the delta applied: tombstones removed, changed documents replaced or added (as
    their texts: nothing decoded)."""
    documents = Documents.of(documents)
    if not delta.items and not delta.deleted:
        return documents  # nothing changed (a no-op plan of 1,000,000 resources)
    by_key = dict(zip(documents.keys, documents.encoded, strict=True))
    for key in delta.deleted:
        by_key.pop(key, None)
    by_key.update(zip(delta.items.keys, delta.items.encoded, strict=True))
    return Documents(list(by_key), list(by_key.values()))


# --- the cache file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _View:
    identity: str  # the backend and the token's scope
    organization: str | None
    selector: str | None

    def header(self) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, "view": self.identity, "organization": self.organization,
                "selector": self.selector}

    def entry(self) -> Path | None:
        return keyed_entry("exports", self.header())


def _header(entry: Path, view: _View) -> dict[str, Any] | None:
    """The cache file's first line (its revision, database, count) when it is of this view; None otherwise."""
    try:
        with entry.open("rb") as f:
            header = orjson.loads(f.readline(64 * 1024))
    except (OSError, ValueError):
        return None
    return header if _of_view(header, view) else None


def _of_view(header: Any, view: _View) -> TypeGuard[dict[str, Any]]:
    return isinstance(header, dict) and {k: header.get(k) for k in view.header()} == view.header()


def _load(entry: Path, view: _View) -> LiveState | None:
    """The cached export, or None when the file is absent or not to be trusted. Read a block at a time
    (hashed and split as it comes): the texts kept are never beside the whole file's bytes."""
    try:
        with entry.open("rb") as f:
            header = orjson.loads(f.readline(64 * 1024))
            if not _of_view(header, view) or not isinstance(header.get("count"), int):
                return None
            revision, database = header.get("revision"), header.get("database")
            if not isinstance(revision, int) or revision < 0 or not isinstance(database, str):
                return None
            digest = hashlib.sha256()
            documents = Documents()
            if not _append(documents, framing.lines_of(_hashed(f, digest))):
                return None
        if header.get("sha256") != digest.hexdigest() or len(documents) != header["count"]:
            return None
        return LiveState(documents, revision, database)
    except (OSError, ValueError, TypeError, KeyError):
        return None


_BLOCK = 16 * 1024 * 1024


def _hashed(f: Any, digest: Any) -> Iterator[bytes]:
    """The file's blocks, each added to `digest` as it is read."""
    while block := f.read(_BLOCK):
        digest.update(block)
        yield block


def _append(documents: Documents, lines: Iterable[bytes]) -> bool:
    """The body's lines appended to `documents`: a line each, `kind TAB organization TAB name TAB json`
    (the key read without decoding the JSON, which is kept as it is), the last one ended by a newline;
    False when a line is not so."""
    keys, encoded = documents.keys, documents.encoded
    ended = False
    for line in lines:
        if ended:
            return False  # a line after an empty one
        if not line:
            ended = True  # what follows the last newline
            continue
        parts = line.split(b"\t", 3)
        if len(parts) != 4 or not (parts[3].startswith(b"{") and parts[3].endswith(b"}")):
            return False
        kind, organization, name, text = parts
        # Each organization's name one string for all its documents (provider.documents).
        keys.append(ResourceKey(_KINDS.get(kind) or kind.decode(), sys.intern(organization.decode()), name.decode()))
        encoded.append(text)
    return ended


_KINDS = {kind.encode(): kind for kind in KINDS}


def _line(key: ResourceKey, text: bytes) -> bytes:
    fields = (key.kind, key.organization, key.name)
    if any("\t" in f or "\n" in f or "\r" in f for f in fields):
        raise ValueError(f"{key} cannot be written in the export cache")  # not a name the backend gives
    return "\t".join(fields).encode() + b"\t" + text + b"\n"


def _store(entry: Path, view: _View, state: LiveState) -> None:
    """Write the export atomically (a temporary file renamed), a document a line after its key, each as the
    text it was kept in; a cache that cannot be written is no cache. The header line comes first and holds
    the body's SHA-256: written with a placeholder of the same length, then again once known."""
    documents = state.documents
    temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
    try:
        header = {**view.header(), "revision": state.revision, "database": state.database,
                  "count": len(documents)}
        placeholder = orjson.dumps({**header, "sha256": "0" * 64}) + b"\n"
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(temporary, "wb") as out:
            out.write(placeholder)
            for start in range(0, len(documents), _LINES_A_WRITE):
                end = start + _LINES_A_WRITE
                part = b"".join(map(_line, documents.keys[start:end], documents.encoded[start:end]))
                digest.update(part)
                out.write(part)
            out.seek(0)
            out.write(orjson.dumps({**header, "sha256": digest.hexdigest()}) + b"\n")
        os.replace(temporary, entry)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


_LINES_A_WRITE = 1000


__all__ = [
    "CACHE_FORMAT",
    "IncrementalClient",
    "LiveDelta",
    "LiveState",
    "applied",
    "delta_of",
    "read_live",
    "token_scope",
]
