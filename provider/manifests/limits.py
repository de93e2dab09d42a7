"""Our limits on what a manifest file may hold (far above any real manifest, far below a bomb), and the
words that refuse a file past one of them.

Our code enforces them, whichever parser answers first: the file size before any parser runs, nesting
and values in our composer and builder (`yaml_events`, `yaml_full`), which libyaml's or PyYAML's own
limits never pre-empt with other words or at another place; the fast readers decline a file rather than
read past them (tests/foundation/test_limits.py runs each limit through every reader and parser).
"""

from __future__ import annotations

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 100  # levels of lists and mappings in one document
MAX_NODES = 100_000  # values per document, aliases expanded


def file_too_large(size: int | None = None) -> str:
    """A file over MAX_FILE_BYTES, of `size` bytes when known (a file that grew while read is not)."""
    if size is None:
        return f"file is larger than {MAX_FILE_BYTES // 2**20} MiB"
    return f"file is {size / 2**20:.1f} MiB; manifests are limited to {MAX_FILE_BYTES // 2**20} MiB"


def too_deep(through_aliases: bool = False) -> str:
    """A document that nests deeper than MAX_DEPTH, as written or once its aliases are expanded."""
    if through_aliases:
        return f"this document nests deeper than {MAX_DEPTH} levels (through aliases)"
    return f"the YAML nests deeper than {MAX_DEPTH} levels"


def too_many_values(through_aliases: bool = False) -> str:
    """A document of more than MAX_NODES values, as written or once its aliases are expanded."""
    if through_aliases:
        return (f"this document expands to more than {MAX_NODES:,} values (through aliases); refusing to read it: "
                "split it into several documents or repeat fewer aliases")
    return (
        f"this document expands to more than {MAX_NODES:,} values; refusing to read it: split it into several documents"
    )
