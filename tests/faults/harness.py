"""What the fault tests share: the real `tenancy` command as a subprocess, a 2,000-resource world in two
flavours, an exact inventory of a tenancy database, and a per-test time limit.

The world is N organizations of 100 resources each (benchmarks/generate.py's shape). Flavour "a" is
what the generator writes; flavour "b" changes every one of those resources (display names, plans,
memberships, quotas) and swaps each organization's four aliases for four others, so that going a → b
updates 96 resources, creates 4 and deletes 4 per organization: 100 writes, each bumping the backend's
version counter exactly once, which is how the tests prove that nothing was applied twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from sqlalchemy import distinct, func, select

from benchmarks.generate import USERS_PER_ORG, organization_documents
from tenancy_kinds import KINDS

REPO = Path(__file__).resolve().parents[2]
STACK = "faults"
PER_ORG_WRITES = 100  # version bumps per organization for a → b, b → a, and ∅ → a


# --- a per-test time limit (pytest-timeout is not a dependency) ----------------------------------------
#
# The limit is a budget of CPU seconds: what the test's process and every process it started (servers, CLI
# runs, their children) spend while the test runs. A loaded machine stretches wall time but not CPU time,
# so the same budget holds on a quiet laptop and on a busy CI box; a test that does more work than it should
# still fails. A hang spends no CPU: a wall-clock guard of WALL_FACTOR times the budget catches it.


class TimeLimitExceeded(Exception):
    pass


WALL_FACTOR = 3.0
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_times() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds of it and its reaped children), for every process /proc shows."""
    out: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        # after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 1-based from state = 1
        ppid = int(fields[1])
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        out[int(entry.name)] = (ppid, ticks / _TICK)
    return out


def tree_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds spent by `root` (this process) and all its descendants, reaped ones included."""
    root = os.getpid() if root is None else root
    times = _proc_times()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in times.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in times:
            total += times[pid][1]
        todo += children.get(pid, [])
    return total


@contextmanager
def time_limit(seconds: float, what: str = "the test") -> Iterator[None]:
    """Raise TimeLimitExceeded in the main thread once the process tree spent `seconds` of CPU, or after
    WALL_FACTOR × `seconds` of wall time (SIGALRM; a no-op where there is no /proc)."""
    if os.name != "posix" or seconds <= 0 or not os.path.isdir("/proc"):
        yield
        return
    reason: list[str] = []

    def expire(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(reason[0] if reason else
                                f"{what} exceeded its wall-clock guard of {seconds * WALL_FACTOR:.0f} s (a hang?)")

    stop = threading.Event()
    start_cpu = tree_cpu_seconds()

    def watch() -> None:
        while not stop.wait(0.5):
            spent = tree_cpu_seconds() - start_cpu
            if spent > seconds:
                reason.append(f"{what} exceeded its time limit of {seconds:.0f} CPU seconds ({spent:.0f} s spent)")
                signal.setitimer(signal.ITIMER_REAL, 0.001)  # hand the failure to the main thread
                return

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds * WALL_FACTOR)
    watcher = threading.Thread(target=watch, name="cpu-time-limit", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


DEFAULT_TIME_LIMIT_S = 120.0


@pytest.fixture(autouse=True)
def bounded_in_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test of a package whose conftest imports this runs under a time limit (the module's
    TIME_LIMIT_S, default 120 s): CPU seconds of the test's process tree, see time_limit."""
    seconds = float(getattr(request.module, "TIME_LIMIT_S", DEFAULT_TIME_LIMIT_S))
    with time_limit(seconds, request.node.nodeid):
        yield


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


# --- the world ------------------------------------------------------------------------------------------


def documents(organizations: int, flavour: str, changed: int | None = None) -> list[dict[str, Any]]:
    """The world in `flavour`; with `changed`, only the first `changed` organizations in flavour b."""
    out: list[dict[str, Any]] = []
    for i in range(organizations):
        b = flavour == "b" and (changed is None or i < changed)
        out += _flavour_b(i) if b else organization_documents(i)
    return out


