"""Test support: a real `tenancy serve` on loopback, free ports, and throwaway PostgreSQL databases.

    server = start_server("sqlite:///tmp/x.db")     # waits for /healthz, creates a root token
    server.url, server.token, server.db_url
    server.restart(); server.kill(); server.stop()
    with start_server(pg_url()) as server: ...

`pg_url()` creates one fresh database per test session on 127.0.0.1:5432 (user postgres, trust auth),
dropped at exit; if PostgreSQL cannot be reached it raises, so that the tests fail loudly instead of
skipping (run scripts/ensure-postgres.sh).
"""

from __future__ import annotations

import atexit
import contextlib
import http.server
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import requests

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("TENANCY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A `tenancy serve` subprocess; `token` is a root token (legal-representative right included)."""

    db_url: str
    port: int
    rate_limit: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    workers: int = 1
    token: str = ""
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        command = [sys.executable, "-m", "provider.cli", "serve", "--db", self.db_url, "--port", str(self.port)]
        if self.rate_limit:
            command += ["--rate-limit", str(self.rate_limit)]
        if self.workers != 1:
            command += ["--workers", str(self.workers)]
        command += list(self.extra_args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self._log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_healthy()
        if not self.token:
            self.token = create_token(self.db_url, legal_representative=True)
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"tenancy serve exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"tenancy serve did not answer /healthz within {STARTUP_TIMEOUT_S}s:\n{self.output()}")

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> Server:
        """Stop and start again on the same port and database; the token stays valid."""
        self.stop()
        return self.start()

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_server(
    db_url: str,
    *,
    rate_limit: float | None = None,
    env: dict[str, str] | None = None,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
    workers: int = 1,
) -> Server:
    """Start `python -m provider.cli serve` on a free loopback port; returns once /healthz answers."""
    server = Server(db_url, port or free_port(), rate_limit, dict(env or {}), tuple(extra_args), workers)
    return server.start()


def create_token(db_url: str, organization: str | None = None, *, legal_representative: bool = False) -> str:
    """A token made directly on the database (as `tenancy token create` does)."""
    from tenancy_backend.service import Service

    service = Service(db_url)
    try:
        return service.create_token(organization, legal_representative)
    finally:
        service.close()


# --- PostgreSQL -----------------------------------------------------------------------------------

_session_pg: str | None = None


def _admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({e}); the PostgreSQL tests need it: "
            "run scripts/ensure-postgres.sh"
        ) from e


def new_pg_database(prefix: str = "tenancy_test") -> str:
    """A fresh, empty PostgreSQL database (dropped at interpreter exit); its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    atexit.register(drop_pg_database, name)
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(name: str) -> None:
    try:
        with _admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as e:  # noqa: BLE001 - best effort at exit; a leftover database is harmless
        print(f"could not drop test database {name}: {e}", file=sys.stderr)


def pg_url() -> str:
    """The test session's PostgreSQL database (created on first use, dropped at exit)."""
    global _session_pg
    if _session_pg is None:
        _session_pg = new_pg_database()
    return _session_pg


def reset_database(db_url: str) -> None:
    """Empty every table of a migrated tenancy database (fast isolation between tests)."""
    from sqlalchemy import text

    from tenancy_backend.db import RESOURCE_VERSION_COUNTER, create_db_engine

    engine = create_db_engine(db_url)
    tables = ["claims", "refs", "deposits", "idempotency_keys", "tokens", "resources", "changes"]
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(
                text("UPDATE counters SET value = 0 WHERE name IN (:n, 'changes_horizon')"),
                {"n": RESOURCE_VERSION_COUNTER},
            )
            # A new identity: an export cached from the emptied database's revisions must not be completed here.
            conn.execute(text("UPDATE counters SET value = value + 1 WHERE name = 'database_id'"))
    finally:
        engine.dispose()


__all__ = [
    "Server",
    "create_token",
    "free_port",
    "new_pg_database",
    "pg_url",
    "reset_database",
    "start_server",
]


@contextlib.contextmanager
def canned_server(
    body: bytes, status: int = 200, content_type: str = "application/json", headers: Mapping[str, str] | None = None
) -> Iterator[str]:
    """A plain HTTP server on loopback answering every GET with `body`: another backend, or no backend at
    all, where the CLI is pointed. Yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
