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
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError(f"{path}: no such file or directory")
        root = path if path.is_dir() else path.parent
        if root not in roots:
            roots.append(root)
        found = _walk(path) if path.is_dir() else ([] if _ignored(path.name) else [path])
        for file in found:
            real = file.resolve()
            if real not in seen:
                seen.add(real)
                files.append((file, root))
    if not roots:
        raise ConfigError("no manifest path given")
    return files, roots


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for current, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        wanted = (n for n in names if n.endswith(SUFFIXES) and not n.startswith(".") and not _ignored(n))
        found.extend(Path(current) / n for n in wanted)
    return sorted(found, key=lambda p: p.relative_to(directory).parts)


def _ignored(name: str) -> bool:
    """Config and other tools' files, never manifests."""
    return name in CONFIG_NAMES or FOREIGN_FILES.fullmatch(name) is not None
