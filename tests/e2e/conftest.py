"""End-to-end fixtures: the real `tenancy` command against a real backend (HTTP on loopback, or embedded)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from provider.client import Client
from provider.connect import connect

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


@dataclass
class Backend:
    """Where the CLI points: its environment, and a client to look or meddle behind its back."""

    name: str
    env: dict[str, str]
    cwd: Path

    def client(self) -> Client:
        return connect(self.env["TENANCY_BACKEND"], self.env.get("TENANCY_TOKEN"))

    def tenancy(self, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
        full_env.update(self.env)
        full_env.update(env or {})
        full_env["NO_COLOR"] = "1"
        proc = subprocess.run(
            [sys.executable, "-m", "provider.cli", *args],
            cwd=self.cwd, env=full_env, capture_output=True, text=True, input=input, timeout=300,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@contextmanager
def running_backend(how: str, where: Path, **env: str) -> Iterator[Backend]:
    """A SQLite file in `where`, used `embedded` by the CLI or through `tenancy serve` on loopback (`http`);
    `env` is added to the CLI's environment."""
    db = f"sqlite:///{where / 'tenancy.db'}"
    if how == "embedded":
        yield Backend("embedded", {"TENANCY_BACKEND": db, **env}, where)
        return
    from tests.support import start_server

    server = start_server(db)
    try:
        yield Backend("http", {"TENANCY_BACKEND": server.url, "TENANCY_TOKEN": server.token, **env}, where)
    finally:
        server.stop()


@pytest.fixture(params=["embedded", "http"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    with running_backend(request.param, tmp_path) as running:
        yield running


@pytest.fixture
def embedded(tmp_path: Path) -> Backend:
    return Backend("embedded", {"TENANCY_BACKEND": f"sqlite:///{tmp_path / 'tenancy.db'}"}, tmp_path)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of the test's own for in-process plans (the manifest cache, exports, plan memos)."""
    monkeypatch.setenv("TENANCY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TENANCY_NO_CACHE", raising=False)
    return tmp_path / "cache"
