"""The change log: an export at revision R completed with `changes(since=R)` is the export now, for every
scope, organization filter and label selector; tombstones only for what the view could see; 410 past the
log's horizon or ahead of the database."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from tenancy_kinds import ResourceKey
from tenancy_backend.changes import Delta
from tenancy_backend.errors import ServiceError
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tenancy_backend.transaction import CHUNK

from tests.builders import STRONG_PASSWORD, op, org, quota, subscription, team, user
from .helpers import refused

ROOT = Scope.root(legal_representative=True)


@dataclass(frozen=True)
class View:
    scope: Scope
    organization: str | None = None
    selector: str | None = None


@dataclass
class Seen:
    """What a client of one view holds: the export at `revision`, and every organization its scope ever
    reached (selector or not: a token may export without one)."""

    revision: int
    documents: dict[ResourceKey, dict[str, Any]]
    reach: set[str] = field(default_factory=set)


def _owner(key: ResourceKey) -> str:
    return key.organization or key.name


def _reach(service: Service, view: View) -> set[str]:
    _, everything = _full(service, View(view.scope, view.organization))
    return {_owner(k) for k in everything}


VIEWS = [
    View(ROOT),
    View(ROOT, organization="a"),
    View(ROOT, organization="b"),
    View(Scope.of_organization("a")),
    View(Scope.of_organization("b")),
    View(ROOT, selector="tier=gold"),
    View(Scope.of_organization("b"), selector="!legacy"),
]


def _full(service: Service, view: View) -> tuple[int, dict[ResourceKey, dict[str, Any]]]:
    snapshot = service.snapshot(view.scope, view.organization, view.selector)
    return snapshot.revision, {ResourceKey.of(d): d for d in snapshot.documents}


def merged(documents: dict[ResourceKey, dict[str, Any]], delta: Delta) -> dict[ResourceKey, dict[str, Any]]:
    out = dict(documents)
    for key in delta.deleted:
        out.pop(key, None)
    out.update((ResourceKey.of(d), d) for d in delta.items)
    return out


def start(service: Service, views: list[View]) -> dict[View, Seen]:
    seen = {}
    for view in views:
        try:
            revision, documents = _full(service, view)
        except ServiceError:  # the view's organization does not exist yet
            continue
        seen[view] = Seen(revision, documents, _reach(service, view))
    return seen


def check(service: Service, seen: dict[View, Seen]) -> None:
    """Every view's cached export plus its changes is its full export now."""
    for view, state in seen.items():
        delta = service.changes(view.scope, state.revision, view.organization, view.selector)
        revision, now = _full(service, view)
        assert delta.revision == revision
        state.reach |= _reach(service, view)
        assert {_owner(k) for k in delta.deleted} <= state.reach, f"{view}: tombstones from outside its scope"
        assert merged(state.documents, delta) == now, view
        state.revision, state.documents = revision, now


def test_every_kind_of_change_reaches_every_view(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("a"))
    service.create(ROOT, "Organization", None, org("b"))
    seen = start(service, VIEWS)
    service.create(ROOT, "Organization", None, org("c", parent="a"))
    service.create(ROOT, "User", "a", user("a", "ann", role="administrator", meta={"labels": {"tier": "gold"}}))
    service.create(ROOT, "User", "c", user("c", "cid", password=STRONG_PASSWORD))
    service.create(ROOT, "MailboxQuota", "c", quota("c", "main"))
    service.create(ROOT, "User", "b", user("b", "bea", meta={"labels": {"legacy": "yes"}}))
    check(service, seen)
    gold = service.get(ROOT, "User", "a", "ann")
    ungilded = {**gold, "metadata": {**gold["metadata"], "labels": {}}}
    service.update(ROOT, "User", "a", "ann", ungilded)  # leaves the tier=gold selection
    service.deposit(ROOT, "c", "25.00")  # a balance: no resourceVersion moves
    check(service, seen)
    service.create(ROOT, "User", "c", user("c", "cay"))
    check(service, seen)
    service.delete(ROOT, "User", "c", "cay")  # a tombstone; c's userCount and its quota's usedAddresses move
    check(service, seen)
    moved = service.get(ROOT, "Organization", None, "c")
    service.update(ROOT, "Organization", None, "c", {**moved, "spec": {**moved["spec"], "parent": "b"}})
    a_view, b_view = seen[View(Scope.of_organization("a"))], seen[View(Scope.of_organization("b"))]
    before_a, before_b = dict(a_view.documents), dict(b_view.documents)
    check(service, seen)
    assert ResourceKey("User", "c", "cid") in before_a and ResourceKey("User", "c", "cid") not in a_view.documents
    assert ResourceKey("User", "c", "cid") not in before_b and ResourceKey("User", "c", "cid") in b_view.documents
    service.create(ROOT, "Organization", None, org("d", parent="b"))
    service.create(ROOT, "CustomerSubscription", "d", subscription("d", "sig"))
    check(service, seen)
    service.delete(ROOT, "CustomerSubscription", "d", "sig")  # archives it
    service.delete(ROOT, "Organization", None, "d")  # the archived subscription goes with it
    check(service, seen)
    assert not any(k.organization == "d" or k.name == "d" for k in seen[View(ROOT)].documents)
    replaced = user("b", "bea", email="bea.new@b.example")
    service.changeset(ROOT, [op("delete", user("b", "bea")), op("create", replaced)])  # a replace
    service.changeset(ROOT, [op("create", team("b", "crew", ["bea"]))])
    check(service, seen)
    assert seen[View(ROOT)].documents[ResourceKey("User", "b", "bea")]["spec"]["email"] == "bea.new@b.example"


