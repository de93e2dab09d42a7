"""Many files → their manifests and findings, in order: from the cache where it has them; the rest read
by two processes past `PARALLEL_MIN_FILES` (reading is CPU-bound, and on two cores a forked child reading
the second half of the files halves a 100,000-resource load)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from provider.errors import Finding
from provider.manifests import cache
from provider.manifests.manifest import Manifest, Origin, Source
from provider.manifests.positions import prevalidated
from provider.manifests.read import cached_file, read_file
from tenancy_kinds import framing
from tenancy_kinds.messages import FieldPath

PARALLEL_MIN_FILES = 64  # below this, starting a second process costs more than it saves
_START_METHODS = multiprocessing.get_all_start_methods()


def read_files(
    files: list[tuple[Path, Path]], sources: list[Source] | None = None, keys: dict[str, str] | None = None
) -> list[tuple[list[Manifest], list[Finding]]]:
    """Every file's manifests and findings, in order: from the cache where it has them, the rest read; the
    Blueprints and Tenants are appended to `sources`, in the order of their files, and the key of each
    file's text as read (`cache.entry_for`; by the stat index's record for a file not read) into `keys`."""
    held: list[list[Source]] = [[] for _ in files]
    results: list[tuple[list[Manifest], list[Finding]] | None] = [None] * len(files)
    stats = cache.StatIndex.load() if cache.cache_dir() is not None else None
    unknown = []
    if stats is not None:  # unchanged files are not even read (cache.StatIndex)
        for index, (file, root) in enumerate(files):
            entry = stats.entry(file)
            found = None if entry is None else cache.cached(entry, None, str(file), root)
            if found is not None and entry is not None and keys is not None:
                keys[str(file)] = entry.name
            if found is None:
                unknown.append(index)
                found = cached_file(file, root, keys)
            if found is not None:
                results[index] = (found, [])
    missing = [index for index, found in enumerate(results) if found is None]
    previous = [None if stats is None else stats.previous(files[i][0]) for i in missing]
    reads = _read_many([files[i] for i in missing], [held[i] for i in missing], keys, previous)
    for index, read in zip(missing, reads, strict=True):
        results[index] = read
    if sources is not None:
        sources.extend(s for file_sources in held for s in file_sources)
    if stats is not None:
        for index in unknown:
            stats.record(files[index][0])
        stats.save()
    return [read for read in results if read is not None]


def _read_many(
    files: list[tuple[Path, Path]],
    held: list[list[Source]],
    keys: dict[str, str] | None,
    previous: list[Path | None],
) -> list[tuple[list[Manifest], list[Finding]]]:
    """Every file's manifests and findings, in order (each file's Blueprints and Tenants into `held`, the
    keys of their texts into `keys`; `previous`: the cache entry of what each held before). Many
    files are read by two processes: a forked child reads the second half while this process reads the
    first. Anything unexpected in the child: this process reads its half too."""
    if len(files) < PARALLEL_MIN_FILES or (os.cpu_count() or 1) < 2 or "fork" not in _START_METHODS:
        return [read_file(file, root, held[i], keys, previous[i]) for i, (file, root) in enumerate(files)]
    half = len(files) // 2
    try:
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
        future = pool.submit(_read_plainly, files[half:], previous[half:])
    except Exception:  # noqa: BLE001 - no second process here (a sandbox, a limit): one reads all
        return [read_file(file, root, held[i], keys, previous[i]) for i, (file, root) in enumerate(files)]
    mine = [read_file(file, root, held[i], keys, previous[i]) for i, (file, root) in enumerate(files[:half])]
    try:
        encoded = future.result()
    except Exception:  # noqa: BLE001 - the child broke (killed, out of memory): its half is read here
        rest = enumerate(files[half:], start=half)
        return mine + [read_file(file, root, held[i], keys, previous[i]) for i, (file, root) in rest]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    theirs = []
    for i, ((file, root), read) in enumerate(zip(files[half:], framing.loads(encoded)["items"], strict=False)):
        if read is None:  # a file with findings: read here, where every field keeps its position
            theirs.append(read_file(file, root, held[half + i], keys, previous[half + i]))
            continue
        documents, sources, key = read
        if key is not None and keys is not None:
            keys[str(file)] = key
        held[half + i].extend(_source(value, positions, str(file), root) for value, positions in sources)
        theirs.append((prevalidated(documents, None, str(file), root), []))
    return mine + theirs


def _read_plainly(files: list[tuple[Path, Path]], previous: list[Path | None]) -> bytes:
    """In the child: each file's documents with their root positions, its Blueprints and Tenants with
    their field positions and the key of its text, as JSON a file per line (quicker to hand over than
    pickled Manifests, and decoded a line at a time: tenancy_kinds.framing); None for a file with findings,
    which the parent reads again to word them."""
    out: list[Any] = []
    for (file, root), before in zip(files, previous, strict=True):
        sources: list[Source] = []
        keys: dict[str, str] = {}
        manifests, findings = read_file(file, root, sources, keys, before)
        if findings:
            out.append(None)
            continue
        documents = [(m.document, m.origin.line, m.origin.col) for m in manifests]
        held = [(s.value, [(list(path), o.line, o.col) for path, o in s.positions.items()]) for s in sources]
        out.append((documents, held, keys.get(str(file))))
    return b"".join(framing.frame({}, (orjson.dumps(read) for read in out)))


def _source(value: dict[str, Any], positions: list[Any], file: str, root: Path) -> Source:
    """A Blueprint or Tenant handed over by the child (its positions as [path, line, col])."""
    located: dict[FieldPath, Origin] = {}
    for path, line, col in positions:
        located[tuple(path)] = Origin(file, line, col)
    return Source(value["kind"], value, located, root)
