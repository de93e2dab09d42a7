"""Backend transactions: every request and every changeset is all or nothing, on SQLite and PostgreSQL.

A fixed world is written once per database. Then hypothesis builds changesets of valid operations with one
rule violation somewhere in the middle (a name, an address or a quota domain already taken, an immutable
field changed, a stale If-Match, a protected or still-referenced resource deleted, a team naming a ghost,
a quota below its usage, a plan downgrade, a parent cycle, a domain still in use dropped, a weak password,
an unknown organization), with and without an Idempotency-Key; and every violation is also sent alone as
a single create/update/delete. Each is refused with a 4xx, and a snapshot of every table of the database
(resources, claims, references, tokens, idempotency keys, deposits, the version counter) is byte for byte
what it was: nothing is left behind, not even an idempotency key.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tenancy_backend.errors import ServiceError
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tests.faults.harness import env_int, table_snapshot
from tests.builders import STRONG_PASSWORD, alias, document, team, user
from tests.support import new_pg_database

ROOT = Scope.root()
EXAMPLES = env_int("TENANCY_TX_EXAMPLES", 200)
TIME_LIMIT_S = 180.0


WORLD = [
    document("Organization", "tx", None, {"displayName": "Tx", "plan": "entry", "domains": ["tx.example"]}),
    document("Organization", "tx-kid", None, {"displayName": "Kid", "parent": "tx", "domains": ["kid.example"]}),
    user("tx", "a", role="administrator", password=STRONG_PASSWORD),
    user("tx", "b"),
    user("tx", "c"),
    document("User", "p", "tx", {"email": "p@tx.example", "displayName": "P"}, meta={"protected": True}),
    document("Team", "t", "tx", {"displayName": "T", "members": ["a", "b"], "leader": "a"}),
    document("MailboxQuota", "q", "tx", {"domain": "tx.example", "maxAddresses": 10}),
    document("Alias", "al", "tx", {"address": "al@tx.example", "user": "b"}),
    document("CustomerSubscription", "s", "tx", {"product": "signatures-microsoft-365", "customerName": "S"}),
]
BY_NAME = {(d["kind"], d["metadata"]["name"]): d for d in WORLD}


def op(action: str, document: dict[str, Any], **extra: Any) -> dict[str, Any]:
    meta = document["metadata"]
    out = {"op": action, "kind": document["kind"], "organization": meta.get("organization"), "name": meta["name"]}
    if action != "delete":
        out["document"] = document
    return out | extra


def edited(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    document = copy.deepcopy(BY_NAME[(kind, name)])
    document["spec"].update(spec)
    document["spec"].pop("password", None)
    return document


Op = Callable[[int], dict[str, Any]]

VALID: dict[str, Op] = {
    "create user": lambda i: op("create", user("tx", f"n{i}")),
    "rename user b": lambda i: op("update", edited("User", "b", displayName=f"B {i}")),
    "grow team t": lambda i: op("update", edited("Team", "t", members=["a", "b", "c"])),
    "create alias": lambda i: op("create", alias("tx", f"x{i}", "c", address=f"x{i}@tx.example")),
    "delete alias al": lambda i: op("delete", BY_NAME[("Alias", "al")]),
    "raise quota": lambda i: op("update", edited("MailboxQuota", "q", maxAddresses=20)),
    "create sub-organization": lambda i: op(
        "create", document("Organization", f"k{i}", None, {"displayName": f"K{i}", "parent": "tx", "domains": []})
    ),
    "grow subscription": lambda i: op("update", edited("CustomerSubscription", "s", users=30)),
    "create team": lambda i: op("create", team("tx", f"nt{i}", ["a"], displayName=f"NT{i}")),
}

VIOLATIONS: dict[str, Op] = {
    "name taken": lambda i: op("create", user("tx", "a", email="other-a@tx.example")),
    "address taken by a user": lambda i: op("create", user("tx", f"z{i}", email="a@tx.example")),
    "address taken, as an alias": lambda i: op(
        "create", document("Alias", f"y{i}", "tx", {"address": "b@tx.example", "user": "c"})
    ),
    "quota domain taken": lambda i: op(
        "create", document("MailboxQuota", f"q{i}", "tx", {"domain": "tx.example", "maxAddresses": 10})
    ),
    "immutable email": lambda i: op("update", edited("User", "a", email="new-a@tx.example")),
    "stale If-Match": lambda i: op("update", edited("Team", "t", description="stale"), ifMatch="999999999"),
    "team names a ghost": lambda i: op("create", team("tx", f"g{i}", ["ghost"], displayName="G")),
    "quota below usage": lambda i: op("update", edited("MailboxQuota", "q", maxAddresses=1)),
    "organization not empty": lambda i: op("delete", BY_NAME[("Organization", "tx")]),
    "plan downgrade": lambda i: op("update", edited("Organization", "tx", plan="free")),
    "referenced user deleted": lambda i: op("delete", BY_NAME[("User", "b")]),
    "protected deleted": lambda i: op("delete", BY_NAME[("User", "p")]),
    "parent cycle": lambda i: op("update", edited("Organization", "tx", parent="tx-kid")),
    "domain in use dropped": lambda i: op("update", edited("Organization", "tx", domains=["elsewhere.example"])),
    "weak password": lambda i: op("create", user("tx", f"w{i}", password="password1234")),
    "unknown organization": lambda i: op(
        "create", document("User", f"u{i}", "nope", {"email": f"u{i}@nope.example", "displayName": "U"})
    ),
    "email off the domains": lambda i: op("create", user("tx", f"o{i}", email=f"o{i}@elsewhere.example")),
}


def snapshot(service: Service) -> list[tuple[str, list[str]]]:
    return table_snapshot(service._engine)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    url = (
        f"sqlite:///{tmp_path_factory.mktemp('tx') / 'tenancy.db'}" if request.param == "sqlite" else new_pg_database()
    )
    service = Service(url)
    service.changeset(ROOT, [op("create", d) for d in WORLD])
    service.deposit(ROOT, "tx", "10.00")
    yield service
    service.close()


def _refused(call: Callable[[], Any]) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        call()
    assert 400 <= info.value.status < 500, (info.value.status, info.value.detail)
    return info.value


@given(
    before=st.lists(st.sampled_from(sorted(VALID)), unique=True, max_size=4),
    violation=st.sampled_from(sorted(VIOLATIONS)),
    after=st.lists(st.sampled_from(sorted(VALID)), unique=True, max_size=3),
    key=st.none() | st.uuids().map(str),
)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_changeset_with_a_violation_anywhere_leaves_nothing(
    world: Service, before: list[str], violation: str, after: list[str], key: str | None
) -> None:
    after = [name for name in after if name not in before]
    operations = [VALID[n](i) for i, n in enumerate(before)] + [VIOLATIONS[violation](99)]
    operations += [VALID[n](50 + i) for i, n in enumerate(after)]
    state = snapshot(world)
    error = _refused(lambda: world.changeset(ROOT, operations, idempotency_key=key))
    assert snapshot(world) == state, f"{violation} after {before} left something behind ({error.detail})"


def _alone(service: Service, operation: dict[str, Any]) -> Any:
    kind, org, name = operation["kind"], operation["organization"], operation["name"]
    if operation["op"] == "create":
        return service.create(ROOT, kind, org, operation["document"], idempotency_key="single-request-key")
    if operation["op"] == "update":
        return service.update(ROOT, kind, org, name, operation["document"], if_match=operation.get("ifMatch"))
    return service.delete(ROOT, kind, org, name)


@pytest.mark.parametrize("violation", sorted(VIOLATIONS))
def test_a_single_request_that_breaks_a_rule_leaves_nothing(world: Service, violation: str) -> None:
    state = snapshot(world)
    _refused(lambda: _alone(world, VIOLATIONS[violation](7)))
    assert snapshot(world) == state


def test_the_valid_operations_are_valid(tmp_path: Any) -> None:
    """The control: without the violation, the same operations all apply (so the refusals above are real)."""
    service = Service(f"sqlite:///{tmp_path / 'control.db'}")
    try:
        service.changeset(ROOT, [op("create", d) for d in WORLD])
        state = snapshot(service)
        results = service.changeset(ROOT, [VALID[n](i) for i, n in enumerate(sorted(VALID))])
        assert len(results) == len(VALID)
        assert snapshot(service) != state
    finally:
        service.close()
