"""Which files are manifests: YAML under the given paths, without config files and other tools' YAML."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from provider.errors import ConfigError

SUFFIXES = (".yaml", ".yml")
CONFIG_NAMES = ("tenancy.yaml", "tenancy.yml")
# Other tools' YAML that lives beside manifests: a Pulumi project reading these manifests through
# `provider.pulumi.from_manifests` has its Pulumi.yaml and Pulumi.<stack>.yaml in the same directory.
FOREIGN_FILES = re.compile(r"Pulumi(\.[^/]+)?\.ya?ml")


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """The manifest files under `paths` as (file, root) pairs, and the roots: directories as given, or a
    file argument's directory. Directories are read recursively and sorted; hidden entries are skipped
    (a repository's .github/ holds YAML that is not ours), and so are the tenancy.yaml config files and
    Pulumi's project and stack files (Pulumi.yaml, Pulumi.<stack>.yaml)."""
    files: list[tuple[Path, Path]] = []
    roots: list[Path] = []
    seen: set[str] = set()  # real paths: a file named twice (or through a link) is read once
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError(f"{path}: no such file or directory")
        root = path if path.is_dir() else path.parent
        if root not in roots:
            roots.append(root)
        found = _walk(path) if path.is_dir() else ([] if _ignored(path.name) else [(path, str(path.resolve()))])
        for file, real in found:
            if real not in seen:
                seen.add(real)
                files.append((file, root))
    if not roots:
        raise ConfigError("no manifest path given")
    return files, roots


def _walk(directory: Path) -> list[tuple[Path, str]]:
    """The manifest files under `directory` with their real paths, sorted by their path's parts. As
    `os.walk` does: symbolic links to directories are not followed, unreadable directories are skipped.
    A file's real path is the directory's own joined with the file's (one `resolve()` per walk, not per
    file: for 10,000 files that was a second of system calls), or resolved when the file is a link."""
    real_root = str(directory.resolve())
    found: list[tuple[tuple[str, ...], Path, str]] = []
    pending: list[tuple[tuple[str, ...], str]] = [((), str(directory))]
    while pending:
        parts, current = pending.pop()
        try:
            with os.scandir(current) as scan:
                entries = list(scan)
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.is_symlink():
                    pending.append(((*parts, name), entry.path))
                continue
            if name.endswith(SUFFIXES) and not _ignored(name):
                relative = os.path.join(*parts, name)
                real = str(Path(entry.path).resolve()) if entry.is_symlink() else os.path.join(real_root, relative)
                found.append(((*parts, name), Path(entry.path), real))
    found.sort(key=lambda item: item[0])
    return [(file, real) for _, file, real in found]


def _ignored(name: str) -> bool:
    """Config and other tools' files, never manifests."""
    return name in CONFIG_NAMES or FOREIGN_FILES.fullmatch(name) is not None
