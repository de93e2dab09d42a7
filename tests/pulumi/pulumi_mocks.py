"""Pulumi's mock monitor, recording what a program registers as the engine would receive it.

(Not a package: a `tests/pulumi/__init__.py` would make `tests/pulumi` shadow the `pulumi` SDK.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor


@dataclass
class Registration:
    type: str
    name: str
    inputs: dict[str, Any]
    dependencies: list[str]
    secret_outputs: list[str]


class TenancyMocks(pulumi.runtime.Mocks):
    """Plays the backend: every resource gets a uid, version "1" and an empty status."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        uid = f"uid-{args.name.replace('/', '-')}"
        outs = {**args.inputs, "uid": uid, "resource_version": "1"}
        outs.pop("password", None)  # the provider never returns it
        if args.typ.endswith(":Organization"):
            outs.update(user_count=0, admin_count=0, monthly_cost={"amount": "0.00", "currency": "EUR"})
        if args.typ.endswith(":CustomerSubscription"):
            outs.update(subscription_id="sub-1", phase="trial", trial_ends_at="2030-01-15T00:00:00Z")
        return uid, outs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: dict[str, Registration] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
            self.registrations[request.name] = Registration(
                request.type, request.name, inputs, list(request.dependencies), list(request.additionalSecretOutputs)
            )
        return response