def test_a_view_never_learns_of_what_it_could_not_see(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("a"))
    service.create(ROOT, "Organization", None, org("b"))
    service.create(ROOT, "User", "b", user("b", "secret-name"))
    scoped = Scope.of_organization("a")
    revision = service.snapshot(scoped).revision
    service.delete(ROOT, "User", "b", "secret-name")
    service.delete(ROOT, "Organization", None, "b")
    delta = service.changes(scoped, revision)
    assert list(delta.items) == [] and delta.deleted == []


def test_a_random_history_on_both_databases(service: Service) -> None:
    """Random creates, updates, label changes, moves, deposits, deletions, changesets; every view checked
    after each step."""
    rng = random.Random(17)
    for name in ("a", "b"):
        service.create(ROOT, "Organization", None, org(name))
    service.create(ROOT, "Organization", None, org("c", parent="a"))
    seen = start(service, VIEWS)
    users: list[tuple[str, str]] = []
    for step in range(40):
        owner = rng.choice(["a", "b", "c"])
        choice = rng.random()
        if choice < 0.35 or not users:
            name = f"u{step}"
            labels = rng.choice([{}, {"tier": "gold"}, {"legacy": "1"}])
            service.create(ROOT, "User", owner, user(owner, name, meta={"labels": labels}))
            users.append((owner, name))
        elif choice < 0.55:
            where, name = rng.choice(users)
            current = service.get(ROOT, "User", where, name)
            labels = rng.choice([{}, {"tier": "gold"}, {"legacy": "1"}])
            relabelled = {**current, "metadata": {**current["metadata"], "labels": labels}}
            service.update(ROOT, "User", where, name, relabelled)
        elif choice < 0.7:
            where, name = users.pop(rng.randrange(len(users)))
            service.delete(ROOT, "User", where, name)
        elif choice < 0.8:
            current = service.get(ROOT, "Organization", None, "c")
            parent = "b" if current["spec"]["parent"] == "a" else "a"
            service.update(ROOT, "Organization", None, "c", {**current, "spec": {**current["spec"], "parent": parent}})
        elif choice < 0.9:
            service.deposit(ROOT, owner, "1.00")
        else:
            batch = [op("create", user(owner, f"u{step}x{i}")) for i in range(3)]
            service.changeset(ROOT, batch)
            users += [(owner, f"u{step}x{i}") for i in range(3)]
        if rng.random() < 0.6:
            check(service, seen)
    check(service, seen)


def test_the_documents_of_a_delta_are_the_state_it_was_counted_at_while_writes_land(service: Service) -> None:
    """The documents of a delta are read as they are iterated, a chunk of CHUNK at a time, in the snapshot
    the delta was counted in: writes that land meanwhile are the next delta's."""
    service.create(ROOT, "Organization", None, org("a", plan="pro"))
    revision = service.snapshot(ROOT).revision
    service.changeset(ROOT, [op("create", user("a", f"u{i:04d}")) for i in range(CHUNK + 20)])
    delta = service.changes(ROOT, revision)
    first = next(delta.items)
    service.changeset(ROOT, [op("delete", user("a", f"u{i:04d}")) for i in range(CHUNK + 10, CHUNK + 20)])
    service.create(ROOT, "User", "a", user("a", "late"))
    documents = [first, *delta.items]
    names = {d["metadata"]["name"] for d in documents if d["kind"] == "User"}
    assert names == {f"u{i:04d}" for i in range(CHUNK + 20)}
    assert next(d for d in documents if d["kind"] == "Organization")["status"]["userCount"] == CHUNK + 20
    after = service.changes(ROOT, delta.revision)
    assert {str(k) for k in after.deleted} == {f"User a/u{i:04d}" for i in range(CHUNK + 10, CHUNK + 20)}
    assert {d["metadata"]["name"] for d in after.items if d["kind"] == "User"} == {"late"}


def test_since_older_than_the_log_or_ahead_of_the_database_is_gone(tmp_path: Any) -> None:
    service = Service(f"sqlite:///{tmp_path / 'small-log.db'}", changes_retained=3)
    try:
        service.create(ROOT, "Organization", None, org("a"))
        first = service.snapshot(ROOT).revision
        assert list(service.changes(ROOT, first).items) == []
        for i in range(4):
            service.create(ROOT, "User", "a", user("a", f"u{i}"))
            service.delete(ROOT, "User", "a", f"u{i}")  # logged: the log grows and is pruned
        with refused(410, "the change log starts at revision"):
            service.changes(ROOT, first)
        now = service.snapshot(ROOT).revision
        assert service.changes(ROOT, now).deleted == []
        with refused(410, "ahead of this database's revision"):
            service.changes(ROOT, now + 1)
        with refused(422, "since must be a revision"):
            service.changes(ROOT, -1)
    finally:
        service.close()


def test_reads_and_refusals_do_not_move_the_revision(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("a"))
    revision = service.snapshot(ROOT).revision
    with pytest.raises(ServiceError):
        service.create(ROOT, "Organization", None, org("a"))
    service.get(ROOT, "Organization", None, "a")
    current = service.get(ROOT, "Organization", None, "a")
    service.update(ROOT, "Organization", None, "a", current)  # nothing changes
    assert service.snapshot(ROOT).revision == revision
    service.create_token("a")
    assert service.snapshot(ROOT).revision == revision
