"""Large-team benchmark: one Team of 10,000 members, one member more, through the real `tenancy` command.

    python benchmarks/large_team.py                      # 10,000 members, SQLite file behind `tenancy serve`
    python benchmarks/large_team.py --postgres           # PostgreSQL at 127.0.0.1:5432
    python benchmarks/large_team.py --members 500 --runs 1 --no-write     # the smoke run (tests/scale)

One organization with MEMBERS + 1 users and a Team naming MEMBERS of them is applied cold; then the last
user joins the team (one change: the plan is one `~ spec.members: + ...` line). The `plan` of that change
and its `apply` are each timed RUNS times (the apply alternates joining and leaving, each a one-member
change of the 10,000-member team), and the median is reported with the machine's load. Results are
appended to benchmarks/RESULTS.md (unless --no-write).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scale import Timed, tenancy  # noqa: E402
from provider.connect import connect  # noqa: E402
from tenancy_kinds import ResourceKey  # noqa: E402
from tests.support import new_pg_database, start_server  # noqa: E402

ORGANIZATION, DOMAIN, TEAM = "big", "big.example", "everyone"
USERS_PER_FILE = 1_000


def _doc(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if kind != "Organization":
        metadata["organization"] = ORGANIZATION
    return {"apiVersion": "tenancy/v1", "kind": kind, "metadata": metadata, "spec": spec}


def user_name(i: int) -> str:
    return f"user{i:05d}"


def write_team(directory: Path, members: int, joined: bool) -> None:
    """The team alone in its file: an edit re-reads one file (the others stay in the manifest cache)."""
    names = [user_name(i) for i in range(members + (1 if joined else 0))]
    team = _doc("Team", TEAM, displayName="Everyone", members=names, leader=names[0], shares=["calendars"])
    (directory / "team.yaml").write_text(yaml.dump(team, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))


def write_manifests(directory: Path, members: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tenancy.yaml").write_text("stack: large-team\n")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    organization = _doc("Organization", ORGANIZATION, displayName="Big Corp", plan="pro", domains=[DOMAIN])
    (directory / "organization.yaml").write_text(yaml.dump(organization, Dumper=dumper))
    for start in range(0, members + 1, USERS_PER_FILE):
        users = [
            _doc("User", user_name(i), email=f"{user_name(i)}@{DOMAIN}", displayName=f"User {i}",
                 role="administrator" if i == 0 else "collaborator")
            for i in range(start, min(start + USERS_PER_FILE, members + 1))
        ]
        (directory / f"users-{start // USERS_PER_FILE:03d}.yaml").write_text(
            yaml.dump_all(users, Dumper=dumper, sort_keys=False)
        )
    write_team(directory, members, joined=False)


def _run(name: str, args: list[str], env: dict[str, str], cwd: Path, expected: int = 0) -> Timed:
    timed = tenancy(args, env, cwd)
    if timed.rc != expected:
        raise SystemExit(f"{name} exited {timed.rc}, not {expected}:\n{timed.tail}")
    return timed


def measure(members: int, runs: int, database: str, work: Path) -> dict[str, Any]:
    manifests = work / "manifests"
    write_manifests(manifests, members)
    db_url = new_pg_database("tenancy_bench") if database == "postgresql" else f"sqlite:///{work}/large-team.db"
    server = start_server(db_url)
    env = {**os.environ, "TENANCY_BACKEND": server.url, "TENANCY_TOKEN": server.token, "NO_COLOR": "1",
           "TENANCY_CACHE_DIR": str(work / "manifest-cache")}
    env.pop("TENANCY_NO_CACHE", None)
    path = str(manifests)
    figures: dict[str, Any] = {"load before": os.getloadavg()}
    try:
        figures["cold apply"] = _run("cold apply", ["apply", path, "--yes"], env, work).seconds
        write_team(manifests, members, joined=True)
        plans = [_run("plan", ["plan", path, "--detailed-exitcode"], env, work, 2) for _ in range(runs)]
        figures["plan"] = [p.seconds for p in plans]
        figures["plan CPU"] = [p.cpu_seconds for p in plans]
        figures["plan tail"] = plans[-1].tail
        targeted = [_run("targeted plan", ["plan", path, "--target", f"Team/{ORGANIZATION}/{TEAM}",
                                           "--detailed-exitcode"], env, work, 2) for _ in range(runs)]
        figures["targeted plan"] = [p.seconds for p in targeted]
        applies = []
        for n in range(runs):  # join, leave, join...: each a one-member change of the large team
            write_team(manifests, members, joined=n % 2 == 0)
            applies.append(_run("apply", ["apply", path, "--yes"], env, work))
        figures["apply"] = [a.seconds for a in applies]
        figures["apply CPU"] = [a.cpu_seconds for a in applies]
        figures["apply tail"] = applies[-1].tail
        _run("plan after apply", ["plan", path, "--detailed-exitcode"], env, work, 0)  # converged
        figures["server update"] = server_updates(server.url, server.token, members, runs)
    finally:
        server.stop()
    figures["load after"] = os.getloadavg()
    return figures


def server_updates(url: str, token: str, members: int, runs: int) -> list[float]:
    """The backend's own share: one PUT of the team with a member more or less, timed from here."""
    client = connect(url, token)
    key = ResourceKey("Team", ORGANIZATION, TEAM)
    seconds = []
    try:
        for n in range(runs):
            team = client.get(key)
            assert team is not None
            team["spec"]["members"] = [user_name(i) for i in range(members + (n % 2))]
            start = time.perf_counter()
            client.update(team, if_match=team["metadata"]["resourceVersion"])
            seconds.append(time.perf_counter() - start)
    finally:
        client.close()
    return seconds


