"""`from_manifests`: one set of YAML as Pulumi resources, in the CLI's order, passwords as secrets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi_mocks import RecordingMonitor

from provider.errors import ManifestError
from tenancy_kinds import ResourceKey
from provider.pulumi import from_manifests
from provider.pulumi.manifests import resource_name

STRONG = "kT9#vq2!mZ7$wLp"

MANIFESTS = """\
apiVersion: tenancy/v1
kind: Organization
metadata: {name: yaml-demo, labels: {source: yaml}}
spec:
  displayName: YAML Demo
  plan: entry
  domains: [yaml-demo.example]
  billingAddress: {name: YAML Demo GmbH, street: Weg 1, postalCode: "10115", city: Berlin, country: DE}
---
apiVersion: tenancy/v1
kind: User
metadata: {name: ada, organization: yaml-demo}
spec:
  email: ada@yaml-demo.example
  displayName: Ada
  role: administrator
  password: {fromEnv: ADA_PASSWORD}
---
apiVersion: tenancy/v1
kind: MailboxQuota
metadata: {name: main, organization: yaml-demo}
spec: {domain: yaml-demo.example, maxAddresses: 10}
"""

_BOB = """apiVersion: tenancy/v1
kind: User
metadata: {name: bob, organization: yaml-demo}
spec: {email: ada@yaml-demo.example, displayName: Bob}
"""

TEAMS = """\
apiVersion: tenancy/v1
kind: Team
metadata: {name: core, organization: yaml-demo}
spec: {displayName: Core, members: [ada], leader: ada}
---
apiVersion: tenancy/v1
kind: Alias
metadata: {name: hello, organization: yaml-demo, protected: true}
spec: {address: hello@yaml-demo.example, user: ada}
"""


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    (tmp_path / "org.yaml").write_text(MANIFESTS)
    (tmp_path / "teams").mkdir()
    (tmp_path / "teams" / "core.yml").write_text(TEAMS)
    return tmp_path


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[1]


@pulumi.runtime.test
def test_every_manifest_becomes_its_resource(monitor: RecordingMonitor, directory: Path):
    made = from_manifests(directory, env={"ADA_PASSWORD": STRONG})
    keys = sorted(made)
    assert keys == sorted(
        [
            ResourceKey("Organization", "", "yaml-demo"),
            ResourceKey("User", "yaml-demo", "ada"),
            ResourceKey("MailboxQuota", "yaml-demo", "main"),
            ResourceKey("Team", "yaml-demo", "core"),
            ResourceKey("Alias", "yaml-demo", "hello"),
        ]
    )

    def check(_: Any) -> None:
        org = monitor.registrations["yaml-demo"]
        assert org.type == "pulumi-python:dynamic/tenancy:Organization"
        assert org.inputs["billing_address"]["postal_code"] == "10115"
        assert org.inputs["labels"] == {"source": "yaml"}
        ada = monitor.registrations["yaml-demo/ada"]
        assert ada.inputs["name"] == "ada" and ada.inputs["organization"] == "yaml-demo"
        assert ada.inputs["role"] == "administrator"
        assert pulumi.runtime.rpc.is_rpc_secret(ada.inputs["password"])
        assert monitor.registrations["yaml-demo/hello"].inputs["protected"] is True

    return pulumi.Output.all(*(r.uid for r in made.values())).apply(check)


@pulumi.runtime.test
def test_dependencies_follow_the_cli_order(monitor: RecordingMonitor, directory: Path):
    made = from_manifests(directory, env={"ADA_PASSWORD": STRONG})

    def depends(name: str) -> set[str]:
        return {_urn_name(u) for u in monitor.registrations[name].dependencies}

    def check(_: Any) -> None:
        assert depends("yaml-demo") == set()
        assert depends("yaml-demo/main") == {"yaml-demo"}
        assert depends("yaml-demo/ada") == {"yaml-demo", "yaml-demo/main"}  # room on the domain first
        assert depends("yaml-demo/core") == {"yaml-demo", "yaml-demo/ada"}
        assert depends("yaml-demo/hello") == {"yaml-demo", "yaml-demo/ada"}

    return pulumi.Output.all(*(r.uid for r in made.values())).apply(check)


@pulumi.runtime.test
def test_the_password_output_is_secret(monitor: RecordingMonitor, directory: Path):
    made = from_manifests(directory, env={"ADA_PASSWORD": STRONG})
    ada = made[ResourceKey("User", "yaml-demo", "ada")]
    flag = pulumi.Output.from_input(asyncio.ensure_future(ada.password.is_secret()))  # type: ignore[attr-defined]
    return flag.apply(lambda secret: _assert(secret is True))


def _assert(condition: bool) -> None:
    assert condition


def test_a_missing_password_source_is_an_error_naming_the_variable(directory: Path):
    with pytest.raises(ManifestError, match=r"org.yaml:\d+:\d+: error: .*ADA_PASSWORD"):
        from_manifests(directory, env={})


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("role: administrator", "role: collaborator"), "administrator"),
    (lambda t: t.replace("email: ada@yaml-demo.example", "email: ada@elsewhere.example"), "yaml-demo.example"),
    (lambda t: t + "---\n" + _BOB, "ada@yaml-demo.example"),  # one address, two users
])
def test_manifests_the_cli_refuses_as_a_set_are_refused_with_their_location(
    directory: Path, edit: Any, message: str
):
    (directory / "org.yaml").write_text(edit(MANIFESTS))
    with pytest.raises(ManifestError, match=r"org.yaml:\d+:\d+: error: ") as caught:
        from_manifests(directory, env={"ADA_PASSWORD": STRONG})
    assert message in str(caught.value)


def test_a_weak_password_is_refused_without_being_quoted(directory: Path):
    with pytest.raises(ManifestError, match="weak") as caught:
        from_manifests(directory, env={"ADA_PASSWORD": "Password123!"})
    assert "Password123" not in str(caught.value)


def test_invalid_manifests_are_an_error_with_their_location(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text(MANIFESTS.replace("plan: entry", "plan: gold"))
    with pytest.raises(ManifestError, match=r"bad.yaml:\d+:\d+"):
        from_manifests(tmp_path, env={"ADA_PASSWORD": STRONG})


def test_resource_names_are_unique_per_type():
    assert resource_name(ResourceKey("User", "a-b", "c")) == "a-b/c"
    assert resource_name(ResourceKey("Organization", "", "acme")) == "acme"
