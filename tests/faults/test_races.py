"""Races: applies that overlap on one backend lose no update, fail clearly, and converge when re-run.

Decision (see the Guarantees section): a stack takes no lease on the backend while it applies. Every
write is conditional instead: an update or a delete carries the resourceVersion it was planned against
(If-Match, 412 when the resource moved), a create fails on a taken name (409), and an apply that races
another one reports those as failed changes, skips their dependants, and exits 1; re-running re-plans from
what is live and converges. These tests hold the backend to that:

- the same stack, two conflicting edits planned from the same state and applied at the same instant
  (in-process, behind a barrier, so that the race is certain): each resource is changed by at most one
  of them, the loser's changes fail with a message that says why, the version counter grew by exactly the
  number of changes reported applied, and re-running converges;
- the same stack applied twice at once from an empty backend (the real CLI): every resource is created
  exactly once, and re-running converges;
- two different stacks declaring the same organization at once: exactly one owns it, the other creates
  nothing and says so, and keeps saying so when re-run (it never takes the organization over).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from provider import engine
from provider.apply import Report, Status, apply
from provider.client import HttpClient
from tenancy_kinds import ResourceKey
from tests.faults.harness import (
    PER_ORG_WRITES,
    Running,
    assert_holds_exactly,
    cli_env,
    inventory,
    tenancy,
    write_world,
)
from tests.support import Server, start_server

ORGS = 3
TIME_LIMIT_S = 120.0
CLEAR_FAILURE = re.compile(r"changed since it was read|already exists|not found|skipped because|is owned by stack")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with start_server(f"sqlite:///{tmp_path / 'tenancy.db'}") as srv:
        yield srv


def _flavour_c(directory: Path) -> None:
    """Flavour b with other display names: the same resources, conflicting values."""
    for file in directory.glob("org*.yaml"):
        file.write_text(file.read_text().replace("(b)", "(c)"))


def _prepare(path: Path, server: Server) -> tuple[engine.Prepared, HttpClient]:
    client = HttpClient(server.url, server.token)
    return engine.prepare([str(path)], client, server.url, stack_option=None), client


def _applied(report: Report) -> dict[str, str]:
    return {str(o.op.key): o.op.action.value for o in report.outcomes if o.status is Status.APPLIED}


def test_conflicting_edits_of_one_stack_at_the_same_instant_lose_no_update(tmp_path: Path, server: Server) -> None:
    env = cli_env(server.url, server.token)
    write_world(tmp_path / "a", ORGS, "a")
    assert tenancy(["apply", "a", "--yes"], env, tmp_path).rc == 0
    before = inventory(server.db_url)
    write_world(tmp_path / "b", ORGS, "b")
    write_world(tmp_path / "c", ORGS, "b")
    _flavour_c(tmp_path / "c")
    (prep_b, client_b), (prep_c, client_c) = _prepare(tmp_path / "b", server), _prepare(tmp_path / "c", server)
    assert prep_b.plan.versions() == prep_c.plan.versions(), "both planned against the same versions"
    barrier, reports = threading.Barrier(2), {}

    def run(name: str, prepared: engine.Prepared, client: HttpClient) -> None:
        barrier.wait()
        reports[name] = apply(prepared.plan, client, parallelism=10, batch_size=50)

    threads = [threading.Thread(target=run, args=args) for args in (("b", prep_b, client_b), ("c", prep_c, client_c))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    client_b.close()
    client_c.close()
    applied_b, applied_c = _applied(reports["b"]), _applied(reports["c"])
    both = sorted(set(applied_b) & set(applied_c))
    assert not both, f"changed by both applies (a lost update): {both[:5]}"
    failures = [o for r in reports.values() for o in r.outcomes if o.status is not Status.APPLIED]
    unclear = [f"{o.op.key}: {o.message}" for o in failures if not CLEAR_FAILURE.search(o.message)]
    assert not unclear, unclear[:5]
    writes = sum(1 for a in (applied_b, applied_c) for action in a.values() if action in ("create", "update"))
    after = inventory(server.db_url)  # every resourceVersion, and a revision per transaction that deleted
    drawn = (after.version_counter - after.logged_revisions) - (before.version_counter - before.logged_revisions)
    assert drawn == writes, "a write the reports do not account for"
    # The winner's value is what is live, for every resource either side reported changed.
    reader = HttpClient(server.url, server.token)
    live = {str(ResourceKey.of(d)): d for d in reader.export()}
    reader.close()
    checked = 0
    for side, applied in (("(b)", applied_b), ("(c)", applied_c)):
        for key, action in applied.items():
            if action == "update" and key.startswith(("User ", "Organization ")):
                shown = live[key]["spec"]["displayName"]
                assert shown.endswith(side), f"{key} reported updated to {side} but holds {shown!r}"
                checked += 1
    assert checked
    print(f"\nrace: b applied {len(applied_b)}, c applied {len(applied_c)}, {len(failures)} failed or skipped "
          f"with clear messages, 0 changed by both; {writes} writes = version counter delta")
    # Re-running either side converges.
    again = tenancy(["apply", "b", "--yes", "--max-deletions", "1000"], env, tmp_path)
    assert again.rc == 0, again.both[-2000:]
    assert tenancy(["plan", "b", "--detailed-exitcode"], env, tmp_path).rc == 0


def test_one_stack_applied_twice_at_once_creates_everything_once(tmp_path: Path, server: Server) -> None:
    env = cli_env(server.url, server.token)
    declared = write_world(tmp_path / "m", ORGS, "a")
    runs = [Running(["apply", "m", "--yes"], env, tmp_path) for _ in range(2)]
    results = [r.finish(timeout=90) for r in runs]
    outcome_lines = [line for r in results for line in r.err.splitlines() if line.startswith(("failed:", "skipped:"))]
    unclear = [line for line in outcome_lines if not CLEAR_FAILURE.search(line)]
    assert not unclear, unclear[:5]
    again = tenancy(["apply", "m", "--yes"], env, tmp_path)
    assert again.rc == 0, again.both[-2000:]
    assert tenancy(["plan", "m", "--detailed-exitcode"], env, tmp_path).rc == 0
    assert_holds_exactly(server.db_url, declared, writes=ORGS * PER_ORG_WRITES)
    print(f"\nsame stack twice: exits {[r.rc for r in results]}, {len(outcome_lines)} clear failures, "
          f"re-run converged, {ORGS * PER_ORG_WRITES} resources created once each")


def _stack(directory: Path, stack: str, users: str) -> None:
    directory.mkdir(parents=True)
    (directory / "tenancy.yaml").write_text(f"stack: {stack}\n")
    docs: list[dict[str, Any]] = [{
        "apiVersion": "tenancy/v1", "kind": "Organization", "metadata": {"name": "shared"},
        "spec": {"displayName": "Shared", "plan": "pro", "domains": ["shared.example"]},
    }]
    for i in range(5):
        docs.append({
            "apiVersion": "tenancy/v1", "kind": "User", "metadata": {"name": f"{users}{i}", "organization": "shared"},
            "spec": {"email": f"{users}{i}@shared.example", "displayName": f"{users} {i}",
                     "role": "administrator" if i == 0 else "collaborator"},
        })
    (directory / "shared.yaml").write_text(yaml.safe_dump_all(docs))


def test_two_stacks_claiming_one_organization_at_once(tmp_path: Path, server: Server) -> None:
    env = cli_env(server.url, server.token)
    _stack(tmp_path / "east", "east", "e")
    _stack(tmp_path / "west", "west", "w")
    runs = {s: Running(["apply", s, "--yes"], env, tmp_path) for s in ("east", "west")}
    results = {s: r.finish(timeout=60) for s, r in runs.items()}
    stacks = inventory(server.db_url).stacks
    assert len(stacks) == 1, f"resources of both stacks: {stacks}"
    winner = str(next(iter(stacks)))
    loser = "west" if winner == "east" else "east"
    assert results[winner].rc == 0, results[winner].both[-2000:]
    assert results[loser].rc == 1
    assert re.search(r"already exists|is owned by stack 'east'|is owned by stack 'west'", results[loser].both)
    again = tenancy(["apply", loser, "--yes"], env, tmp_path)
    assert again.rc == 1 and f"owned by stack '{winner}'" in again.both, again.both[-2000:]
    assert tenancy(["plan", winner, "--detailed-exitcode"], env, tmp_path).rc == 0
    assert inventory(server.db_url).stacks == stacks
    print(f"\ntwo stacks, one organization: {winner} owns it, {loser} created nothing and is refused on re-run")
