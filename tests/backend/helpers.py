"""Assertions shared by the backend tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tenancy_backend.errors import ServiceError


@contextmanager
def refused(status: int, *fragments: str, path: str | None = None) -> Iterator[pytest.ExceptionInfo[ServiceError]]:
    """The block raises a ServiceError with `status`, whose message (or errors) contains every fragment."""
    with pytest.raises(ServiceError) as info:
        yield info
    error = info.value
    text = error.detail + "\n" + "\n".join(f"{e['path']}: {e['message']}" for e in error.errors)
    assert error.status == status, f"expected {status}, got {error.status}: {text}"
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in: {text}"
    if path is not None:
        assert path in [e["path"] for e in error.errors], f"no error at {path!r}: {error.errors}"