def _flavour_b(i: int) -> list[dict[str, Any]]:
    docs = organization_documents(i)
    kept = []
    for d in docs:
        spec, kind = d["spec"], d["kind"]
        if kind == "Organization":
            spec["displayName"] += " (b)"
        elif kind == "MailboxQuota":
            spec["maxAddresses"] += 10
        elif kind == "User":
            spec["displayName"] += " (b)"
            spec["subscription"] = {"free": "entry", "entry": "pro", "pro": "free"}[spec["subscription"]]
        elif kind == "Team":
            t = int(d["metadata"]["name"].removeprefix("team"))
            members = [f"user{u:03d}" for u in range(t * 10 + 5, min(t * 10 + 15, USERS_PER_ORG))]
            spec.update(members=members, leader=members[-1], description=f"rotated team {t}")
        elif kind == "Alias":
            a = int(d["metadata"]["name"].removeprefix("alias"))
            domain = spec["address"].split("@", 1)[1]
            d["metadata"]["name"] = f"mail{a}"
            spec.update(address=f"mail{a}@{domain}", user=f"user{a + 4:03d}")
        elif kind == "CustomerSubscription":
            spec["customerName"] += " (b)"
            spec["users"] += 5
        kept.append(d)
    return kept


def write_world(directory: Path, organizations: int, flavour: str, changed: int | None = None) -> list[dict[str, Any]]:
    """Write the world's manifests (one file per organization, `stack: faults`); its documents."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    (directory / "tenancy.yaml").write_text(f"stack: {STACK}\n")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    docs = documents(organizations, flavour, changed)
    by_org: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_org.setdefault(d["metadata"].get("organization") or d["metadata"]["name"], []).append(d)
    for org, items in by_org.items():
        (directory / f"{org}.yaml").write_text(yaml.dump_all(items, Dumper=dumper, sort_keys=False))
    return docs


# --- the CLI --------------------------------------------------------------------------------------------


@dataclass
class Result:
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def both(self) -> str:
        return self.out + self.err


def cli_env(backend: str, token: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    env.update({"TENANCY_BACKEND": backend, "NO_COLOR": "1", "PYTHONPATH": str(REPO)})
    if token:
        env["TENANCY_TOKEN"] = token
    env.update(extra)
    return env


def tenancy(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 240) -> Result:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "provider.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


class Running:
    """A `tenancy` subprocess whose stderr (the apply's outcome lines) is read as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.started = time.monotonic()
        self._out: IO[bytes] = open(cwd / f".out-{os.getpid()}-{id(self)}", "w+b")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "provider.cli", *args],
            cwd=cwd, env=env, stdout=self._out, stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        self.lines: list[str] = []

    def wait_for_outcomes(self, count: int, timeout: float) -> bool:
        """Read stderr until `count` outcome lines arrived (True) or the process ended (False)."""
        deadline = time.monotonic() + timeout
        assert self.process.stderr is not None
        seen = sum(1 for line in self.lines if _is_outcome(line))
        while seen < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {seen} of {count} outcomes within {timeout} s")
            line = self.process.stderr.readline()
            if not line:
                return False
            self.lines.append(line)
            seen += _is_outcome(line)
        return True

    def kill(self) -> None:
        self.process.kill()

    def finish(self, timeout: float) -> Result:
        assert self.process.stderr is not None
        try:
            _, rest = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise
        self.lines.append(rest or "")
        self._out.seek(0)
        out = self._out.read().decode("utf-8", "replace")
        self._out.close()
        Path(self._out.name).unlink(missing_ok=True)
        return Result(self.process.returncode, out, "".join(self.lines), time.monotonic() - self.started)


def _is_outcome(line: str) -> bool:
    return line.startswith(("applied: ", "failed: ", "skipped: "))


# --- the database, exactly ------------------------------------------------------------------------------


@dataclass
class Inventory:
    """What a tenancy database holds, read straight from its tables (not through the API)."""

    keys: Counter[tuple[str, str, str]]
    version_counter: int
    max_version: int
    logged_revisions: int  # revisions the change log drew for what no resourceVersion shows (deletions)
    team_refs: dict[tuple[str, str], dict[str, set[str]]]
    alias_refs: dict[tuple[str, str], set[str]]
    claims: Counter[tuple[str, str]]
    orphan_claims: int
    orphan_refs: int
    stacks: Counter[str | None]
    used_addresses: dict[str, int]


