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
    """Every document's field positions in one file, read by the full reader on first request: from the text
    given, or from the file. A text read `on_disk` is not kept (at 1,000,000 resources, the texts of the
    files one process reads are 100 MB), only its hash: if the file no longer holds that text when
    positions are asked, there are none (findings point at their documents, not at another text's fields)."""

    def __init__(self, text: str | None, file: str, on_disk: bool = False) -> None:
        self.text = None if on_disk else text  # None: read the file when asked
        self.expected = hash(text) if on_disk and text is not None else None  # the text's hash, when read
        self.file = file
        self.documents: list[dict[FieldPath, Origin]] | None = None

    def document(self, index: int) -> dict[FieldPath, Origin]:
        if self.documents is None:
            text = self.text if self.text is not None else read_text(Path(self.file))[0]
            if self.expected is not None and (text is None or hash(text) != self.expected):
                text = None  # the file changed since it was read
            self.documents = [positions for _, positions in values(text or "", self.file, [])]
            self.text = None
        # The readers agree on the documents of any file the fast paths accept (a property test); a
        # document the full reader does not see would only lose its field positions, not its manifest.
        return self.documents[index] if index < len(self.documents) else {}


def prevalidated(
    documents: Iterable[Sequence[Any]], text: str | None, file: str, root: Path, on_disk: bool = False
) -> list[Manifest]:
    """Manifests for documents already validated (by the fast path, the child process or the cache), as
    (document, line, col) of each root; their field positions are read from `text` (or the file, when the
    text is None or read `on_disk`: `FilePositions`) on demand."""
    lazy = FilePositions(text, file, on_disk)
    manifests = []
    for index, (document, line, col, *_) in enumerate(documents):  # (a cache entry's documents: their digests)
        origin = Origin(file, line, col)
        key, kind = ResourceKey.of(shared(document)), KINDS[document["kind"]]
        manifests.append(Manifest(key, kind, document, origin, root, located=lazy, index=index))
    return manifests
