"""Hostile blueprints and tenants: refused or bounded quickly, with a message, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provider import manifests
from provider.blueprints.errors import MAX_RESOURCES_PER_TENANT
from provider.errors import Severity

REPO = Path(__file__).resolve().parents[2]
QUICK = 10.0  # seconds: far above what each case takes, far below a hang


def blueprint(parameters: dict[str, object], resources: str) -> str:
    return ("apiVersion: tenancy/v1\nkind: Blueprint\nmetadata: {name: hostile}\nspec:\n"
            f"  parameters: {json.dumps(parameters)}\n  resources:\n{resources}")


def tenant(parameters: str) -> str:
    return f"apiVersion: tenancy/v1\nkind: Tenant\nmetadata: {{name: victim}}\nspec:\n  blueprint: hostile\n" \
           f"  parameters: {parameters}\n"


ORG = ('    - kind: Organization\n      metadata: {name: "${tenant.name}"}\n'
       "      spec: {displayName: V, plan: free}\n")


def errors_of(tmp_path: Path, bp: str, tn: str) -> tuple[list[str], float]:
    (tmp_path / "bp.yaml").write_text(bp)
    (tmp_path / "t.yaml").write_text(tn)
    started = time.perf_counter()
    _, findings = manifests.collect([tmp_path])
    took = time.perf_counter() - started
    return [str(f) for f in findings if f.severity is Severity.ERROR], took


def test_a_for_each_over_100000_items_is_refused_before_any_is_made(tmp_path: Path) -> None:
    # 99,990 items: as many as one document may hold (the readers refuse past 100,000 values).
    many = "[" + ",".join("0" for _ in range(99_990)) + "]"
    bp = blueprint({"type": "object", "properties": {"many": {"type": "array"}}},
                   ORG + '    - kind: Team\n      forEach: "${params.many}"\n      metadata: {name: "t${index}"}\n'
                         '      spec: {displayName: "T${index}"}\n')
    found, took = errors_of(tmp_path, bp, tenant("{many: " + many + "}"))
    assert len(found) == 1 and f"expands to 99,991 resources, more than the {MAX_RESOURCES_PER_TENANT:,}" in found[0]
    assert "bp.yaml:" in found[0] and found[0].startswith(f"{tmp_path}/t.yaml:1:1: error: Tenant victim (from ")
    assert took < QUICK


def test_a_for_each_past_the_readers_limit_is_refused_by_the_reader(tmp_path: Path) -> None:
    many = "[" + ",".join("0" for _ in range(100_001)) + "]"
    bp = blueprint({"type": "object"}, ORG)
    found, took = errors_of(tmp_path, bp, tenant("{many: " + many + "}"))
    assert any("more than 100,000 values" in e for e in found) and took < QUICK


def test_a_big_list_inserted_into_every_item_of_a_for_each_is_bounded(tmp_path: Path) -> None:
    people = "[" + ",".join(f"p{i}@x.example" for i in range(5_000)) + "]"
    loop = "[" + ",".join(str(i) for i in range(5_000)) + "]"
    bp = blueprint({"type": "object", "properties": {"people": {}, "loop": {}}},
                   ORG + '    - kind: Team\n      forEach: "${params.loop}"\n      metadata: {name: "t${index}"}\n'
                         '      spec: {displayName: "T", externalMembers: "${params.people}"}\n')
    found, took = errors_of(tmp_path, bp, tenant(f"{{people: {people}, loop: {loop}}}"))
    assert len(found) == 1 and "expands to more than 1,000,000 values" in found[0] and took < QUICK


def test_a_text_that_grows_when_interpolated_is_bounded(tmp_path: Path) -> None:
    big = "x" * 40_000
    bp = blueprint({"type": "object", "properties": {"big": {"type": "string"}}},
                   '    - kind: Organization\n      metadata: {name: "${tenant.name}"}\n'
                   '      spec: {displayName: "${params.big}${params.big}", plan: free}\n')
    found, took = errors_of(tmp_path, bp, tenant(f"{{big: {big}}}"))
    assert len(found) == 1 and "grows past 65,536 characters" in found[0] and took < QUICK


def test_deep_parameters_and_long_paths_are_bounded(tmp_path: Path) -> None:
    deep = "{a: " * 95 + "1" + "}" * 95
    path = ".".join(["a"] * 95)
    bp = blueprint({"type": "object"}, ORG.replace("displayName: V", f'displayName: "${{params.{path}}}"'))
    found, took = errors_of(tmp_path, bp, tenant(deep))
    assert len(found) == 1 and "has more than 64 steps" in found[0] and took < QUICK


def test_a_schema_that_refers_to_itself_without_end_is_refused(tmp_path: Path) -> None:
    found, took = errors_of(tmp_path, blueprint({"$ref": "#"}, ORG), tenant("{a: 1}"))
    assert len(found) == 1 and "refers to itself without end" in found[0] and took < QUICK


def test_a_schema_with_a_remote_reference_fetches_nothing(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "http://169.254.169.254/latest/meta-data"}}}
    found, took = errors_of(tmp_path, blueprint(schema, ORG), tenant("{a: 1}"))
    assert len(found) == 1 and "cannot be resolved" in found[0] and took < QUICK


def test_a_pattern_that_backtracks_exponentially_is_refused_before_it_runs(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}
    found, took = errors_of(tmp_path, blueprint(schema, ORG), tenant("{a: " + "a" * 40 + "b}"))
    assert len(found) == 1 and "repeats a repeated group" in found[0] and took < QUICK


def test_expressions_that_would_recurse_are_inserted_as_text(tmp_path: Path) -> None:
    bp = blueprint({"type": "object", "properties": {"a": {"type": "string"}}},
                   ORG.replace("displayName: V", 'displayName: "${params.a}"'))
    (tmp_path / "bp.yaml").write_text(bp)
    (tmp_path / "t.yaml").write_text(tenant('{a: "${params.a}${params.a}"}'))
    [org] = manifests.load([tmp_path])
    assert org.document["spec"]["displayName"] == "${params.a}${params.a}"


@pytest.mark.parametrize("parameters", ["{a: 1}", "[1, 2]", "null", '"text"'])
def test_hostile_cases_through_the_cli_exit_1_without_a_traceback(tmp_path: Path, parameters: str) -> None:
    (tmp_path / "bp.yaml").write_text(blueprint({"$ref": "#/$defs/loop", "$defs": {"loop": {"$ref": "#/$defs/loop"}}},
                                                ORG))
    (tmp_path / "t.yaml").write_text(tenant(parameters))
    run = subprocess.run([sys.executable, "-m", "provider.cli", "validate", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "TENANCY_NO_CACHE": "1"})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert "t.yaml:" in run.stdout
