"""Changesets: all or nothing, and rules judged on the outcome (a replace, a member dropped then deleted)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import event

from tenancy_backend import changesets
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service

from tests.builders import alias, op, org, quota, subscription, team, user
from .helpers import refused

ROOT = Scope.root()


def _setup(service: Service) -> None:
    service.changeset(
        ROOT,
        [
            op("create", org("acme")),
            op("create", user("acme", "alice", role="administrator")),
            op("create", user("acme", "bob")),
            op("create", team("acme", "devs", ["alice", "bob"], leader="alice")),
        ],
    )


def test_changeset_applies_in_order_and_returns_one_result_per_operation(service: Service) -> None:
    _setup(service)
    results = service.changeset(
        ROOT,
        [
            op("create", alias("acme", "info", "bob")),
            op("update", team("acme", "devs", ["alice"])),
            op("delete", alias("acme", "info", "bob")),
        ],
    )
    assert [r and r["kind"] for r in results] == ["Alias", "Team", None]
    assert service.get(ROOT, "Team", "acme", "devs")["spec"]["members"] == ["alice"]


def test_a_violation_in_the_middle_leaves_nothing(service: Service) -> None:
    _setup(service)
    before = list(service.export(ROOT))
    with refused(409, "operation 2 (create User acme/alice)", "already exists", path="operations[2].metadata.name"):
        service.changeset(
            ROOT,
            [
                op("create", user("acme", "carol")),
                op("update", team("acme", "devs", ["alice", "bob", "carol"])),
                op("create", user("acme", "alice", email="alice2@acme.example")),
                op("create", user("acme", "dave")),
            ],
        )
    assert list(service.export(ROOT)) == before


def test_a_deferred_violation_leaves_nothing_and_points_at_the_operation(service: Service) -> None:
    _setup(service)
    before = list(service.export(ROOT))
    with refused(422, "User 'zoe' does not exist", path="operations[1].spec.members[1]"):
        service.changeset(
            ROOT,
            [op("create", user("acme", "carol")), op("create", team("acme", "ops", ["carol", "zoe"]))],
        )
    assert list(service.export(ROOT)) == before


def test_replacing_a_user_named_by_a_team_within_one_changeset(service: Service) -> None:
    _setup(service)
    old_uid = service.get(ROOT, "User", "acme", "alice")["metadata"]["uid"]
    results = service.changeset(
        ROOT,
        [
            op("delete", user("acme", "alice")),
            op("create", user("acme", "alice", email="alice.new@acme.example", role="administrator")),
        ],
    )
    assert results[0] is None and results[1] is not None
    assert results[1]["metadata"]["uid"] != old_uid
    assert service.get(ROOT, "Team", "acme", "devs")["spec"]["leader"] == "alice"


def test_deleting_alone_what_a_team_names_is_refused(service: Service) -> None:
    _setup(service)
    with refused(409, "User acme/bob cannot be deleted", "Team acme/devs (members)", path="operations[0]"):
        service.changeset(ROOT, [op("delete", user("acme", "bob"))])


def test_dropping_a_member_then_deleting_it(service: Service) -> None:
    _setup(service)
    service.changeset(
        ROOT, [op("update", team("acme", "devs", ["alice"], leader="alice")), op("delete", user("acme", "bob"))]
    )
    with refused(404):
        service.get(ROOT, "User", "acme", "bob")


def test_quota_rise_and_new_users_in_one_changeset(service: Service) -> None:
    _setup(service)
    service.create(ROOT, "MailboxQuota", "acme", quota("acme", "q", max_addresses=2, offer="starter"))
    with refused(409, "no free address"):
        service.changeset(ROOT, [op("create", user("acme", "carol"))])
    # Creating first and raising after is judged on the outcome, like the plan's order.
    service.changeset(
        ROOT,
        [op("create", user("acme", "carol")), op("update", quota("acme", "q", max_addresses=3, offer="starter"))],
    )


def test_organization_and_its_contents_in_one_changeset(service: Service) -> None:
    service.changeset(
        ROOT,
        [
            op("create", org("new", plan="free")),
            op("update", org("new", plan="pro")),
            op("create", user("new", "ann", role="administrator")),
        ],
    )
    service.changeset(ROOT, [op("delete", user("new", "ann")), op("delete", org("new"))])
    with refused(404):
        service.get(ROOT, "Organization", None, "new")


def test_malformed_operations_are_refused_with_paths(service: Service) -> None:
    with refused(422, path="operations"):
        service.changeset(ROOT, [])
    with refused(422, path="operations[0].op"):
        service.changeset(ROOT, [{"op": "upsert", "kind": "User", "organization": "acme", "name": "a"}])
    with refused(422, path="operations[1].kind"):
        service.changeset(ROOT, [op("create", org("a")), {"op": "delete", "kind": "Widget", "name": "x"}])
    with refused(422, path="operations[0].document.spec.email"):
        service.changeset(ROOT, [op("create", user("acme", "a", email="not-an-email"))])
    with refused(422, path="operations[0].surprise"):
        service.changeset(ROOT, [{**op("create", org("a")), "surprise": 1}])


def test_changeset_idempotency(service: Service) -> None:
    ops = [op("create", org("acme")), op("create", user("acme", "alice"))]
    first = service.changeset(ROOT, ops, idempotency_key="k1")
    assert service.changeset(ROOT, ops, idempotency_key="k1") == first
    with refused(422, "Idempotency-Key 'k1' was already used for a different request"):
        service.changeset(ROOT, [op("create", org("other"))], idempotency_key="k1")


def test_large_changeset(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("bulk"))
    results = service.changeset(ROOT, [op("create", user("bulk", f"u{i:04d}")) for i in range(500)])
    assert len(results) == 500
    assert service.get(ROOT, "Organization", None, "bulk")["status"]["userCount"] == 500


# Text that a hand-built SQL literal, an array literal or a JSON encoder could get wrong.
AWKWARD = 'Zoë "the \\ quoted" O\'Brien, {a,b} NULL \\N — 東京 🚀'


def _contents(o: str) -> list[dict[str, Any]]:
    return [
        user(o, "alice", displayName=AWKWARD, role="administrator"),
        user(o, "bob", displayName="NULL"),
        team(o, "devs", ["alice", "bob"], displayName=AWKWARD, leader="alice"),
        alias(o, "hello", "alice"),
        subscription(o, "cust", customerName=AWKWARD),
    ]


def _comparable(document: dict[str, Any]) -> dict[str, Any]:
    """A document without what differs between two organizations' copies (ids, versions, times, names)."""
    text = json.dumps(document["spec"]) + json.dumps(document.get("status", {}))
    return {"kind": document["kind"], "name": document["metadata"]["name"],
            "body": re.sub(r"sub_[0-9a-f]{16}", "sub_…", text.replace("bulk", "o").replace("each", "o"))}


