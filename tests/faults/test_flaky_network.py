"""A flaky network: 25 % of the requests of two 2,000-change applies meet a fault on the way.

A fault-injecting proxy (tests/faults/proxy.py) sits between `tenancy apply` and a real `tenancy serve`.
The first apply creates the 2,000-resource world in changesets (POST /v1/changesets, Idempotency-Key);
the second changes five of its organizations (520 changes) with --batch-size 1, so that every change is
its own POST, PUT (If-Match) or DELETE (If-Match).
Both exit 0 and report every change applied; the next plan is empty; the database holds exactly the
declared resources, and the backend's version counter equals the number of planned writes: no POST
created twice, no PUT or DELETE applied twice. Every 429's Retry-After was honoured.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.faults.harness import PER_ORG_WRITES, assert_holds_exactly, cli_env, env_int, tenancy, write_world
from tests.faults.proxy import FAULTS, FaultProxy
from tests.support import start_server

ORGS = env_int("TENANCY_FAULT_ORGS", 20)
CHANGED = env_int("TENANCY_FAULT_CHANGED_ORGS", 5)
RATE = env_int("TENANCY_FAULT_RATE_PERCENT", 25) / 100
SEED = env_int("TENANCY_FAULT_SEED", int(time.time()))
TIME_LIMIT_S = 240.0


@pytest.mark.slow
def test_apply_through_a_flaky_network_applies_everything_exactly_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'tenancy.db'}"
    lines = [f"seed {SEED}, fault rate {RATE:.0%}"]
    forced = [("POST", "/v1/changesets", "reset-after"), ("POST", "/v1/changesets", "504-after"),
              ("PUT", "/v1/organizations/", "reset-after"), ("DELETE", "/v1/organizations/", "reset-after"),
              ("POST", "/v1/organizations/", "reset-after")]
    with start_server(db) as server, FaultProxy(server.port, rate=RATE, seed=SEED, forced=forced) as proxy:
        env = cli_env(proxy.url, server.token)
        writes = 0
        for flavour, batch, changed in (("a", "50", ORGS), ("b", "1", CHANGED)):
            declared = write_world(tmp_path / "m", ORGS, flavour, changed)
            before = len(proxy.record.requests)
            result = tenancy(["apply", "m", "--yes", "--max-deletions", "100000", "--batch-size", batch], env, tmp_path)
            assert result.rc == 0, result.both[-3000:]
            assert " 0 failed, 0 skipped." in result.out, result.out[-2000:]
            writes += changed * PER_ORG_WRITES
            assert_holds_exactly(db, declared, writes=writes)
            seen = proxy.record.requests[before:]
            faults = sum(1 for s in seen if s.fault)
            lines.append(
                f"apply {flavour} (--batch-size {batch}): {len(seen)} requests, {faults} faults "
                f"({faults / len(seen):.0%}), exit 0 in {result.seconds:.1f} s; database exact, {writes} writes"
            )
        plan = tenancy(["plan", "m", "--detailed-exitcode"], env, tmp_path)
        assert plan.rc == 0, plan.out[-2000:]
    record = proxy.record
    counts = record.faults()
    lines.append(f"in all: {len(record.requests)} requests, {sum(counts.values())} faults ({record.fault_rate:.1%}): "
                 + ", ".join(f"{f} {counts[f]}" for f in FAULTS))
    lost = record.processed_then_lost()
    by_route: Counter[str] = Counter()
    for route, n in lost.items():
        by_route[_route(route)] += n
    lines.append("processed by the backend, answer lost (reset or 504 after forwarding): " + ", ".join(
        f"{route} ×{n}" for route, n in sorted(by_route.items())))
    assert not proxy.forced, f"forced faults that found no request: {proxy.forced}"
    gaps = record.retry_gaps_after_429()
    lines.append(f"429 retries: {len(gaps)}, shortest wait {min((g for _, g in gaps), default=0):.2f} s "
                 f"for Retry-After {proxy.retry_after:g} s")
    print("\n" + "\n".join(lines))
    assert 0.20 <= record.fault_rate <= 0.30, record.fault_rate
    assert all(counts[f] > 0 for f in FAULTS), counts
    assert gaps and all(waited >= after for after, waited in gaps), gaps


def _route(route: str) -> str:
    """`PUT /v1/organizations/org00001/users/user001` → `PUT /v1/organizations/{org}/users/{name}`."""
    method, path = route.split(" ", 1)
    parts = path.split("/")
    if len(parts) > 3 and parts[2] == "organizations":
        parts[3] = "{org}" if len(parts) > 4 else "{name}"
    if len(parts) > 5:
        parts[5] = "{name}"
    return f"{method} {'/'.join(parts)}"
