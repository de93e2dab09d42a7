"""The cache of validated files.

A file that validated without a finding is remembered by the SHA-256 of its text and of the code that
validated it (every module of this package, the table of kinds, pydantic's version): the same bytes read
by the same code give the same documents, so an edit or an upgrade never meets a stale entry. Only
documents are kept (secret *sources*, never values); positions are recomputed from the text when a
message needs them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import orjson
import pydantic

import tenancy_kinds
from provider.manifests.manifest import Manifest
from provider.manifests.positions import prevalidated
from provider.manifests.text import read_text

CACHE_FORMAT = b"tenancy-manifest-cache/1"
_PACKAGE = Path(__file__).resolve().parent


def cache_dir() -> Path | None:
    """$TENANCY_CACHE_DIR, else $XDG_CACHE_HOME/tenancy/manifests (~/.cache/...); None with TENANCY_NO_CACHE."""
    if os.environ.get("TENANCY_NO_CACHE"):
        return None
    configured = os.environ.get("TENANCY_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tenancy" / "manifests"


def keyed_entry(folder: str, header: dict[str, Any]) -> Path | None:
    """The file of `folder` in the cache directory for a view described by `header` (named by the SHA-256 of
    the header, its keys sorted); None without a cache. The export cache and the plan memo keep theirs so."""
    root = cache_dir()
    if root is None:
        return None
    name = hashlib.sha256(orjson.dumps(header, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return root / folder / f"{name}.json"


def entry_for(text: str) -> Path | None:
    """Where the cache keeps the documents of a file with this text; None without a cache."""
    cache = cache_dir()
    if cache is None:
        return None
    key = hashlib.sha256(cache_salt() + text.encode("utf-8", "surrogatepass")).hexdigest()
    return cache / key[:2] / key


@functools.cache
def cache_salt() -> bytes:
    """The validating code's fingerprint: every module of this package (by name and bytes), the table of
    kinds and pydantic's version."""
    digest = hashlib.sha256(CACHE_FORMAT)
    for module in sorted(_PACKAGE.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    for module in sorted(Path(tenancy_kinds.__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    digest.update(pydantic.VERSION.encode())
    return digest.digest()


def cached(entry: Path, text: str | None, file: str, root: Path) -> list[Manifest] | None:
    """The entry's manifests, or None when it is absent, unreadable or not ours (then the file is read);
    positions are read from the file when asked (and only if it still holds `text`, when given)."""
    try:
        return prevalidated(orjson.loads(entry.read_bytes()), text, file, root, on_disk=True)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def store(entry: Path, manifests: list[Manifest], digests: list[str] | None = None) -> None:
    """Write the entry atomically (with the digest of each document's text, when the fast reader gave
    them: `known`); a cache that cannot be written is no cache, never an error."""
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if digests is not None and len(digests) == len(manifests):
            items = [(m.document, m.origin.line, m.origin.col, d) for m, d in zip(manifests, digests, strict=True)]
            data = orjson.dumps(items)
        else:
            data = orjson.dumps([(m.document, m.origin.line, m.origin.col) for m in manifests])
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, entry)
    except (OSError, TypeError):
        return


def known(entry: Path) -> dict[str, dict[str, Any]] | None:
    """The documents of an entry by the digests of their texts (`yaml_fast.chunk_digest`): what an edited
    file held before, to be taken again for the documents it still holds; None when there are none."""
    try:
        data = orjson.loads(entry.read_bytes())
        found = {item[3]: item[0] for item in data if len(item) > 3 and isinstance(item[0], dict)}
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return found or None


# --- the stat index -------------------------------------------------------------------------------

INDEX_FORMAT = "tenancy-stat-index/1"
RACY_NS = 1_000_000_000  # a file changed less than this before the index was written is hashed again
MAX_INDEXED = 200_000


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


class StatIndex:
    """Which cache entry holds each file's documents, by the file's stat (size, mtime, ctime, inode,
    device), as git's index recognises unchanged files of a work tree without reading them.

    The content hash stays the authority: an entry is only trusted when the file's stat is exactly the one
    recorded, and the file was not "racy" (changed within a second of the index being written, when a
    second change may keep the same mtime); a file that is not recognised is read and hashed, and recorded
    again. An index written by other validating code, unreadable or not ours is ignored.
    """

    def __init__(self, path: Path | None, entries: dict[str, list[Any]], written_ns: int) -> None:
        self.path = path
        self.entries = entries
        self.written_ns = written_ns
        self.changed = False

    @classmethod
    def load(cls) -> StatIndex:
        root = cache_dir()
        path = None if root is None else root / "stat-index.json"
        if path is None:
            return cls(None, {}, 0)
        try:
            data = orjson.loads(path.read_bytes())
            if data.get("format") == INDEX_FORMAT and data.get("salt") == cache_salt().hex():
                return cls(path, dict(data["entries"]), int(data["written_ns"]))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass
        return cls(path, {}, 0)

    def entry(self, file: Path) -> Path | None:
        """The cache entry of the file's documents when its stat says it did not change; None otherwise."""
        recorded = self.entries.get(str(file.absolute()))
        if recorded is None:
            return None
        try:
            st = file.stat()
        except OSError:
            return None
        if recorded[:5] != _stat_key(st) or st.st_mtime_ns + RACY_NS > self.written_ns:
            return None
        return self.previous(file)

    def previous(self, file: Path) -> Path | None:
        """The cache entry recorded for the file, whatever its stat now: what it held when last read (a
        hint for reading its new text, never its documents as they are)."""
        recorded = self.entries.get(str(file.absolute()))
        root = cache_dir()
        if recorded is None or root is None or not isinstance(recorded[5], str):
            return None
        key = recorded[5]
        return root / key[:2] / key

    def record(self, file: Path) -> None:
        """Remember the file: its stat first, then the hash of what it holds now (a change in between only
        makes the next run hash it again), when the cache holds documents for that text."""
        try:
            st = file.stat()
        except OSError:
            return
        text, _ = read_text(file)  # what the readers read (never a device or a pipe)
        if text is None:
            return
        entry = entry_for(text)
        if entry is None or not entry.exists():
            return
        self.entries[str(file.absolute())] = [*_stat_key(st), entry.name]
        self.changed = True

    def save(self) -> None:
        """Write the index atomically when it changed; never an error."""
        if self.path is None or not self.changed:
            return
        entries = self.entries if len(self.entries) <= MAX_INDEXED else {}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = {
                "format": INDEX_FORMAT, "salt": cache_salt().hex(), "written_ns": time.time_ns(), "entries": entries,
            }
            temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            temporary.write_bytes(orjson.dumps(data))
            os.replace(temporary, self.path)
        except (OSError, TypeError):
            return