def test_bulk_creates_store_what_one_by_one_creates_store(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    service.changeset(ROOT, [op("create", org("each")), op("create", org("bulk"))])
    for document in _contents("each"):
        service.create(ROOT, document["kind"], "each", document)
    with monkeypatch.context() as patched:  # the changeset must take the bulk path: no per-operation step
        patched.setattr(changesets, "_run_step", _no_single_steps)
        bulk = service.changeset(ROOT, [op("create", d) for d in _contents("bulk")])
    for stored, given in zip(bulk, _contents("bulk"), strict=True):
        assert stored["spec"] | given["spec"] == stored["spec"]  # every given value kept as it was
    for kind in ("User", "Team", "Alias", "CustomerSubscription", "Organization"):
        each = [_comparable(d) for d in service.list(ROOT, kind, "each").items]
        stored = [_comparable(d) for d in service.list(ROOT, kind, "bulk").items]
        assert stored == each, kind
    # The claims and references written in bulk hold like any other.
    with refused(409, "already used by Alias bulk/hello"):
        service.create(ROOT, "Alias", "bulk", alias("bulk", "again", "bob", address="hello@bulk.example"))
    with refused(409, "Team bulk/devs"):
        service.delete(ROOT, "User", "bulk", "bob")


def _no_single_steps(*_: Any) -> Any:
    raise AssertionError("the changeset went through the per-operation path, not the bulk one")


# --- a run of updates: its rows read beforehand, each update's own row known as written ----------------

_READ_OF_RESOURCES = re.compile(r'\s*SELECT\b.*?\bFROM\s+"?resources"?\s', re.IGNORECASE | re.DOTALL)


def test_a_run_of_updates_across_organizations_reads_its_rows_in_a_few_queries(service: Service) -> None:
    names = [f"org{i:02d}" for i in range(40)]
    service.changeset(ROOT, [op("create", org(o)) for o in names])
    service.changeset(ROOT, [op("create", user(o, "alice")) for o in names])
    reads = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if _READ_OF_RESOURCES.match(statement):
            reads.append((statement, parameters))

    edits = [op("update", user(o, "alice", displayName=f"Alice of {o}")) for o in names]
    event.listen(service._engine, "before_cursor_execute", count)
    try:
        results = service.changeset(ROOT, edits)
    finally:
        event.remove(service._engine, "before_cursor_execute", count)
    assert [r and r["spec"]["displayName"] for r in results] == [f"Alice of {o}" for o in names]
    # The organizations and the users in one query each, not three reads per update (its organization,
    # its row, and its row again for the checks at the end of the changeset).
    assert len(reads) <= 4, f"{len(reads)} reads of resources for 40 updates"
    if service._engine.dialect.name == "sqlite":  # and each by the index, not by reading every row
        with service._engine.connect() as conn:
            for statement, parameters in reads:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
                assert not any(str(step[-1]).startswith("SCAN resources") for step in plan), (statement, plan)
    for o in names:
        assert service.get(ROOT, "User", o, "alice")["spec"]["displayName"] == f"Alice of {o}"


def test_a_second_update_in_a_run_sees_the_first(service: Service) -> None:
    _setup(service)
    version = service.get(ROOT, "User", "acme", "bob")["metadata"]["resourceVersion"]
    with refused(412, "operation 1 (update User acme/bob)", "changed since it was read"):
        service.changeset(
            ROOT,
            [
                op("update", user("acme", "bob", displayName="Bob 1"), ifMatch=version),
                op("update", user("acme", "bob", displayName="Bob 2"), ifMatch=version),
            ],
        )
    first = service.changeset(ROOT, [op("update", user("acme", "bob", displayName="Bob 1"), ifMatch=version)])[0]
    assert first is not None
    second = op("update", user("acme", "bob", displayName="Bob 2"), ifMatch=first["metadata"]["resourceVersion"])
    assert service.changeset(ROOT, [second])[0]["spec"]["displayName"] == "Bob 2"  # type: ignore[index]


def test_usernames_swapped_by_a_run_of_updates_release_and_take_their_claims(service: Service) -> None:
    _setup(service)
    service.update(ROOT, "User", "acme", "alice", user("acme", "alice", role="administrator", username="ally"))
    service.changeset(
        ROOT,
        [
            op("update", user("acme", "alice", role="administrator", username="carol")),
            op("update", user("acme", "bob", username="ally")),
        ],
    )
    assert service.get(ROOT, "User", "acme", "bob")["spec"]["username"] == "ally"
    # bob's old username (his address) is free again; alice's new one and bob's new one are held.
    service.create(ROOT, "User", "acme", user("acme", "dave", username="bob@acme.example"))
    for taken, holder in (("carol", "User acme/alice"), ("ally", "User acme/bob")):
        with refused(409, f"already used by {holder}"):
            service.create(ROOT, "User", "acme", user("acme", "erin", username=taken))
