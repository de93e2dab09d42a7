"""Ctrl-C during an apply: the CLI says how far it got and how to finish, never that nothing changed."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from tests.faults.harness import Running, cli_env, inventory, tenancy, write_world

EMPTY_PLAN = "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete."


def test_an_interrupted_apply_says_how_many_changes_were_applied_and_a_rerun_converges(tmp_path: Path):
    db_url = f"sqlite:///{tmp_path}/interrupted.db"
    env = cli_env(db_url)
    declared = write_world(tmp_path / "m", 3, "a")
    running = Running(["apply", "m", "--yes", "--batch-size", "1", "--parallelism", "1"], env, tmp_path)
    assert running.wait_for_outcomes(20, timeout=120), "the apply ended before it could be interrupted"
    running.process.send_signal(signal.SIGINT)
    result = running.finish(timeout=120)
    assert result.rc == 1, result.both
    assert "nothing was changed" not in result.both
    said = re.search(r"interrupted during the apply: (\d+) of (\d+) changes were applied", result.err)
    assert said is not None, result.err
    applied, total = int(said.group(1)), int(said.group(2))
    assert 20 <= applied < total == len(declared)
    assert applied <= sum(inventory(db_url).keys.values())  # each change it counts is in the database
    assert "run `tenancy plan` to see what is left, then apply again" in result.err
    assert "Traceback" not in result.both
    assert tenancy(["apply", "m", "--yes"], env, tmp_path).rc == 0
    assert EMPTY_PLAN in tenancy(["plan", "m"], env, tmp_path).out
