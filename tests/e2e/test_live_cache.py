"""The export cache against a real `tenancy serve` on loopback: a warm cache is completed with `?since=`,
and a corrupted, stale or foreign cache file is detected and rebuilt, never trusted."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from sqlalchemy import text

from provider.client import HttpClient
from provider.live import LiveDelta, LiveState, read_live
from tenancy_backend.db import create_db_engine
from tenancy_kinds import ResourceKey, framing
from tests.builders import org, user
from tests.support import Server, canned_server, create_token, start_server


class CountingClient(HttpClient):
    """The real HTTP client, counting whole exports and incremental ones."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.whole = 0
        self.incremental = 0

    def snapshot(self, organization: str | None = None, label_selector: str | None = None) -> LiveState:
        self.whole += 1
        return super().snapshot(organization, label_selector)

    def changes(
        self, since: int, organization: str | None = None, label_selector: str | None = None
    ) -> LiveDelta | None:
        self.incremental += 1
        return super().changes(since, organization, label_selector)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("live-cache") / "tenancy.db"
    with start_server(f"sqlite:///{db}") as srv:
        client = HttpClient(srv.url, srv.token)
        client.create(org("acme"))
        client.create(org("umbrella"))
        client.create(user("acme", "ann"))
        yield srv


@pytest.fixture
def cache(cache_home: Path) -> Path:
    return cache_home / "exports"


def _client(server: Server, token: str | None = None) -> CountingClient:
    return CountingClient(server.url, token or server.token)


def _by_key(documents: list[dict[str, Any]]) -> dict[ResourceKey, dict[str, Any]]:
    return {ResourceKey.of(d): d for d in documents}


def _only_file(cache: Path) -> Path:
    files = list(cache.glob("*.json"))
    assert len(files) == 1, files
    return files[0]


def _header(file: Path) -> dict[str, Any]:
    return orjson.loads(file.read_bytes().partition(b"\n")[0])  # type: ignore[no-any-return]


def _rewrite_header(file: Path, **changes: Any) -> None:
    first, _, body = file.read_bytes().partition(b"\n")
    file.write_bytes(orjson.dumps({**orjson.loads(first), **changes}) + b"\n" + body)


def _rewrite_body(file: Path, change: Any) -> None:
    """The body changed by `change` and its checksum made to match: only the layout can tell."""
    first, _, body = file.read_bytes().partition(b"\n")
    body = change(body)
    header = {**orjson.loads(first), "sha256": hashlib.sha256(body).hexdigest()}
    file.write_bytes(orjson.dumps(header) + b"\n" + body)


def _assert_rebuilt(client: CountingClient, cache: Path, state: LiveState) -> None:
    whole = client.snapshot()
    assert _by_key(state.documents) == _by_key(whole.documents) and state.revision == whole.revision
    header = _header(_only_file(cache))
    assert header["revision"] == whole.revision and header["count"] == len(whole.documents)


def test_a_warm_cache_reads_only_what_changed(server: Server, cache: Path) -> None:
    client = _client(server)
    first = read_live(client)
    assert (client.whole, client.incremental) == (1, 0)
    client.create(user("acme", "warm-1"))
    client.delete(ResourceKey("User", "acme", "warm-1"), None)
    client.create(user("umbrella", "warm-2"))
    second = read_live(client)
    assert (client.whole, client.incremental) == (1, 1)
    assert second.revision is not None and first.revision is not None and second.revision > first.revision
    assert _by_key(second.documents) == _by_key(client.snapshot().documents)
    again = read_live(client)
    assert again.revision == second.revision and (client.incremental, client.whole) == (2, 2)
    file = _only_file(cache)
    assert server.token not in file.read_text() and _header(file)["view"].endswith(
        hashlib.sha256(server.token.encode()).hexdigest()
    )


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: f.write_bytes(f.read_bytes()[:-7]),  # truncated
        lambda f: f.write_bytes(f.read_bytes().replace(b'"ann"', b'"bob"')),  # a document changed
        lambda f: f.write_bytes(b"not json\n[]"),
        lambda f: f.write_bytes(b""),
        lambda f: _rewrite_header(f, format="tenancy-export-cache/0"),
        lambda f: _rewrite_header(f, count=1),
        lambda f: _rewrite_body(f, lambda body: body.replace(b"\t", b" ", 1)),  # a line without its key
        lambda f: _rewrite_body(f, lambda body: body + b"User\tacme\tann\tnot json\n"),
    ],
    ids=["truncated", "edited", "garbage", "empty", "format", "count", "keyless", "not-a-document"],
)
def test_a_corrupted_cache_is_rebuilt(server: Server, cache: Path, damage: Any) -> None:
    client = _client(server)
    read_live(client)
    damage(_only_file(cache))
    state = read_live(client)
    assert client.incremental == 0 and client.whole == 2  # not trusted: read whole again
    _assert_rebuilt(client, cache, state)


