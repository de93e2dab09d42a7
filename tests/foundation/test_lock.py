"""The locks pin what CI tests: made from pyproject.toml's lists as they are now, and installed here."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)
DIGEST = re.compile(r"^# pyproject-dependencies-sha256: ([0-9a-f]{64})$", re.MULTILINE)


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pins(lock: str) -> dict[str, str]:
    return {canonicalize_name(n): v for n, v in PIN.findall((REPO / lock).read_text(encoding="utf-8"))}


def test_locks_were_made_from_the_current_dependency_lists() -> None:
    project = _project()
    lists = {"dependencies": project["dependencies"], "optional-dependencies": project.get("optional-dependencies", {})}
    wanted = hashlib.sha256(json.dumps(lists, sort_keys=True).encode()).hexdigest()
    for lock in ("requirements.lock", "requirements-test.lock"):
        found = DIGEST.findall((REPO / lock).read_text(encoding="utf-8"))
        assert found == [wanted], f"{lock} is stale: pyproject.toml's dependencies changed; run scripts/lock.sh"


def test_every_declared_dependency_is_pinned_within_its_bounds() -> None:
    project = _project()
    runtime = [Requirement(r) for r in project["dependencies"]]
    tests = [Requirement(r) for r in project["optional-dependencies"]["test"]]
    for lock, requirements in (("requirements.lock", runtime), ("requirements-test.lock", runtime + tests)):
        pins = _pins(lock)
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{requirement.name} is not pinned in {lock}; run scripts/lock.sh"
            assert requirement.specifier.contains(pins[name], prereleases=True), (lock, requirement, pins[name])
        assert all("--hash=sha256:" in block for block in (REPO / lock).read_text().split("\n\n")[1:] if "==" in block)


def test_the_test_environment_is_the_locked_one() -> None:
    """What runs these tests is what the lock pins (the README's test command installs from it)."""
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    differing = {name: (pin, installed.get(name)) for name, pin in _pins("requirements-test.lock").items()
                 if installed.get(name) != pin}
    assert not differing, f"installed versions differ from requirements-test.lock (pin, installed): {differing}"
