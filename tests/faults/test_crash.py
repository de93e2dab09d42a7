"""Crash mid-apply: `kill -9` at random moments of a 2,000-resource apply, then converge.

Two ways to crash, TENANCY_FAULT_ROUNDS rounds each (default 10; more by hand), run side by side (one
per core: they share nothing), with a third scenario beside them (the backend killed and left down):
- backend killed: `tenancy serve` (SQLite) is SIGKILLed after a random number of the apply's reported
  outcomes and started again on the same port; the running apply rides through on its retries.
- CLI killed: the `tenancy apply` process itself (SQLite, embedded) is SIGKILLed the same way.
Round 0 creates the world (∅ → a); later rounds alternate a → b → a, each updating 1,920 resources,
creating 80 and deleting 80. After every round a re-apply exits 0, the next plan is empty, and the
database holds exactly the declared resources: no duplicate, every team's members and leader and every
alias's target as declared, address claims one per user or alias, quota usage right, and the version
counter equal to the number of planned writes (nothing applied twice, nothing half-applied).

TENANCY_FAULT_SEED fixes the random kill points; TENANCY_FAULT_ORGS the size (100 resources each).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.faults.harness import (
    PER_ORG_WRITES,
    Result,
    Running,
    assert_holds_exactly,
    cli_env,
    documents,
    env_int,
    inventory,
    tenancy,
    write_world,
)
from tests.support import Server, start_server

ROUNDS = env_int("TENANCY_FAULT_ROUNDS", 10)
ORGS = env_int("TENANCY_FAULT_ORGS", 20)
SEED = env_int("TENANCY_FAULT_SEED", int(time.time()))
TIME_LIMIT_S = 90.0 + ROUNDS * ORGS * 1.2
APPLY = ["apply", "m", "--yes", "--max-deletions", "100000"]
EMPTY_PLAN = "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete."


class Scenario:
    """One crash loop, run in its own thread; what it started can be killed from the main thread."""

    def __init__(self, name: str, directory: Path, rounds: Callable[[Scenario], None]) -> None:
        self.name, self.directory, self._rounds = name, directory, rounds
        self.lines: list[str] = []
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        self.server: Server | None = None
        self.apply: Running | None = None
        directory.mkdir(parents=True)

    def run(self) -> None:
        try:
            self._rounds(self)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            self.error = e
        finally:
            if self.server is not None:
                self.server.stop()

    def abort(self) -> None:
        self.stopped.set()
        if self.apply is not None and self.apply.process.poll() is None:
            self.apply.kill()
        if self.server is not None:
            self.server.kill()

    def round_header(self, round_: int, rng: random.Random) -> tuple[list[dict[str, Any]], int, int]:
        if self.stopped.is_set():
            raise RuntimeError("aborted")
        declared = write_world(self.directory / "m", ORGS, "ab"[round_ % 2])
        changes = ORGS * (PER_ORG_WRITES + (0 if round_ == 0 else 4))
        return declared, changes, rng.randint(1, changes - 1)


def _converged(again: Result, plan: Result | None) -> None:
    assert again.rc == 0, f"re-apply after the crash failed:\n{again.both[-3000:]}"
    if plan is None:  # the re-apply changed nothing, so its own plan is the next plan
        assert EMPTY_PLAN in again.out, again.out[-2000:]
    else:
        assert plan.rc == 0, f"the plan after the re-apply is not empty (rc {plan.rc}):\n{plan.out[-3000:]}"


def backend_killed(sc: Scenario) -> None:
    rng = random.Random(SEED)
    sc.server = start_server(f"sqlite:///{sc.directory / 'tenancy.db'}")
    env = cli_env(sc.server.url, sc.server.token)
    writes = 0
    for round_ in range(ROUNDS):
        declared, changes, point = sc.round_header(round_, rng)
        sc.apply = Running(APPLY, env, sc.directory)
        reached = sc.apply.wait_for_outcomes(point, timeout=120)
        sc.server.kill()
        killed_at = time.monotonic() - sc.apply.started
        sc.server.start()
        first = sc.apply.finish(timeout=180)
        again = tenancy(APPLY, env, sc.directory)
        nothing_left = EMPTY_PLAN in again.out
        plan = None if nothing_left else tenancy(["plan", "m", "--detailed-exitcode"], env, sc.directory)
        _converged(again, plan)
        writes += ORGS * PER_ORG_WRITES
        assert_holds_exactly(sc.server.db_url, declared, writes=writes)
        sc.lines.append(
            f"round {round_}: {changes} changes, backend killed after {point} outcomes ({killed_at:.1f} s, "
            f"reached={reached}); the interrupted apply exited {first.rc}; re-apply exited 0 "
            f"({'nothing left' if nothing_left else 'finished the rest'}); database exact, {writes} writes"
        )


def cli_killed(sc: Scenario) -> None:
    rng = random.Random(SEED + 1)
    db = f"sqlite:///{sc.directory / 'tenancy.db'}"
    env = cli_env(db)
    writes = 0
    for round_ in range(ROUNDS):
        declared, changes, point = sc.round_header(round_, rng)
        sc.apply = Running(APPLY, env, sc.directory)
        reached = sc.apply.wait_for_outcomes(point, timeout=120)
        sc.apply.kill()
        killed_at = time.monotonic() - sc.apply.started
        first = sc.apply.finish(timeout=30)
        assert first.rc == -9 or not reached, first.rc
        again = tenancy(APPLY, env, sc.directory)
        plan = tenancy(["plan", "m", "--detailed-exitcode"], env, sc.directory)
        _converged(again, plan)
        writes += ORGS * PER_ORG_WRITES
        assert_holds_exactly(db, declared, writes=writes)
        summary = again.out.strip().splitlines()[-1] if again.out.strip() else ""
        sc.lines.append(
            f"round {round_}: {changes} changes, CLI killed after {point} outcomes ({killed_at:.1f} s); "
            f"re-apply exited 0 ({summary}); next plan empty; database exact, {writes} writes"
        )


def backend_stays_down(sc: Scenario) -> None:
    """The backend dies mid-apply and stays down: the apply reports every change within one retry budget
    (not once per remaining change), and once the backend is back a re-apply converges. (Mostly waiting:
    it shares the time of the two CPU-bound loops.)"""
    sc.server = start_server(f"sqlite:///{sc.directory / 'tenancy.db'}")
    env = cli_env(sc.server.url, sc.server.token)
    declared = write_world(sc.directory / "m", 5, "a")
    sc.apply = Running(APPLY, env, sc.directory)
    sc.apply.wait_for_outcomes(100, timeout=60)
    sc.server.kill()
    down_at = time.monotonic()
    first = sc.apply.finish(timeout=120)
    gave_up = time.monotonic() - down_at
    assert first.rc == 1 and "cannot reach the tenancy backend" in first.both, first.both[-2000:]
    assert "Traceback" not in first.both
    summary = first.out.strip().splitlines()[-2]
    sc.server.start()
    again = tenancy(APPLY, env, sc.directory)
    assert again.rc == 0, again.both[-2000:]
    assert tenancy(["plan", "m", "--detailed-exitcode"], env, sc.directory).rc == 0
    assert_holds_exactly(sc.server.db_url, declared, writes=5 * PER_ORG_WRITES)
    sc.lines.append(f"backend killed after 100 of 500 outcomes and left down: the apply gave up {gave_up:.1f} s later "
                    f"({summary}); after a restart the re-apply converged, database exact")
    assert gave_up < 60, gave_up


@pytest.mark.slow
def test_kill_mid_apply_converges(tmp_path: Path) -> None:
    scenarios = [Scenario("backend killed", tmp_path / "backend", backend_killed),
                 Scenario("CLI killed", tmp_path / "cli", cli_killed),
                 Scenario("backend stays down", tmp_path / "down", backend_stays_down)]
    threads = [threading.Thread(target=s.run, name=s.name, daemon=True) for s in scenarios]
    started = time.monotonic()
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)  # short joins: the time limit (SIGALRM) can interrupt the main thread
    except BaseException:
        for s in scenarios:
            s.abort()
        raise
    finally:
        print(f"\nseed {SEED}, {ROUNDS} rounds of {ORGS * 100} resources each way, "
              f"{time.monotonic() - started:.0f} s in all")
        for s in scenarios:
            print(f"[{s.name}]\n" + "\n".join(s.lines))
    for s in scenarios:
        if s.error is not None:
            raise AssertionError(f"{s.name}, after {len(s.lines)} good rounds") from s.error
    assert [len(s.lines) for s in scenarios] == [ROUNDS, ROUNDS, 1]


def test_changeset_replayed_across_a_backend_restart(tmp_path: Path) -> None:
    """An Idempotency-Key outlives the process: a retry after kill -9 replays, never applies twice."""
    server = start_server(f"sqlite:///{tmp_path / 'tenancy.db'}")
    try:
        docs = documents(1, "a")
        body = {"operations": [{"op": "create", "kind": d["kind"], "organization": d["metadata"].get("organization"),
                                "name": d["metadata"]["name"], "document": d} for d in docs]}
        headers = {**server.headers(), "Idempotency-Key": "crash-replay-1"}
        first = requests.post(server.url + "/v1/changesets", json=body, headers=headers, timeout=60)
        assert first.status_code == 200, first.text[:500]
        server.kill()
        server.start()
        again = requests.post(server.url + "/v1/changesets", json=body, headers=headers, timeout=60)
        assert again.status_code == 200 and again.json() == first.json()
        assert inventory(server.db_url).version_counter == len(docs)
    finally:
        server.stop()
