"""The caches never change a plan: random interleavings of manifest edits, writes and deletions behind the
stack's back (the API), deposits and applies give the same plan with the manifest cache, its stat index,
the export cache and the plan memo as without any cache, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider import engine, memo
from provider.apply import apply
from provider.manifests.cache import RACY_NS
from provider.embedded import EmbeddedClient
from provider.errors import TenancyError
from provider.render import as_json
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tenancy_kinds import ResourceKey
from tests.e2e.test_convergence import tenant_set
from tests.support import new_pg_database, reset_database

ROOT = Scope.root(legal_representative=True)

edits = st.one_of(
    st.tuples(st.just("manifests"), tenant_set()),  # a new manifest set (resources come and go)
    st.tuples(st.just("touch"), st.none()),  # the same bytes written again: a new stat, the same content
    st.tuples(st.just("relabel"), st.integers(0, 30)),  # a label on one declared document
    st.tuples(st.just("recase"), st.integers(0, 30)),  # a display name's case flipped: the file keeps its size
    st.tuples(st.just("drift"), st.integers(0, 30)),  # a live document changed over the API
    st.tuples(st.just("delete"), st.integers(0, 30)),  # a live resource deleted over the API
    st.tuples(st.just("delete"), st.integers(0, 30)),  # (twice as likely: most deletions are refused)
    st.tuples(st.just("unmanaged"), st.integers(0, 30)),  # a user created over the API, with no stack
    st.tuples(st.just("deposit"), st.integers(0, 1)),
    st.tuples(st.just("apply"), st.none()),
)


@contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _write(directory: Path, docs: list[dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("tenants.yaml", yaml.safe_dump_all(docs, sort_keys=False)), ("tenancy.yaml", "stack: prop\n")):
        file = directory / name
        file.write_text(text)
        stat = file.stat()  # as if written a while ago: the stat index trusts it (nothing is racy)
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**10))
    # The plan memo trusts a file's stat only once its ctime (which no one can set) is a second old.
    time.sleep(RACY_NS / 1e9 + 0.05)


def _plan(directory: Path, client: EmbeddedClient, cache: Path | None) -> Any:
    """The plan's JSON (or the error's words), with the caches in `cache` or with no cache at all."""
    return _prepared(directory, client, cache)[0]


def _prepared(directory: Path, client: EmbeddedClient, cache: Path | None) -> tuple[Any, bool, bool]:
    """The plan's JSON (or the error's words), whether the plan memo answered it, and whether it keeps it."""
    settings_ = {"TENANCY_CACHE_DIR": str(cache), "TENANCY_NO_CACHE": None} if cache else {"TENANCY_NO_CACHE": "1"}
    with _environment(**settings_):
        try:
            prepared = engine.prepare([str(directory)], client, "embedded", stack_option=None)
        except TenancyError as e:
            return f"{type(e).__name__}: {e}", False, False
        return as_json(prepared.plan), prepared.recalled, memo.rememberable(prepared.plan)


def _step(action: str, value: Any, docs: list[dict[str, Any]], directory: Path, client: EmbeddedClient,
          cache: Path) -> list[dict[str, Any]]:
    live = sorted(client.export(), key=lambda d: str(ResourceKey.of(d)))
    users = [d for d in live if d["kind"] == "User"]
    try:
        if action == "manifests":
            docs = value
        elif action == "relabel" and docs:
            target = docs[value % len(docs)]
            target["metadata"]["labels"] = {"tier": f"t{value}"}
        elif action == "recase" and any("displayName" in d["spec"] for d in docs):
            named = [d["spec"] for d in docs if "displayName" in d["spec"]]
            spec = named[value % len(named)]
            spec["displayName"] = spec["displayName"].swapcase()
        elif action == "drift" and users:
            target = users[value % len(users)]
            client.update({**target, "spec": {**target["spec"], "displayName": f"Drifted {value}"}}, None)
        elif action == "delete" and live:
            client.delete(ResourceKey.of(live[value % len(live)]), None)
        elif action == "unmanaged" and live:
            organization = next(d for d in live if d["kind"] == "Organization")["metadata"]["name"]
            client.create({"apiVersion": "tenancy/v1", "kind": "User",
                           "metadata": {"name": f"adhoc{value}", "organization": organization},
                           "spec": {"email": f"adhoc{value}@{organization}.example", "displayName": "Ad Hoc"}})
        elif action == "deposit" and live:
            organizations = [d["metadata"]["name"] for d in live if d["kind"] == "Organization"]
            client.service.deposit(ROOT, organizations[value % len(organizations)], "5.00")
        elif action == "apply":
            with _environment(TENANCY_CACHE_DIR=str(cache), TENANCY_NO_CACHE=None):
                prepared = engine.prepare([str(directory)], client, "embedded", stack_option=None)
                if apply(prepared.plan, client, parallelism=4).ok:
                    engine.remember_applied(prepared, client)  # as `tenancy apply` does: the plan memo
    except TenancyError:
        pass  # a write the backend refuses (a rule, a reference) changes nothing: still a step
    if action in ("manifests", "relabel", "recase", "touch"):
        _write(directory, docs)
    return docs


def _run(db_url: str, first: list[dict[str, Any]], steps: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory, cache = Path(tmp) / "m", Path(tmp) / "cache"
        client = EmbeddedClient(db_url)
        try:
            _write(directory, first)
            docs = first
            assert _plan(directory, client, cache) == _plan(directory, client, None)
            for action, value in steps:
                docs = _step(action, value, docs, directory, client, cache)
                cached, _, kept = _prepared(directory, client, cache)
                assert cached == _plan(directory, client, None), (action, value)
                again, recalled, _ = _prepared(directory, client, cache)  # and again, from warm caches
                assert again == cached
                if isinstance(cached, dict) and not cached["has_changes"] and not cached["costs"]:
                    assert recalled, "nothing changed since a plan without changes: the memo answers"
                if isinstance(cached, dict) and kept:
                    assert recalled, "nothing changed since a whole plan that sends no secret: the memo answers"
        finally:
            client.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=tenant_set(), steps=st.lists(edits, min_size=1, max_size=6))
def test_the_caches_never_change_a_plan_on_sqlite(first: list[dict[str, Any]], steps: list[tuple[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run(f"sqlite:///{tmp}/tenancy.db", first, steps)


@pytest.fixture(scope="module")
def pg() -> str:
    """A PostgreSQL database of this module's own, migrated."""
    url = new_pg_database()
    Service(url).close()
    return url


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(first=tenant_set(), steps=st.lists(edits, min_size=1, max_size=6))
def test_the_caches_never_change_a_plan_on_postgresql(pg: str, first: list[dict[str, Any]],
                                                      steps: list[tuple[str, Any]]) -> None:
    reset_database(pg)  # a new database identity: no cached export of an earlier example applies
    _run(pg, first, steps)
