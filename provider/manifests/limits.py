"""Our limits on what a manifest file may hold: far above any real manifest, far below a bomb."""

from __future__ import annotations

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 100  # levels of lists and mappings in one document
MAX_NODES = 100_000  # values per document, aliases expanded
