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
from pathlib import Path

import orjson
import pydantic

import tenancy_kinds
from provider.manifests.manifest import Manifest
from provider.manifests.positions import prevalidated

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


def cached(entry: Path, text: str, file: str, root: Path) -> list[Manifest] | None:
    """The entry's manifests, or None when it is absent, unreadable or not ours (then the file is read)."""
    try:
        return prevalidated(orjson.loads(entry.read_bytes()), text, file, root)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def store(entry: Path, manifests: list[Manifest]) -> None:
    """Write the entry atomically; a cache that cannot be written is no cache, never an error."""
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = orjson.dumps([(m.document, m.origin.line, m.origin.col) for m in manifests])
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, entry)
    except (OSError, TypeError):
        return