def test_a_cache_ahead_of_the_backend_is_gone_and_rebuilt(server: Server, cache: Path) -> None:
    """A cache from a database restored to an earlier point: the backend answers 410 and it is rebuilt."""
    client = _client(server)
    first = read_live(client)
    assert first.revision is not None
    _rewrite_header(_only_file(cache), revision=first.revision + 1000)
    state = read_live(client)
    assert client.incremental == 1 and client.whole == 2
    _assert_rebuilt(client, cache, state)


def test_a_cache_of_another_database_is_rebuilt(server: Server, cache: Path) -> None:
    client = _client(server)
    read_live(client)
    _rewrite_header(_only_file(cache), database="12345")
    client.create(user("acme", "other-db"))
    state = read_live(client)
    assert client.whole == 2
    _assert_rebuilt(client, cache, state)


def test_a_cache_of_another_view_is_never_used(server: Server, cache: Path) -> None:
    """A file of one token's view put where another token's view is kept: its header names the other view."""
    root = _client(server)
    read_live(root)
    root_file = _only_file(cache)
    scoped = _client(server, create_token(server.db_url, "umbrella"))
    read_live(scoped)
    scoped_file = next(f for f in cache.glob("*.json") if f != root_file)
    scoped_file.write_bytes(root_file.read_bytes())  # every organization, where only umbrella's belong
    state = read_live(scoped)
    assert scoped.whole == 2
    assert {ResourceKey.of(d).organization or ResourceKey.of(d).name for d in state.documents} == {"umbrella"}


def test_a_revision_older_than_the_log_is_410_over_http_and_the_cache_is_rebuilt(server: Server, cache: Path) -> None:
    client = _client(server)
    first = read_live(client)
    assert first.revision is not None
    client.create(user("acme", "pruned"))
    engine = create_db_engine(server.db_url)  # as if the log had been pruned past the cached revision
    with engine.begin() as conn:
        conn.execute(text("UPDATE counters SET value = :v WHERE name = 'changes_horizon'"), {"v": first.revision + 1})
    engine.dispose()
    answer = requests.get(f"{server.url}/v1/export", params={"since": first.revision},
                          headers={"Authorization": f"Bearer {server.token}"}, timeout=30)
    assert answer.status_code == 410 and answer.headers["content-type"].startswith("application/problem+json")
    assert "read the whole export" in answer.json()["detail"]
    state = read_live(client)
    assert client.incremental == 1 and client.whole == 2
    _assert_rebuilt(client, cache, state)
    assert ResourceKey("User", "acme", "pruned") in _by_key(state.documents)
    later = read_live(client)  # continued from the rebuilt cache, past the horizon
    assert client.incremental == 2 and later.revision == state.revision


def test_the_full_export_says_its_revision_and_keeps_its_shape(server: Server) -> None:
    answer = requests.get(f"{server.url}/v1/export", headers={"Authorization": f"Bearer {server.token}"}, timeout=30)
    assert answer.status_code == 200 and set(answer.json()) == {"items"}
    revision = int(answer.headers["X-Tenancy-Revision"])
    since = requests.get(f"{server.url}/v1/export", params={"since": revision},
                         headers={"Authorization": f"Bearer {server.token}"}, timeout=30)
    body = since.json()
    assert body["items"] == [] and body["deleted"] == []
    assert body["revision"] == revision == int(since.headers["X-Tenancy-Revision"])


