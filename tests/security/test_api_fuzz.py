"""Schemathesis against the real API: no generated request sequence and no generated request makes the
server answer 5xx.

- stateful: `schema.as_state_machine()` on the served /openapi.json (links inferred by schemathesis:
  create an organization, then read, update, deposit, delete it...), positive and negative data, with a
  seeded organization `acme` substituted for about half of the generated `{org}` values so that sequences
  reach the business rules of the scoped collections; every scenario starts from the same seeded
  database. TENANCY_FUZZ_SCENARIOS scenarios (default 25) of up to 10 steps.
- stateless: every documented operation, TENANCY_FUZZ_EXAMPLES generated requests each (default 6).
Only the `not_a_server_error` check fails a run; every status is counted and reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from sqlalchemy import text

from tenancy_backend.db import create_db_engine

from tests.faults.harness import env_int
from tests.security.world import doc
from tests.support import Server, start_server

SCENARIOS = env_int("TENANCY_FUZZ_SCENARIOS", 25)
EXAMPLES = env_int("TENANCY_FUZZ_EXAMPLES", 6)
TIME_LIMIT_S = 60.0 + SCENARIOS * 2.0 + EXAMPLES * 10.0
SEEDED = "acme"


WORLD = [
    ("/v1/organizations", doc("Organization", SEEDED, None, displayName="Acme", plan="pro", domains=["acme.example"])),
    (f"/v1/organizations/{SEEDED}/users", doc("User", "alice", SEEDED, email="alice@acme.example", displayName="Alice",
                                              role="administrator")),
    (f"/v1/organizations/{SEEDED}/teams", doc("Team", "devs", SEEDED, displayName="Devs", members=["alice"])),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("fuzz") / "tenancy.db"
    with start_server(f"sqlite:///{db}", extra_args=("--auth-failure-limit", "0")) as srv:
        yield srv


class World:
    """Every scenario starts from the same seeded world: hypothesis replays scenarios, and a replay must
    meet the server in the state the original met (else its draws differ and hypothesis calls it flaky)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.engine = create_db_engine(server.db_url)
        self.session = requests.Session()
        self.session.headers.update(server.headers())

    def reset(self) -> None:
        with self.engine.begin() as conn:  # everything but the tokens
            for table in ("claims", "refs", "deposits", "idempotency_keys", "resources"):
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(text("UPDATE counters SET value = 0"))
        for path, body in WORLD:
            assert self.session.post(self.server.url + path, json=body, timeout=30).status_code == 201

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


def _seed(case: Any) -> None:
    """Point about half of the generated organizations at the seeded one (deterministically, per value)."""
    params = case.path_parameters or {}
    org = params.get("org")
    if isinstance(org, str) and sum(map(ord, org)) % 2 == 0:
        params["org"] = SEEDED


def _report(label: str, statuses: Counter[int], operations: set[str]) -> None:
    print(f"\n{label}: {sum(statuses.values())} calls over {len(operations)} operations, "
          + ", ".join(f"{s} ×{n}" for s, n in sorted(statuses.items())))


def test_stateful_sequences_never_get_a_5xx(server: Server) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    statuses: Counter[int] = Counter()
    operations: set[str] = set()
    token = server.token
    world = World(server)

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            world.reset()

        def before_call(self, case: Any) -> None:
            _seed(case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def after_call(self, response: Any, case: Any) -> None:
            statuses[response.status_code] += 1
            operations.add(f"{case.method} {case.path}")

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=[not_a_server_error])

    try:
        Sequences.run(settings=hypothesis.settings(
            max_examples=SCENARIOS, stateful_step_count=10, deadline=None, database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        ))
    finally:
        world.close()
    _report("schemathesis stateful", statuses, operations)
    assert not [s for s in statuses if s >= 500]
    assert sum(statuses.values()) >= SCENARIOS * 2


def test_every_operation_never_gets_a_5xx(server: Server) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    statuses: Counter[int] = Counter()
    operations: set[str] = set()
    headers = {"Authorization": f"Bearer {server.token}"}
    world = World(server)
    world.reset()
    world.close()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err would raise here, and should

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                             suppress_health_check=list(hypothesis.HealthCheck),
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        def call(case: Any) -> None:
            _seed(case)
            response = case.call(headers=headers)
            statuses[response.status_code] += 1
            operations.add(f"{case.method} {case.path}")
            case.validate_response(response, checks=[not_a_server_error])

        call()
    _report("schemathesis stateless", statuses, operations)
    assert not [s for s in statuses if s >= 500]
    assert len(operations) == sum(len(ops) for ops in schema.raw_schema["paths"].values())
