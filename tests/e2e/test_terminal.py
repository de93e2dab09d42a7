"""On a terminal, apply asks first and shows progress; only `yes` applies."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect

from .conftest import REPO


def spawn(args: list[str], db: Path) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    env.update(TENANCY_BACKEND=f"sqlite:///{db}", NO_COLOR="1", COLUMNS="120")
    return pexpect.spawn(sys.executable, ["-m", "provider.cli", *args], env=env, encoding="utf-8", timeout=120)


def test_apply_asks_on_a_terminal_and_only_yes_applies(tmp_path: Path):
    shop = str(REPO / "examples" / "shop")
    child = spawn(["apply", shop], tmp_path / "t.db")
    child.expect("Only 'yes' will be accepted")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "nothing was changed" in (child.before or "")

    child = spawn(["apply", shop], tmp_path / "t.db")
    child.expect("Only 'yes' will be accepted")
    child.sendline("yes")
    child.expect("Apply complete: 10 applied, 0 failed, 0 skipped.")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
