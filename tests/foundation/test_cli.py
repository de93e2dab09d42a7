"""`tenancy validate` and `tenancy schema`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from provider.cli import validate
from provider.schemas import render_schemas

from .helpers import BASE, STRONG, replace, write

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tenancy() -> click.Group:
    """The two commands on a group of their own, independent of the other command modules."""

    @click.group()
    def group() -> None:
        pass

    validate.register(group)
    return group


def invoke(group: click.Group, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(group, list(args), env=env or {"ADA_PW": STRONG}, catch_exceptions=False)


def test_validate_clean(tenancy: click.Group, tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": BASE})
    result = invoke(tenancy, "validate", str(tmp_path))
    assert (result.exit_code, result.output) == (0, "OK: 10 resources in 1 file.\n")


def test_validate_prints_every_finding_sorted_then_a_summary(tenancy: click.Group, tmp_path: Path) -> None:
    bad = replace(replace(BASE, "user: bob", "user: nobody"), "leader: ada", "leader: zed")
    write(tmp_path, {"b.yaml": bad, "a.yaml": "# empty\n"})
    result = invoke(tenancy, "validate", str(tmp_path))
    lines = result.output.splitlines()
    assert result.exit_code == 1
    file = str(tmp_path / "b.yaml")
    assert lines[:-1] == sorted(lines[:-1], key=lambda line: int(line.split(":")[1]))
    assert all(line.startswith(file + ":") and ": error: " in line for line in lines[:-1])
    assert len(lines) == 4
    assert lines[-1] == "3 errors in 2 files (10 resources)."


def test_warnings_alone_exit_zero(tenancy: click.Group, tmp_path: Path) -> None:
    bob = "email: bob@acme.example\n  displayName: Bob\n  role: "
    write(tmp_path, {"a.yaml": replace(BASE, bob + "collaborator", bob + "administrator")})
    result = invoke(tenancy, "validate", str(tmp_path))
    assert result.exit_code == 0
    assert ": warning: administrators are 2 of the 5 users" in result.output
    assert result.output.splitlines()[-1] == "OK: 10 resources in 1 file, 1 warning."


def test_validate_json(tenancy: click.Group, tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": replace(BASE, "maxAddresses: 10", "maxAddresses: 3")})
    result = invoke(tenancy, "validate", "--json", str(tmp_path))
    assert result.exit_code == 1
    findings = json.loads(result.output)
    assert {f["field"] for f in findings} == {"spec.maxAddresses"}
    assert set(findings[0]) == {"file", "line", "col", "severity", "field", "message"}
    write(tmp_path, {"a.yaml": BASE})
    ok = invoke(tenancy, "validate", "--json", str(tmp_path))
    assert (ok.exit_code, json.loads(ok.output)) == (0, [])


def test_loader_errors_stop_before_rules(tenancy: click.Group, tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": BASE.replace("kind: Team", "kind: Teem")})
    result = invoke(tenancy, "validate", str(tmp_path))
    assert result.exit_code == 1
    assert "did you mean Team?" in result.output
    assert result.output.splitlines()[-1] == "1 error in 1 file (9 resources)."


def test_skip_secrets(tenancy: click.Group, tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": BASE})
    assert invoke(tenancy, "validate", str(tmp_path), env={"ADA_PW": ""}).exit_code == 1
    assert invoke(tenancy, "validate", "--skip-secrets", str(tmp_path), env={"ADA_PW": ""}).exit_code == 0


def test_schema_write_and_check(tenancy: click.Group, tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    stale = invoke(tenancy, "schema", "--out", str(out), "--check")
    assert stale.exit_code == 1
    assert f"{out / 'user.schema.json'}: missing" in stale.output
    written = invoke(tenancy, "schema", "--out", str(out))
    assert written.exit_code == 0 and f"Wrote {len(render_schemas())} files" in written.output
    fresh = invoke(tenancy, "schema", "--out", str(out), "--check")
    assert (fresh.exit_code, fresh.output) == (0, f"{out} is up to date.\n")


def test_summary_wording() -> None:
    from provider.errors import Finding, Severity

    error = Finding("f", 1, 1, Severity.ERROR, "m")
    warning = Finding("f", 2, 1, Severity.WARNING, "m")
    assert validate.summary([error, error, warning], 3, 14) == "2 errors, 1 warning in 3 files (14 resources)."
    assert validate.summary([warning], 3, 14) == "OK: 14 resources in 3 files, 1 warning."
    assert validate.summary([], 1, 1) == "OK: 1 resource in 1 file."


def run_tenancy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TENANCY_", "ADA_"))}
    return subprocess.run(
        [sys.executable, "-m", "provider.cli", *args],
        cwd=REPO, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=120,
    )


def test_validate_examples_through_the_console_script() -> None:
    """Needs provider.cli's other command modules (engine, backend) to import."""
    result = run_tenancy("validate", "examples/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ") and " resources in " in result.stdout


def test_console_script_reports_bad_paths_without_traceback(tmp_path: Path) -> None:
    result = run_tenancy("validate", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert "no such file or directory" in result.stderr and "Traceback" not in result.stderr


def test_plan_refuses_two_output_formats_at_once(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": BASE})
    run = subprocess.run(
        [sys.executable, "-m", "provider.cli", "plan", str(tmp_path), "--json", "--format", "markdown",
         "--backend", f"sqlite:///{tmp_path / 'never.db'}"],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 1
    assert "--json and --format markdown ask for two outputs; give one of them" in run.stderr
    assert run.stdout == "" and not (tmp_path / "never.db").exists()  # refused before touching any backend
