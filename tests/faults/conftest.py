"""Every fault test runs under a time limit (module constant TIME_LIMIT_S, default 120 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.harness import time_limit

DEFAULT_TIME_LIMIT_S = 120.0


@pytest.fixture(autouse=True)
def _bounded_in_time(request: pytest.FixtureRequest) -> Iterator[None]:
    seconds = float(getattr(request.module, "TIME_LIMIT_S", DEFAULT_TIME_LIMIT_S))
    with time_limit(seconds, request.node.nodeid):
        yield
