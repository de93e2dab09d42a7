"""The scale benchmark still runs end to end (1,000 resources through the real CLI and `tenancy serve`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_runs_at_1000_resources(tmp_path: Path) -> None:
    figures_file = tmp_path / "figures.json"
    run = subprocess.run(
        [
            sys.executable,
            "benchmarks/scale.py",
            "--sizes",
            "1000",
            "--quick",
            "--no-write",
            "--json",
            str(figures_file),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    table = run.stdout[run.stdout.index("| figure |") :]
    for figure in ("cold apply", "no-op plan", "1 % edit plan + apply", "import one organization", "CLI peak RSS"):
        assert f"| {figure}" in table
    assert "| 1,000 (sqlite, 1 worker) |" in table
    # The run judges itself against the targets (the figures, not their values, are checked here).
    assert "Targets at 1,000 resources (this run's figures):" in table
    for target in ("sqlite no-op plan", "sqlite cold apply", "sqlite 1 % edit plan + apply", "sqlite CLI peak RSS"):
        assert f": {target} " in table
    # The figures themselves: measured, plausible, and the ones the table shows.
    [row] = json.loads(figures_file.read_text())
    figures = row["figures"]
    assert row["size"] == 1000 and row["database"] == "sqlite"
    for name in (
        "cold apply",
        "no-op plan",
        "no-op plan, warm caches",
        "no-op plan, one file touched",
        "no-op plan, fresh checkout (no local cache)",
        "1 % edit plan",
        "1 % edit apply",
        "import one organization",
    ):
        assert 0.05 < figures[name] < 90, (name, figures[name])
    assert figures["1 % edit plan + apply"] == figures["1 % edit plan"] + figures["1 % edit apply"]
    assert figures["cold apply throughput (resources/s)"] == 1000 / figures["cold apply"]
    assert 20 < figures["CLI peak RSS (MiB)"] < 1024  # the CLI's own, never the benchmark's
    assert f"| {figures['cold apply']:.1f} s" in table or f"{figures['cold apply']:.2f}" in run.stdout
