"""The plan memo against a real `tenancy serve` on loopback: a plan of unchanged manifests against an
unchanged backend is answered from the memo without reading the export, and so is the apply right after
a plan with changes; any change it was computed from (a write over the API, an edited file, a secret,
the view) is seen; a memo that is not ours is ignored; the memo never holds a secret."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from provider import engine
from provider.apply import apply
from provider.errors import ManifestError
from provider.manifests.cache import RACY_NS
from provider.render import as_json
from provider.targeting import Selection
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tenancy_kinds import ResourceKey
from tests.builders import org, user
from tests.e2e.conftest import running_backend
from tests.e2e.test_live_cache import CountingClient
from tests.support import Server, start_server

STRONG = "correct-horse-battery-staple-42"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with start_server(f"sqlite:///{tmp_path / 'tenancy.db'}") as srv:
        yield srv


@pytest.fixture
def cache(cache_home: Path) -> Path:
    return cache_home / "plans"


def _documents(password: bool = False) -> list[dict[str, Any]]:
    ann = user("acme", "ann", role="administrator")
    if password:
        ann["spec"]["password"] = {"fromEnv": "ANN_PASSWORD"}
    return [org("acme"), ann, user("acme", "bob")]


def _write(directory: Path, documents: list[dict[str, Any]], settle: bool = True) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "tenancy.yaml").write_text("stack: memo\n")
    (directory / "acme.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    if settle:  # the memo trusts a file's stat once its ctime is a second old (a racy file is not remembered)
        time.sleep(RACY_NS / 1e9 + 0.05)


def _prepare(directory: Path, client: CountingClient, **options: Any) -> engine.Prepared:
    return engine.prepare([str(directory)], client, "http", stack_option=None, **options)


def _recalled(prepared: engine.Prepared) -> bool:
    return prepared.recalled


def _applied(directory: Path, server: Server) -> None:
    client = CountingClient(server.url, server.token)
    prepared = _prepare(directory, client)
    assert apply(prepared.plan, client).ok
    engine.remember_applied(prepared, client)


def test_a_plan_of_nothing_changed_is_answered_from_the_memo_without_reading_the_export(
    tmp_path: Path, server: Server, cache: Path
) -> None:
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    client = CountingClient(server.url, server.token)
    recalled = _prepare(directory, client)
    assert _recalled(recalled), "right after an apply that applied everything, the next plan is remembered"
    assert (client.whole, client.incremental) == (0, 1)  # one `?since=` that says nothing changed
    without = CountingClient(server.url, server.token)
    os.environ["TENANCY_NO_CACHE"] = "1"
    try:
        computed = _prepare(directory, without)
    finally:
        del os.environ["TENANCY_NO_CACHE"]
    assert not _recalled(computed) and without.whole == 1
    assert as_json(recalled.plan) == as_json(computed.plan)
    assert not recalled.plan.has_changes and recalled.plan.live_revision == computed.plan.live_revision


def test_a_write_behind_the_stacks_back_is_seen(tmp_path: Path, server: Server, cache: Path) -> None:
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    client = CountingClient(server.url, server.token)
    _drift(client)
    prepared = _prepare(directory, client)
    assert not _recalled(prepared)
    assert [str(op.key) for op in prepared.plan.operations] == ["User acme/bob"]


def test_an_edited_manifest_is_seen_even_within_the_same_second(tmp_path: Path, server: Server, cache: Path) -> None:
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    documents = _documents()
    documents[2]["spec"]["displayName"] = documents[2]["spec"]["displayName"].swapcase()  # same size
    _write(directory, documents, settle=False)
    client = CountingClient(server.url, server.token)
    first = _prepare(directory, client)
    assert not _recalled(first) and [str(op.key) for op in first.plan.operations] == ["User acme/bob"]
    _write(directory, _documents(), settle=False)  # back as applied, within the second: racy, not remembered
    second = _prepare(directory, client)
    assert not _recalled(second) and not second.plan.has_changes
    third = _prepare(directory, client)
    assert not _recalled(third), "a file changed within the last second is never remembered by its stat"


def test_a_changed_secret_is_seen_and_the_memo_holds_none(
    tmp_path: Path, server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "m"
    monkeypatch.setenv("ANN_PASSWORD", STRONG)
    _write(directory, _documents(password=True))
    _applied(directory, server)
    client = CountingClient(server.url, server.token)
    assert _recalled(_prepare(directory, client))
    (memo,) = cache.glob("*.json")
    assert STRONG.encode() not in memo.read_bytes()
    monkeypatch.setenv("ANN_PASSWORD", "password")  # weak now: an error the memo must not hide
    with pytest.raises(ManifestError, match="ANN_PASSWORD is weak"):
        _prepare(directory, client)
    monkeypatch.delenv("ANN_PASSWORD")
    with pytest.raises(ManifestError, match="ANN_PASSWORD is not set"):
        _prepare(directory, client)
    monkeypatch.setenv("ANN_PASSWORD", STRONG[::-1])  # another strong one: judged again, not recalled
    assert not _recalled(_prepare(directory, client))


def test_a_memo_not_ours_is_never_trusted(tmp_path: Path, server: Server, cache: Path) -> None:
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    (memo,) = cache.glob("*.json")
    good = memo.read_bytes()
    client = CountingClient(server.url, server.token)
    _drift(client)
    fields = orjson.loads(good)
    for broken in (
        b"not json",
        good[: len(good) // 2],
        orjson.dumps({**fields, "format": "tenancy-plan-memo/0"}),
        orjson.dumps({**fields, "key": "0" * 64}),
        orjson.dumps({**fields, "database": "another-database"}),
        orjson.dumps({**fields, "revision": 10**9}),  # ahead of the backend
        orjson.dumps({**fields, "secrets": {**fields["secrets"], "salt": "not hex"}}),
        orjson.dumps({**fields, "secrets": {**fields["secrets"], "inputs": "not a list of pairs"}}),
        orjson.dumps({**fields, "plan": {**fields["plan"], "warnings": [1, 2]}}),
        orjson.dumps({**fields, "plan": None}),
    ):
        memo.write_bytes(broken)
        prepared = _prepare(directory, client)
        assert not _recalled(prepared), broken[:80]
        assert [str(op.key) for op in prepared.plan.operations] == ["User acme/bob"]


def _renamed(directory: Path) -> None:
    """Bob renamed in the manifests (settled: the memo may trust the file's stat)."""
    documents = _documents()
    documents[2]["spec"]["displayName"] = "Robert Example"
    _write(directory, documents)


def _planned_a_rename(tmp_path: Path, server: Server) -> tuple[Path, CountingClient]:
    """The manifests applied, then bob renamed in them and planned once (the plan the memo may keep)."""
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    _renamed(directory)
    client = CountingClient(server.url, server.token)
    planned = _prepare(directory, client)
    assert not _recalled(planned) and [str(op.key) for op in planned.plan.operations] == ["User acme/bob"]
    return directory, client


def _uncached(directory: Path, server: Server) -> engine.Prepared:
    os.environ["TENANCY_NO_CACHE"] = "1"
    try:
        return _prepare(directory, CountingClient(server.url, server.token))
    finally:
        del os.environ["TENANCY_NO_CACHE"]


def test_the_apply_right_after_a_plan_with_changes_answers_from_the_memo(
    tmp_path: Path, server: Server, cache: Path
) -> None:
    directory, client = _planned_a_rename(tmp_path, server)
    planned = _prepare(directory, client, recall=False)
    recalled = _prepare(directory, client)  # what `tenancy apply` does right after `tenancy plan`
    assert _recalled(recalled), "nothing changed since a whole plan of one change: the memo answers"
    computed = _uncached(directory, server)
    assert as_json(recalled.plan) == as_json(planned.plan) == as_json(computed.plan)
    assert recalled.plan.live_revision == computed.plan.live_revision
    assert apply(recalled.plan, client).ok
    engine.remember_applied(recalled, client)
    bob = client.get(ResourceKey("User", "acme", "bob"))
    assert bob is not None and bob["spec"]["displayName"] == "Robert Example"
    after = _prepare(directory, client)
    assert _recalled(after) and not after.plan.has_changes, "the recalled plan's apply remembers what follows"
    assert as_json(after.plan) == as_json(_uncached(directory, server).plan)


def test_a_manifest_edited_just_before_the_plan_is_recognised_by_the_text_the_plan_read(
    tmp_path: Path, server: Server, cache: Path
) -> None:
    """A manifest written within a second of the plan (as a generator, a checkout or an editor's save does
    right before `tenancy plan`) cannot be told by its stat; the memo keeps the hash of the text the plan
    read from it, and the apply right after answers from the memo when the file holds that text still."""
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    documents = _documents()
    documents[2]["spec"]["displayName"] = "Robert Example"
    _write_racy(directory, documents)
    client = CountingClient(server.url, server.token)
    planned = _prepare(directory, client)
    assert not _recalled(planned) and [str(op.key) for op in planned.plan.operations] == ["User acme/bob"]
    recalled = _prepare(directory, client)  # `tenancy apply` at once: the file is still racy
    assert _recalled(recalled), "the file holds the text the plan read: the memo answers"
    assert as_json(recalled.plan) == as_json(planned.plan) == as_json(_uncached(directory, server).plan)
    documents[2]["spec"]["displayName"] = "Bobby Example"
    _write_racy(directory, documents)
    edited = _prepare(directory, client)
    assert not _recalled(edited), "another text: the plan is computed again"
    assert edited.plan.operations[0].desired is not None
    assert edited.plan.operations[0].desired["spec"]["displayName"] == "Bobby Example"


def test_a_touched_or_checked_out_manifest_is_recognised_by_its_text(
    tmp_path: Path, server: Server, cache: Path
) -> None:
    """A manifest whose stat moved and whose text did not (touched; removed and written again, as a checkout
    does) is read and hashed, and the memo answers."""
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    client = CountingClient(server.url, server.token)
    manifest = directory / "acme.yaml"
    os.utime(manifest, ns=(time.time_ns() - 5 * RACY_NS, time.time_ns() - 5 * RACY_NS))
    touched = _prepare(directory, client)
    assert _recalled(touched) and not touched.plan.has_changes
    text = manifest.read_text()
    manifest.unlink()
    manifest.write_text(text)
    checked_out = _prepare(directory, client)
    assert _recalled(checked_out) and not checked_out.plan.has_changes
    assert as_json(checked_out.plan) == as_json(_uncached(directory, server).plan)


def _write_racy(directory: Path, documents: list[dict[str, Any]]) -> None:
    """The manifest only (tenancy.yaml stays settled), with no time to settle."""
    (directory / "acme.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))


def test_the_read_back_after_an_apply_tells_a_recounted_status_from_a_write(
    tmp_path: Path, server: Server, cache: Path
) -> None:
    """What the backend counts again (the organization's users, a deposit on its balance) is no change; a
    write or a deletion by someone else between an apply and its read-back is, and is planned."""
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    client = CountingClient(server.url, server.token)
    behind_the_back: list[tuple[Callable[[], object], list[str]]] = [
        (lambda: _deposit(tmp_path), []),
        (lambda: _rename(client, "ann", "Anne"), ["User acme/ann"]),
        (lambda: client.delete(ResourceKey("User", "acme", "ann"), None), ["User acme/ann"]),
    ]
    for round_, (write, expected) in enumerate(behind_the_back):
        documents = _documents()
        documents[2]["spec"]["displayName"] = f"Bob, round {round_}"
        _write(directory, documents)
        prepared = _prepare(directory, client)
        assert [str(op.key) for op in prepared.plan.operations] == ["User acme/bob"]
        assert apply(prepared.plan, client).ok
        write()  # after the apply, before its read-back
        engine.remember_applied(prepared, client)
        after = _prepare(directory, client)
        assert _recalled(after) == (not expected), expected
        assert [str(op.key) for op in after.plan.operations] == expected
        assert as_json(after.plan) == as_json(_uncached(directory, server).plan)
        assert apply(after.plan, client).ok


def test_the_read_back_after_a_large_apply_completes_the_export_cache(
    tmp_path: Path, server: Server, cache_home: Path
) -> None:
    """The apply's read-back has what changed since the plan's revision in hand: when that holds at least as
    many documents as the cached export (a first apply), the cache is completed with it, so that the next
    plan in full reads only what changed after the apply. A small apply leaves the cache to that plan."""
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    client = CountingClient(server.url, server.token)
    now = client.snapshot()
    (export,) = (cache_home / "exports").glob("*.json")
    header = orjson.loads(export.read_bytes().partition(b"\n")[0])
    assert (header["revision"], header["count"]) == (now.revision, len(now.documents)) == (now.revision, 3)
    documents = _documents()
    documents[2]["spec"]["displayName"] = "Robert Example"
    _write(directory, documents)
    _applied(directory, server)  # one update: the plan before it stored the export it read
    assert orjson.loads(export.read_bytes().partition(b"\n")[0])["revision"] == now.revision
    after = _prepare(directory, CountingClient(server.url, server.token), recall=False)
    assert not after.plan.has_changes and after.plan.live_revision == client.snapshot().revision


def _deposit(tmp_path: Path) -> None:
    service = Service(f"sqlite:///{tmp_path / 'tenancy.db'}")
    try:
        service.deposit(Scope.root(), "acme", "5.00")
    finally:
        service.close()


def _rename(client: CountingClient, name: str, display_name: str) -> None:
    document = client.get(ResourceKey("User", "acme", name))
    assert document is not None
    client.update({**document, "spec": {**document["spec"], "displayName": display_name}}, None)


def test_a_plan_with_changes_is_not_recalled_once_the_backend_moved(
    tmp_path: Path, server: Server, cache: Path
) -> None:
    directory, client = _planned_a_rename(tmp_path, server)
    _rename(client, "ann", "Anne")
    moved = _prepare(directory, client)
    assert not _recalled(moved)
    assert [str(op.key) for op in moved.plan.operations] == ["User acme/ann", "User acme/bob"]


def test_a_plan_that_sends_a_secret_is_computed_in_full(
    tmp_path: Path, server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "m"
    monkeypatch.setenv("ANN_PASSWORD", STRONG)
    _write(directory, _documents(password=True))
    client = CountingClient(server.url, server.token)
    first = _prepare(directory, client)
    assert any(op.sends_secret for op in first.plan.operations)
    second = _prepare(directory, client)
    assert not _recalled(second), "the secret is read and judged again where it lies"
    assert second.secrets == first.secrets and engine.secrets_to_send(second)
    assert not list(cache.glob("*.json")), "no memo is left for a plan it does not answer"


def test_a_remembered_change_that_does_not_work_out_again_is_never_trusted(
    tmp_path: Path, server: Server, cache: Path
) -> None:
    directory, client = _planned_a_rename(tmp_path, server)
    (memo,) = cache.glob("*.json")
    good = memo.read_bytes()
    fields = orjson.loads(good)
    (action, desired, live), = fields["plan"]["operations"]
    assert action == "update"
    plan = fields["plan"]
    for broken in (
        {**plan, "operations": [["create", desired, live]]},  # not what the documents plan to
        {**plan, "operations": [["update", live, live]]},  # no change at all
        {**plan, "operations": [["delete", desired, live]]},
        {**plan, "operations": [["update", {**desired, "kind": "Nothing"}, live]]},
        {**plan, "operations": [["update", "not a document", live]]},
        {**plan, "operations": [["update", desired]]},
        {**plan, "operations": "not a list"},
        {**plan, "costs": [["acme", "not a number", "1", "EUR", None]]},
        {**plan, "organization_labels": {"acme": {"tier": 1}}},
    ):
        memo.write_bytes(orjson.dumps({**fields, "plan": broken}))
        prepared = _prepare(directory, client)
        assert not _recalled(prepared), str(broken)[:200]
        assert [str(op.key) for op in prepared.plan.operations] == ["User acme/bob"]
        assert prepared.plan.operations[0].desired == desired


def _drift(client: CountingClient) -> None:
    """Bob renamed over the API, behind the stack's back."""
    _rename(client, "bob", "Robert")


def test_another_view_is_not_answered_by_this_ones_memo(tmp_path: Path, server: Server, cache: Path) -> None:
    directory = tmp_path / "m"
    _write(directory, _documents())
    _applied(directory, server)
    client = CountingClient(server.url, server.token)
    targeted = _prepare(directory, client, selection=Selection(("User/acme/ann",)))
    assert not _recalled(targeted) and targeted.plan.selection is not None
    assert _recalled(_prepare(directory, client, selection=Selection(("User/acme/ann",))))
    assert not _recalled(_prepare(directory, client, recall=False))
    assert _recalled(_prepare(directory, client))


def test_tenancy_apply_then_plan_answers_from_the_memo(tmp_path: Path) -> None:
    """The real command: after `tenancy apply`, `tenancy plan` of the same manifests needs no export."""
    directory = tmp_path / "m"
    _write(directory, _documents())
    with running_backend("http", tmp_path, TENANCY_CACHE_DIR=str(tmp_path / "cache")) as backend:
        applied = backend.tenancy("apply", str(directory), "--yes")
        assert applied.rc == 0, applied.both
        memos = list((tmp_path / "cache" / "plans").glob("*.json"))
        assert len(memos) == 1, "apply remembers the plan that follows it"
        assert orjson.loads(memos[0].read_bytes())["plan"]["stack"] == "memo"
        planned = backend.tenancy("plan", str(directory), "--detailed-exitcode")
        assert planned.rc == 0, planned.both
        assert "No changes" in planned.out
        client = backend.client()
        bob = client.get(ResourceKey("User", "acme", "bob"))
        assert bob is not None
        client.update({**bob, "spec": {**bob["spec"], "displayName": "Robert"}}, None)
        drifted = backend.tenancy("plan", str(directory), "--detailed-exitcode")
        assert drifted.rc == 2 and "User acme/bob" in drifted.out, drifted.both
