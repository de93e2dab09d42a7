"""examples/pulumi runs as a Pulumi program (under mocks): the code-declared tenant and the family YAML."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi_mocks import RecordingMonitor, TenancyMocks

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pulumi"


@pytest.fixture
def program(monkeypatch: pytest.MonkeyPatch) -> RecordingMonitor:
    monkeypatch.chdir(EXAMPLE)
    recording = RecordingMonitor(TenancyMocks())
    pulumi.runtime.set_mocks(TenancyMocks(), project="pulumi-demo", stack="dev", monitor=recording, preview=False)
    pulumi.runtime.set_config("pulumi-demo:adaPassword", "kT9#vq2!mZ7$wLp")
    return recording


def test_the_example_declares_both_tenants(program: RecordingMonitor):
    namespace: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> None:  # returns once every registration of the program is done
        namespace.update(runpy.run_path(str(EXAMPLE / "__main__.py")))

    run()
    family = namespace["family"]  # whatever examples/family declares today
    registered = program.registrations.values()
    organizations = {r.inputs["name"] for r in registered if r.type.endswith(":Organization")}
    from_yaml = {key.name for key in family if key.kind == "Organization"}
    assert organizations == {"pulumi-demo"} | from_yaml and "pulumi-demo" not in from_yaml
    assert pulumi.runtime.rpc.is_rpc_secret(program.registrations["pulumi-demo/ada"].inputs["password"])
    users = [r for r in registered if r.type.endswith(":User")]
    assert len(users) == 2 + len([key for key in family if key.kind == "User"])
    assert all(pulumi.runtime.rpc.is_rpc_secret(u.inputs["password"]) for u in users if "password" in u.inputs)
    assert {"pulumi-demo/platform", "pulumi-demo/hello", "pulumi-demo/contoso"} <= set(program.registrations)
