"""Field positions on demand, for manifests read without them (the fast paths, the cache, the child
process): the full reader reads the file's positions once, when a rule or a message first asks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tenancy_kinds import KINDS, ResourceKey
from provider.manifests.manifest import Manifest, Origin, shared
from tenancy_kinds.messages import FieldPath
from provider.manifests.text import read_text
from provider.manifests.yaml_full import values


class FilePositions:
    """Every document's field positions in one file, read by the full reader on first request."""

    def __init__(self, text: str | None, file: str) -> None:
        self.text = text  # None: read the file when asked (it was read by another process)
        self.file = file
        self.documents: list[dict[FieldPath, Origin]] | None = None

    def document(self, index: int) -> dict[FieldPath, Origin]:
        if self.documents is None:
            text = self.text if self.text is not None else read_text(Path(self.file))[0]
            self.documents = [positions for _, positions in values(text or "", self.file, [])]
            self.text = None
        # The readers agree on the documents of any file the fast paths accept (a property test); a
        # document the full reader does not see would only lose its field positions, not its manifest.
        return self.documents[index] if index < len(self.documents) else {}


def prevalidated(documents: Iterable[Sequence[Any]], text: str | None, file: str, root: Path) -> list[Manifest]:
    """Manifests for documents already validated (by the fast path, the child process or the cache), as
    (document, line, col) of each root; their field positions are read from `text` (or the file) on demand."""
    lazy = FilePositions(text, file)
    manifests = []
    for index, (document, line, col, *_) in enumerate(documents):  # (a cache entry's documents: their digests)
        origin = Origin(file, line, col)
        key, kind = ResourceKey.of(shared(document)), KINDS[document["kind"]]
        manifests.append(Manifest(key, kind, document, origin, root, located=lazy, index=index))
    return manifests
