"""The large-team benchmark still runs end to end (a small team through the real CLI and `tenancy serve`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_large_team_benchmark_runs_and_its_change_is_one_line() -> None:
    run = subprocess.run(
        [sys.executable, "benchmarks/large_team.py", "--members", "200", "--runs", "1", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    for figure in ("| plan: one member joins |", "| apply: one member joins or leaves |", "load average"):
        assert figure in run.stdout
    one_line = "      ~ spec.members: + user00200\n\nPlan: 0 to create, 1 to update, 0 to replace, 0 to delete."
    assert one_line in run.stdout