def report(members: int, runs: int, database: str, figures: dict[str, Any], command: str) -> str:
    def median(name: str) -> str:
        values = figures[name]
        return f"{statistics.median(values):.2f} s (runs: {', '.join(f'{v:.2f}' for v in values)})"

    load = " → ".join(", ".join(f"{x:.1f}" for x in figures[k]) for k in ("load before", "load after"))
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    return "\n".join([
        f"### Large team: {members:,} members, one change ({database}), {dt.date.today().isoformat()}",
        "",
        f"Machine: {machine}; load average (1, 5, 15 min) before → after: {load}.",
        f"Command: `{command}`",
        "",
        "| figure | median of runs |",
        "|---|---:|",
        f"| cold apply ({members + 1:,} users, the team) | {figures['cold apply']:.2f} s |",
        f"| plan: one member joins | {median('plan')} |",
        f"| plan, CLI CPU time | {median('plan CPU')} |",
        f"| plan --target Team/{ORGANIZATION}/{TEAM} | {median('targeted plan')} |",
        f"| apply: one member joins or leaves | {median('apply')} |",
        f"| apply, CLI CPU time | {median('apply CPU')} |",
        f"| the backend alone: one PUT of the team (HTTP, timed by the client) | {median('server update')} |",
        "",
        "The plan's last lines:",
        "",
        "```",
        figures["plan tail"],
        "```",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL at 127.0.0.1:5432 instead of SQLite")
    parser.add_argument("--no-write", action="store_true", help="print the table, do not touch RESULTS.md")
    args = parser.parse_args()
    database = "postgresql" if args.postgres else "sqlite"
    with tempfile.TemporaryDirectory(prefix="tenancy-large-team-") as tmp:
        figures = measure(args.members, max(1, args.runs), database, Path(tmp))
    table = report(args.members, max(1, args.runs), database, figures, "python " + " ".join(sys.argv))
    print(table)
    if not args.no_write:
        results = REPO / "benchmarks" / "RESULTS.md"
        results.write_text(results.read_text().rstrip() + "\n\n" + table)


if __name__ == "__main__":
    main()
