"""Fixtures of the Pulumi tests (this directory is not a package, so that it never shadows the SDK)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pulumi
import pytest
from pulumi_mocks import RecordingMonitor, TenancyMocks

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `tests` is not a package; make `tests.support` importable
    sys.path.insert(0, str(REPO))

from tests.support import Server, start_server  # noqa: E402


@pytest.fixture
def monitor() -> RecordingMonitor:
    recording = RecordingMonitor(TenancyMocks())
    pulumi.runtime.set_mocks(TenancyMocks(), monitor=recording, preview=False)
    return recording



@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `tenancy serve` on loopback (SQLite), with a root token."""
    db = tmp_path_factory.mktemp("backend") / "tenancy.db"
    running = start_server(f"sqlite:///{db}")
    try:
        yield running
    finally:
        running.stop()
