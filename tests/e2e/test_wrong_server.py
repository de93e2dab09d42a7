"""A backend URL where no tenancy backend answers (another service, a proxy's page, a server gone wrong):
a plan says which server answered what, and the fix; never an internal error, never a password in a URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import canned_server


ANSWERS = {
    "html": (200, "text/html", b"<html><body>It works!</body></html>"),
    "bytes": (200, "application/json", b"\xff\xfe\x00garbage"),
    "a list": (200, "application/json", b"[1, 2, 3]"),
    "null": (200, "application/json", b"null"),
    "items not a list": (200, "application/json", b'{"items": 5, "nextCursor": null}'),
    "deep": (200, "application/json", b"[" * 100_000),
    "cut off": (200, "application/json", b'{"items": ["unterminated'),
    "a 404 page": (404, "text/html", b"<h1>File not found</h1>"),
    "a 500 page": (500, "text/html", b"<h1>Internal Server Error</h1>"),
}


@pytest.fixture
def wrong_server(request: pytest.FixtureRequest) -> Iterator[str]:
    status, content_type, body = ANSWERS[request.param]
    with canned_server(body, status, content_type) as url:
        yield url.replace("http://", "http://alice:hunter2pass@")


@pytest.mark.parametrize("wrong_server", sorted(ANSWERS), indirect=True)
def test_a_server_that_is_no_tenancy_backend_is_named_with_the_fix(wrong_server: str, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    env.update({"TENANCY_BACKEND": wrong_server, "TENANCY_TOKEN": "tok_x", "NO_COLOR": "1", "TENANCY_NO_CACHE": "1"})
    (tmp_path / "org.yaml").write_text(
        "apiVersion: tenancy/v1\nkind: Organization\nmetadata: {name: acme}\n"
        "spec: {displayName: Acme, plan: free, domains: [acme.example]}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "provider.cli", "plan", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "hunter2pass" not in result.stdout + result.stderr
    assert "127.0.0.1" in result.stderr and "TENANCY_BACKEND" in result.stderr, result.stderr
