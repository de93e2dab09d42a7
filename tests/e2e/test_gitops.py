"""The GitOps workflows' own commands, run as the pipelines would, against an embedded backend.

What cannot run here (the CI services, posting comments) is left out: every `run:`/`script:` line that
calls `tenancy` is executed in order, per job, with the manifests of examples/ as the repository's tenants
and examples/policies/ as its policies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from provider.connect import connect
from tenancy_kinds import ResourceKey

from .conftest import REPO

GITOPS = REPO / "examples" / "gitops"


def _github_jobs() -> dict[str, list[str]]:
    workflow = yaml.safe_load((GITOPS / ".github" / "workflows" / "tenancy.yml").read_text())
    jobs = {}
    for name, job in workflow["jobs"].items():
        scripts = [step["run"] for step in job["steps"] if "run" in step and "tenancy " in step["run"]]
        jobs[name] = scripts
    return jobs


def _gitlab_jobs() -> dict[str, list[str]]:
    pipeline = yaml.safe_load((GITOPS / ".gitlab-ci.yml").read_text())
    return {
        name: [line for line in job["script"] if line.startswith("tenancy ")]
        for name, job in pipeline.items()
        if isinstance(job, dict) and "script" in job
    }


def _run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _environment(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "examples", repo / "tenants", ignore=shutil.ignore_patterns("gitops", "pulumi", "policies"))
    shutil.copytree(REPO / "examples" / "policies", repo / "policies")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    launcher = bindir / "tenancy"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} -m provider.cli \"$@\"\n")
    launcher.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    env.update(PATH=f"{bindir}:{env['PATH']}", TENANCY_BACKEND=f"sqlite:///{tmp_path}/backend.db",
               TENANCY_STACK="production", MANIFESTS="tenants/", POLICIES="policies/", NO_COLOR="1")
    return repo, env


def test_github_workflow_pull_request_then_main_then_nightly(tmp_path: Path):
    repo, env = _environment(tmp_path)
    jobs = _github_jobs()
    assert set(jobs) == {"plan", "apply", "drift"}
    judged = ""
    for script in jobs["plan"]:
        result = _run(script, repo, env)
        assert result.returncode == 0, (script, result.stderr)
        judged += result.stderr
    assert "### Tenancy plan — stack `production`" in (repo / "plan.md").read_text()
    # the policies ran: 88 changes on a first apply (25 of them from reseller-onboarding's three Tenants)
    # are over half of change_budget.rego's 100
    assert "WARN - policies/change_budget.rego - main - the plan makes 88 changes" in judged
    for script in jobs["apply"]:
        result = _run(script, repo, env)
        assert result.returncode == 0, (script, result.stdout, result.stderr)
    [drift] = jobs["drift"]
    assert _run(drift, repo, env).returncode == 0  # nothing drifted
    shop = repo / "tenants" / "shop"
    manifest = next(p for p in sorted(shop.glob("*.yaml")) if "kind: User" in p.read_text())
    manifest.write_text(manifest.read_text().replace("subscription: entry", "subscription: pro", 1))
    assert _run(drift, repo, env).returncode == 2  # main no longer matches the backend: the job fails


def test_a_pull_request_that_fails_a_policy_fails_the_plan_job_and_main_does_not_apply_it(tmp_path: Path):
    repo, env = _environment(tmp_path)
    jobs = _github_jobs()
    for script in jobs["apply"]:
        assert _run(script, repo, env).returncode == 0
    northwind = repo / "tenants" / "master-tenant" / "northwind.yaml"
    northwind.write_text("\n---\n".join(d for d in northwind.read_text().split("\n---\n") if "name: lena," not in d))
    plan_step = next(s for s in jobs["plan"] if "tenancy plan" in s)
    failed = _run(plan_step, repo, env)
    assert failed.returncode == 1, failed.stderr
    assert (
        "FAIL - policies/master_tenant_users.rego - main - User northwind-hosting/lena would be deleted"
        in failed.stderr
    )
    for script in jobs["apply"]:
        assert _run(script, repo, env).returncode == 1  # merged anyway: the apply job refuses it too
    assert connect(env["TENANCY_BACKEND"]).get(ResourceKey("User", "northwind-hosting", "lena")) is not None


def test_gitlab_pipeline_runs_the_same_commands(tmp_path: Path):
    repo, env = _environment(tmp_path)
    jobs = _gitlab_jobs()
    assert {"validate", "plan", "apply", "drift"} <= set(jobs)
    for job in ("validate", "plan", "apply", "drift"):
        for line in jobs[job]:
            result = _run(line, repo, env)
            assert result.returncode == 0, (job, line, result.stdout, result.stderr)
