"""The generated Pulumi resources under Pulumi's mocks: type tokens, inputs, outputs, secrets, wiring."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import dill
import pulumi
import pytest

from tenancy_kinds import KINDS
from provider.pulumi import (
    Alias,
    CustomerSubscription,
    MailboxQuota,
    Organization,
    Team,
    User,
)
from provider.pulumi.providers import TenancyProvider

from pulumi_mocks import RecordingMonitor

STRONG = "kT9#vq2!mZ7$wLp"


def _organization(**overrides: Any) -> pulumi.CustomResource:
    args = {"display_name": "Pulumi Demo", "plan": "entry", "domains": ["pulumi-demo.example"], **overrides}
    return Organization("pulumi-demo", **args)


def _is_secret(output: pulumi.Output[Any]) -> pulumi.Output[bool]:
    return pulumi.Output.from_input(asyncio.ensure_future(output.is_secret()))


def test_every_kind_has_its_class_and_type_token():
    classes = [Organization, User, Team, MailboxQuota, Alias, CustomerSubscription]
    assert [c.__name__ for c in classes] == list(KINDS)
    for cls in classes:
        assert cls._resource_type_name == f"dynamic/tenancy:{cls.__name__}"


def test_unknown_arguments_and_missing_required_ones_are_python_errors():
    with pytest.raises(TypeError, match="displayName|display_name"):
        Organization("x")
    with pytest.raises(TypeError, match="colour"):
        Organization("x", display_name="X", colour="red")


@pulumi.runtime.test
def test_inputs_are_the_spec_in_snake_case_and_name_defaults_to_the_resource_name(monitor: RecordingMonitor):
    org = _organization(
        billing_address={
            "name": "Demo GmbH",
            "street": "Hauptstr. 1",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        },
        labels={"team": "platform"},
    )

    def check(_: Any) -> None:
        registered = monitor.registrations["pulumi-demo"]
        assert registered.type == "pulumi-python:dynamic/tenancy:Organization"
        inputs = {k: v for k, v in registered.inputs.items() if k != "__provider"}
        assert inputs == {
            "name": "pulumi-demo",
            "display_name": "Pulumi Demo",
            "plan": "entry",
            "domains": ["pulumi-demo.example"],
            "billing_address": {
                "name": "Demo GmbH",
                "street": "Hauptstr. 1",
                "postal_code": "10115",
                "city": "Berlin",
                "country": "DE",
            },
            "labels": {"team": "platform"},
        }

    return org.uid.apply(check)


@pulumi.runtime.test
def test_metadata_name_can_differ_from_the_resource_name(monitor: RecordingMonitor):
    quota = MailboxQuota(
        "demo-quota", name="main", organization="pulumi-demo", domain="pulumi-demo.example", max_addresses=10
    )
    return quota.name.apply(lambda name: assert_equal(name, "main"))


def assert_equal(actual: Any, expected: Any) -> None:
    assert actual == expected


@pulumi.runtime.test
def test_outputs_carry_uid_version_and_status_fields(monitor: RecordingMonitor):
    org = _organization()
    sub = CustomerSubscription(
        "sig", organization="pulumi-demo", product="signatures-microsoft-365", customer_name="Contoso", users=5
    )

    def check(values: list[Any]) -> None:
        uid, version, user_count, cost, sub_id, phase, trial_ends_at, customer_name = values
        assert (uid, version, user_count) == ("uid-pulumi-demo", "1", 0)
        assert cost == {"amount": "0.00", "currency": "EUR"}
        assert (sub_id, phase, trial_ends_at) == ("sub-1", "trial", "2030-01-15T00:00:00Z")
        assert customer_name == "Contoso"

    return pulumi.Output.all(
        org.uid,
        org.resource_version,
        org.user_count,
        org.monthly_cost,
        sub.subscription_id,
        sub.phase,
        sub.trial_ends_at,
        sub.customer_name,
    ).apply(check)


@pulumi.runtime.test
def test_organization_as_an_output_or_as_the_resource_is_a_dependency(monitor: RecordingMonitor):
    org = _organization()
    by_output = User("alice", organization=org.name, email="alice@pulumi-demo.example", display_name="Alice")
    by_resource = User("bob", organization=org, email="bob@pulumi-demo.example", display_name="Bob")

    def check(_: Any) -> None:
        for name in ("alice", "bob"):
            registered = monitor.registrations[name]
            assert registered.inputs["organization"] == "pulumi-demo"
            assert any(urn.endswith("::pulumi-demo") for urn in registered.dependencies), registered.dependencies

    return pulumi.Output.all(by_output.uid, by_resource.uid).apply(check)


@pulumi.runtime.test
def test_a_plain_password_becomes_a_secret_input_and_a_secret_output(monitor: RecordingMonitor):
    user = User(
        "alice", organization="pulumi-demo", email="alice@pulumi-demo.example", display_name="Alice", password=STRONG
    )

    def check(values: list[Any]) -> None:
        secret, _ = values
        registered = monitor.registrations["alice"]
        sent = registered.inputs["password"]
        assert pulumi.runtime.rpc.is_rpc_secret(sent) and pulumi.runtime.rpc.unwrap_rpc_secret(sent) == STRONG
        assert registered.secret_outputs == ["password"]
        assert secret is True

    return pulumi.Output.all(_is_secret(user.password), user.uid).apply(check)


@pulumi.runtime.test
def test_no_password_no_secret_input(monitor: RecordingMonitor):
    user = User("carol", organization="pulumi-demo", email="carol@pulumi-demo.example", display_name="Carol")
    return user.uid.apply(lambda _: assert_equal("password" in monitor.registrations["carol"].inputs, False))


@pulumi.runtime.test
def test_team_and_alias_take_user_names_and_outputs(monitor: RecordingMonitor):
    alice = User("alice", organization="pulumi-demo", email="alice@pulumi-demo.example", display_name="Alice")
    team = Team(
        "ops",
        organization="pulumi-demo",
        display_name="Ops",
        members=[alice.name],
        leader=alice.name,
        shares=["calendars"],
    )
    alias = Alias("info", organization="pulumi-demo", address="info@pulumi-demo.example", user=alice.name)

    def check(_: Any) -> None:
        assert monitor.registrations["ops"].inputs["members"] == ["alice"]
        assert monitor.registrations["ops"].inputs["leader"] == "alice"
        assert monitor.registrations["info"].inputs["user"] == "alice"
        assert any(urn.endswith("::alice") for urn in monitor.registrations["info"].dependencies)

    return pulumi.Output.all(team.uid, alias.uid).apply(check)


@pulumi.runtime.test
def test_the_serialized_provider_names_the_class_and_the_kind_only(monitor: RecordingMonitor):
    user = User(
        "alice", organization="pulumi-demo", email="alice@pulumi-demo.example", display_name="Alice", password=STRONG
    )

    def check(_: Any) -> None:
        blob = base64.b64decode(monitor.registrations["alice"].inputs["__provider"])
        assert b"provider.pulumi.providers" in blob and b"TenancyProvider" in blob
        assert STRONG.encode() not in blob
        restored = dill.loads(blob)
        assert isinstance(restored, TenancyProvider) and restored.kind_name == "User"
        assert len(blob) < 200  # a reference to the class, not the code

    return user.uid.apply(check)
