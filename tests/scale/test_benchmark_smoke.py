"""The scale benchmark still runs end to end (1,000 resources through the real CLI and `tenancy serve`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_runs_at_1000_resources() -> None:
    run = subprocess.run(
        [sys.executable, "benchmarks/scale.py", "--sizes", "1000", "--quick", "--no-write"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    table = run.stdout[run.stdout.index("| figure |"):]
    for figure in ("cold apply", "no-op plan", "1 % edit plan + apply", "import one organization", "CLI peak RSS"):
        assert f"| {figure}" in table
    assert "| 1,000 (sqlite, 1 worker) |" in table
    # The run judges itself against the targets (the figures, not their values, are checked here).
    assert "Targets at 1,000 resources (this run's figures):" in table
    for target in ("sqlite no-op plan", "sqlite cold apply", "sqlite 1 % edit plan + apply", "sqlite CLI peak RSS"):
        assert f": {target} " in table