def inventory(db_url: str) -> Inventory:
    from tenancy_backend.db import (
        RESOURCE_VERSION_COUNTER,
        changes,
        claims,
        counters,
        create_db_engine,
        refs,
        resources,
    )
    from tenancy_backend.documents import used_addresses

    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(select(resources.c.id, resources.c.kind, resources.c.organization,
                                            resources.c.name, resources.c.resource_version, resources.c.stack,
                                            resources.c.spec)))
            ids = {r.id: r for r in rows}
            ref_rows = list(conn.execute(select(refs.c.resource_id, refs.c.field, refs.c.target_name)))
            claim_rows = list(conn.execute(select(claims.c.resource_id, claims.c.namespace, claims.c.key)))
            counter = conn.execute(
                select(counters.c.value).where(counters.c.name == RESOURCE_VERSION_COUNTER)
            ).scalar_one()
            logged = conn.execute(select(func.count(distinct(changes.c.revision)))).scalar_one()
            domains = sorted({r.spec["domain"] for r in rows if r.kind == "MailboxQuota"})
            used = used_addresses(conn, domains) if domains else {}
    finally:
        engine.dispose()
    team_refs: dict[tuple[str, str], dict[str, set[str]]] = {}
    alias_refs: dict[tuple[str, str], set[str]] = {}
    for r in ref_rows:
        owner = ids.get(r.resource_id)
        if owner is None:
            continue
        if owner.kind == "Team":
            team_refs.setdefault((owner.organization, owner.name), {}).setdefault(r.field, set()).add(r.target_name)
        elif owner.kind == "Alias":
            alias_refs.setdefault((owner.organization, owner.name), set()).add(r.target_name)
    return Inventory(
        keys=Counter((r.kind, r.organization, r.name) for r in rows),
        version_counter=int(counter),
        logged_revisions=int(logged),
        max_version=max((int(r.resource_version) for r in rows), default=0),
        team_refs=team_refs,
        alias_refs=alias_refs,
        claims=Counter((c.namespace, c.key) for c in claim_rows),
        orphan_claims=sum(1 for c in claim_rows if c.resource_id not in ids),
        orphan_refs=sum(1 for r in ref_rows if r.resource_id not in ids),
        stacks=Counter(r.stack for r in rows),
        used_addresses=dict(used),
    )


def assert_holds_exactly(db_url: str, declared: list[dict[str, Any]], *, writes: int | None = None) -> Inventory:
    """The database holds the declared resources and nothing else, with consistent side tables."""
    inv = inventory(db_url)
    wanted = Counter(
        (d["kind"], d["metadata"].get("organization", "") if KINDS[d["kind"]].scoped else "", d["metadata"]["name"])
        for d in declared
    )
    duplicates = [k for k, n in inv.keys.items() if n > 1]
    assert not duplicates, f"duplicate resources: {duplicates[:5]}"
    missing, extra = wanted - inv.keys, inv.keys - wanted
    assert not missing and not extra, (
        f"missing {sorted(missing)[:5]} ({len(missing)}), extra {sorted(extra)[:5]} ({len(extra)})"
    )
    assert set(inv.stacks) == {STACK}, f"stack labels: {inv.stacks}"
    assert inv.orphan_claims == 0 and inv.orphan_refs == 0, (inv.orphan_claims, inv.orphan_refs)
    for d in declared:
        org, name, spec = d["metadata"].get("organization", ""), d["metadata"]["name"], d["spec"]
        if d["kind"] == "Team":
            held = inv.team_refs.get((org, name), {})
            assert held.get("members", set()) == set(spec["members"]), f"team {org}/{name} members: {held}"
            assert held.get("leader", set()) == {spec["leader"]}, f"team {org}/{name} leader: {held}"
        elif d["kind"] == "Alias":
            assert inv.alias_refs.get((org, name)) == {spec["user"]}, f"alias {org}/{name}"
        elif d["kind"] == "MailboxQuota":
            assert inv.used_addresses.get(spec["domain"]) == USERS_PER_ORG, (spec["domain"], inv.used_addresses)
    users_and_aliases = sum(1 for d in declared if d["kind"] in ("User", "Alias"))
    address_claims = sum(n for (ns, _), n in inv.claims.items() if ns == "address")
    assert address_claims == users_and_aliases, f"{address_claims} address claims for {users_and_aliases} addresses"
    assert max(inv.claims.values(), default=1) == 1
    if writes is not None:
        # The counter hands out every resourceVersion, and one revision to each transaction that logged a
        # change no resourceVersion shows (a deletion): exactly that many, or something ran twice or not at all.
        assert inv.version_counter == writes + inv.logged_revisions, (
            f"the backend handed out {inv.version_counter} versions for {writes} planned writes "
            f"and {inv.logged_revisions} logged revisions: something was applied twice (or not at all)"
        )
    assert inv.max_version <= inv.version_counter
    return inv


def table_snapshot(db: Any) -> list[tuple[str, list[str]]]:
    """Every row of every table of a tenancy database, canonically serialised (for 'nothing changed').

    `db` is a database URL or an SQLAlchemy engine (reused: cheaper when called often)."""
    import json

    from tenancy_backend.db import create_db_engine, metadata

    engine = create_db_engine(db) if isinstance(db, str) else db
    out = []
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()
                out.append((table.name, [json.dumps(dict(r), sort_keys=True, default=str) for r in rows]))
    finally:
        if isinstance(db, str):
            engine.dispose()
    return out
