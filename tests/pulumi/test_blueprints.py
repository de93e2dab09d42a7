"""`from_manifests` over a directory with Tenants gives exactly the resources of its `tenancy render`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pulumi
from pulumi_mocks import RecordingMonitor, TenancyMocks

from provider.blueprints.output import rendered
from provider.manifests import load
from provider.pulumi import from_manifests

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.blueprints.data import BLUEPRINT, tenant  # noqa: E402

HAND = """\
apiVersion: tenancy/v1
kind: Alias
metadata: {name: hello, organization: acme}
spec: {address: hello@acme.example, user: bob}
"""


def _registered(path: Path) -> dict[str, tuple[str, dict[str, Any], frozenset[str]]]:
    """What a program of `from_manifests(path)` registers: per resource, its type, inputs and dependencies."""
    monitor = RecordingMonitor(TenancyMocks())
    pulumi.runtime.set_mocks(TenancyMocks(), monitor=monitor, preview=False)

    @pulumi.runtime.test
    def program() -> Any:
        made = from_manifests(path)
        return pulumi.Output.all(*(r.uid for r in made.values()))

    program()
    return {name: (r.type, r.inputs, frozenset(d.rsplit("::", 1)[1] for d in r.dependencies))
            for name, r in monitor.registrations.items()}


def test_a_directory_with_tenants_and_its_render_are_the_same_resources(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "tenants").mkdir(parents=True)
    (source / "mail.yaml").write_text(BLUEPRINT)
    (source / "hand.yaml").write_text(HAND)
    (source / "tenants" / "acme.yaml").write_text(tenant("acme", extra="    shared: true\n"))
    (source / "tenants" / "beta.yaml").write_text(tenant("beta"))
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "all.yaml").write_text(rendered(load([source])))

    expanded, written = _registered(source), _registered(flat)
    assert len(expanded) == 16 and "acme/shared" in expanded and "acme/hello" in expanded
    assert expanded == written
    _, inputs, depends = expanded["beta/bob"]
    assert inputs["labels"] == {"seat": "s0", "tenancy/blueprint": "mail-business", "tenancy/tenant": "beta"}
    assert depends == {"beta", "beta/main"}
