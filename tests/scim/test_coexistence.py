"""SCIM beside infrastructure as code: what a directory creates belongs to no stack, a manifest that
declares it adopts it, and what a directory changes in a stack's resource is drift in the next plan."""

from __future__ import annotations

from typing import Any

from tenancy_kinds import STACK_LABEL
from provider.operations import Adopt, Update
from provider.plan import plan
from tests.scim.conftest import PATCH_SCHEMA, Org


def _live(org: Org) -> list[dict[str, Any]]:
    exported = org.v1("GET", f"/v1/export?organization={org.name}")
    return exported.json()["items"]  # type: ignore[no-any-return]


def _declared(org: Org, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "tenancy/v1", "kind": "User", "metadata": {"name": name, "organization": org.name},
            "spec": {"email": f"{name}@{org.domain}", "displayName": name.title(), **spec}}


def test_a_manifest_that_declares_a_directory_user_adopts_it_and_no_stack_deletes_it(org: Org) -> None:
    org.user(f"ada@{org.domain}", displayName="Ada")
    live = _live(org)
    [ada] = [d for d in live if d["kind"] == "User"]
    assert STACK_LABEL not in ada["metadata"]["labels"]
    kept = plan([], live, stack="platform")
    assert kept.operations == ()  # not the stack's: never deleted
    adopted = plan([_declared(org, "ada", subscription="entry")], live, stack="platform")
    [operation] = adopted.operations
    assert isinstance(operation, Adopt)
    assert [(d.dotted, d.before, d.after) for d in operation.diffs if d.path[0] == "spec"] == [
        ("spec.subscription", "free", "entry")
    ]


def test_scim_changes_to_a_stack_resource_are_drift(org: Org) -> None:
    declared = _declared(org, "bob", role="administrator")
    labelled = {**declared, "metadata": {**declared["metadata"], "labels": {STACK_LABEL: "platform"}}}
    assert org.v1("POST", f"/v1/organizations/{org.name}/users", labelled).status_code == 201
    assert plan([declared], _live(org), stack="platform").operations == ()
    [bob] = org.scim("GET", f'/Users?filter=userName eq "bob@{org.domain}"').json()["Resources"]
    suspend = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "value": {"active": False, "displayName": "B"}}],
    }
    assert org.scim("PATCH", f"/Users/{bob['id']}", suspend).status_code == 200
    [operation] = plan([declared], _live(org), stack="platform").operations
    assert isinstance(operation, Update)
    assert sorted((d.dotted, d.before, d.after) for d in operation.diffs) == [
        ("spec.active", False, True),
        ("spec.displayName", "B", "Bob"),
    ]
    stored = org.users()["bob"]
    assert stored["metadata"]["labels"] == {STACK_LABEL: "platform"}  # SCIM keeps the stack's label
    assert stored["spec"]["role"] == "administrator"  # and what SCIM does not show
