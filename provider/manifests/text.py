"""A file's text, within our size limit, or a finding saying why it cannot be read."""

from __future__ import annotations

import stat
from pathlib import Path

from provider.errors import Finding, Severity
from provider.manifests.limits import MAX_FILE_BYTES, file_too_large


def read_text(file: Path) -> tuple[str | None, list[Finding]]:
    """The file's text (UTF-8, a BOM dropped), or None and a finding saying why it cannot be read."""

    def problem(message: str, line: int = 1) -> tuple[None, list[Finding]]:
        return None, [Finding(str(file), line, 1, Severity.ERROR, message)]

    try:
        st = file.stat()
        if not stat.S_ISREG(st.st_mode):  # a device (/dev/zero: endless), a FIFO (waits forever), a socket
            return problem("not a regular file (a device, a pipe or a socket, perhaps through a link): "
                           "a manifest is a file of text; remove it, or point the link at a file")
        if st.st_size > MAX_FILE_BYTES:
            return problem(file_too_large(st.st_size))
        with file.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # never more than the limit, whatever the file does meanwhile
    except OSError as e:
        return problem(f"cannot read the file ({e.strerror or type(e).__name__})")
    if len(data) > MAX_FILE_BYTES:  # it grew since the stat
        return problem(file_too_large())
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return problem(f"the file is not UTF-8 text (invalid byte at offset {e.start})", line)
