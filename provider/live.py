"""The live state as of one revision, read incrementally: the last export seen is kept in the cache
directory and completed with what changed since its revision (`GET /v1/export?since=REV`).

A cache file is one export of one view: the backend, the token's scope (a SHA-256 of the token, never the
token), the organization and the label selector are its key and are written inside it again; it holds
the revision and database identity the export is the state of, and a SHA-256 of its documents. A file
that is unreadable, of another format, of another view, of another database, whose checksum does not
match, or whose revision the backend cannot continue from (410 Gone, or ahead of the backend) is never
trusted: the whole export is read again and the file rewritten (atomically, by rename). Exports carry no
secret. `TENANCY_NO_CACHE=1` turns the cache off; it lives beside the manifest cache. After an apply, the
read-back's changes complete the cache when they outnumber it (`complete_cache`: a first apply).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import orjson

from provider.errors import BackendError
from provider.manifests.cache import keyed_entry
from tenancy_kinds import ResourceKey, framing

CACHE_FORMAT = "tenancy-export-cache/2"  # /2: the documents a chunk per line
CACHE_CHUNK = 1000  # documents a line
GONE = 410


@dataclass(frozen=True)
class LiveState:
    """The documents of one export and the revision (of database `database`) they are the state of; both
    None when the backend does not say (then nothing is cached)."""

    documents: list[dict[str, Any]]
    revision: int | None = None
    database: str | None = None


@dataclass(frozen=True)
class LiveDelta:
    """What changed from revision `since` to `revision`: documents that may differ, and keys gone."""

    revision: int
    since: int
    database: str
    items: list[dict[str, Any]]
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
    if not (isinstance(items, list) and isinstance(deleted, list)):
        return None
    keys = [ResourceKey(str(d["kind"]), str(d.get("organization") or ""), str(d["name"])) for d in deleted]
    return LiveDelta(revision, since, database, items, keys)


# --- reading through the cache --------------------------------------------------------------------


def read_live(client: Any, organization: str | None = None, label_selector: str | None = None) -> LiveState:
    """The live state: the cached export completed with the changes since its revision, or (no cache, a
    cache not to be trusted, a backend that cannot continue from it) a whole export, then cached."""
    if not hasattr(client, "snapshot"):
        return LiveState(client.export(organization, label_selector))
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


def applied(documents: Iterable[dict[str, Any]], delta: LiveDelta) -> list[dict[str, Any]]:
    """The documents with the delta applied: tombstones removed, changed documents replaced or added."""
    if not delta.items and not delta.deleted:
        return list(documents)  # nothing changed: no key computed (a no-op plan of 100,000 resources)
    by_key = {ResourceKey.of(d): d for d in documents}
    for key in delta.deleted:
        by_key.pop(key, None)
    for document in delta.items:
        by_key[ResourceKey.of(document)] = document
    return list(by_key.values())


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
    """The cached export, or None when the file is absent or not to be trusted."""
    try:
        data = entry.read_bytes()
        newline = data.find(b"\n")
        header = orjson.loads(data[:newline]) if newline >= 0 else None
        if not _of_view(header, view):
            return None
        body = memoryview(data)[newline + 1 :]  # hashed and decoded where it lies: a 1,000,000-export is 560 MB
        if header.get("sha256") != hashlib.sha256(body).hexdigest() or header.get("count") is None:
            return None
        revision, database = header.get("revision"), header.get("database")
        if not isinstance(revision, int) or revision < 0 or not isinstance(database, str):
            return None
        value = framing.loads(data, newline + 1)
        documents = value.get("items") if isinstance(value, dict) else None
        if not isinstance(documents, list) or len(documents) != header["count"]:
            return None
        return LiveState(documents, revision, database)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _store(entry: Path, view: _View, state: LiveState) -> None:
    """Write the export atomically (a temporary file renamed), its documents a chunk per line, never encoded
    whole (tenancy_kinds.framing); a cache that cannot be written is no cache. The header line comes first
    and holds the body's SHA-256: written with a placeholder of the same length, then again once known."""
    try:
        header = {**view.header(), "revision": state.revision, "database": state.database,
                  "count": len(state.documents)}
        placeholder = orjson.dumps({**header, "sha256": "0" * 64}) + b"\n"
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        with open(temporary, "wb") as out:
            out.write(placeholder)
            for part in framing.frame({}, framing.chunks_of(state.documents, CACHE_CHUNK)):
                digest.update(part)
                out.write(part)
            out.seek(0)
            out.write(orjson.dumps({**header, "sha256": digest.hexdigest()}) + b"\n")
        os.replace(temporary, entry)
    except (OSError, TypeError):
        return


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