def test_exports_lay_their_items_a_chunk_per_line(server: Server) -> None:
    """So that a reader decodes a million documents a chunk at a time (tenancy_kinds.framing), never whole."""
    headers = {"Authorization": f"Bearer {server.token}"}
    whole = requests.get(f"{server.url}/v1/export", headers=headers, timeout=30).content
    lines = whole.split(b"\n")
    assert lines[0] == b'{"items":[' and lines[-1] == b"]}" and len(lines) == 3
    revision = int(requests.get(f"{server.url}/v1/export", headers=headers, timeout=30).headers["X-Tenancy-Revision"])
    HttpClient(server.url, server.token).create(user("acme", "framed"))
    since = requests.get(f"{server.url}/v1/export", params={"since": revision}, headers=headers, timeout=30).content
    head, chunk, close = since.split(b"\n")
    assert head.startswith(b'{"revision":') and head.endswith(b'"items":[') and close == b"]}"
    assert "framed" in [d["metadata"]["name"] for d in orjson.loads(b"[" + chunk + b"]")]  # and its organization
    for body in (whole, since):
        assert framing.loads(body) == orjson.loads(body)


def test_the_cache_file_holds_a_document_a_line_after_its_key(server: Server, cache: Path) -> None:
    """Read back without decoding a document (the key comes first) and without the whole file in memory;
    each document is the JSON the backend sent."""
    client = _client(server)
    state = read_live(client)
    header_line, _, body = _only_file(cache).read_bytes().partition(b"\n")
    lines = body.split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == len(state.documents) == _header(_only_file(cache))["count"]
    for line, document in zip(lines, state.documents, strict=False):
        kind, organization, name, text = line.split(b"\t", 3)
        assert ResourceKey(kind.decode(), organization.decode(), name.decode()) == ResourceKey.of(document)
        assert orjson.loads(text) == document
    assert orjson.loads(header_line)["sha256"] == hashlib.sha256(body).hexdigest()
    assert _by_key(read_live(client).documents) == _by_key(state.documents) and client.whole == 1


def test_no_cache_with_tenancy_no_cache(server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANCY_NO_CACHE", "1")
    client = _client(server)
    read_live(client)
    read_live(client)
    assert client.whole == 2 and client.incremental == 0 and not cache.exists()


def test_the_json_plan_says_the_revision_it_was_computed_against(server: Server, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    manifests = tmp_path / "m.yaml"
    manifests.write_text(json.dumps(org("newco", plan="free")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    env.update(TENANCY_BACKEND=server.url, TENANCY_TOKEN=server.token, TENANCY_CACHE_DIR=str(tmp_path / "c"))
    plans = []
    for _ in range(2):  # cold, then from the cache
        out = subprocess.run([sys.executable, "-m", "provider.cli", "plan", str(manifests), "--json"],
                             env=env, capture_output=True, text=True, timeout=120, check=True).stdout
        plans.append(json.loads(out))
    revision = int(requests.get(f"{server.url}/v1/export", headers={"Authorization": f"Bearer {server.token}"},
                                timeout=30).headers["X-Tenancy-Revision"])
    assert plans[0]["live_revision"] == plans[1]["live_revision"] == revision
    assert plans[0] == plans[1]


def _foreign_backend(body: bytes) -> contextlib.AbstractContextManager[str]:
    """A plain HTTP server answering every GET with `body` as an export (another backend's layout)."""
    return canned_server(body, headers={"X-Tenancy-Revision": "7", "X-Tenancy-Database": "foreign"})


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "pretty-printed"])
def test_an_export_laid_out_otherwise_is_read_whole(indent: int | None) -> None:
    """The client streams an export a line at a time; a body laid out otherwise (compact on one line, or
    pretty-printed, which begins like a framed one) is read again, whole, and gives the same documents."""
    documents = [org("acme"), user("acme", "ann"), user("acme", "bob")]
    body = json.dumps({"items": documents}, indent=indent).encode()
    with _foreign_backend(body) as url:
        state = HttpClient(url, "token").snapshot()
        assert list(state.documents) == documents and (state.revision, state.database) == (7, "foreign")
