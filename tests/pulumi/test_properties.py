"""Property bags ⇄ documents, `check()` failures and `diff()` results: plain data, no engine, no backend."""

from __future__ import annotations

from typing import Any

import pytest

from tenancy_kinds import KINDS
from provider.pulumi import properties as P
from provider.pulumi.providers import TenancyProvider

STRONG = "kT9#vq2!mZ7$wLp"


def _failures(kind: str, props: dict[str, Any]) -> dict[str, str]:
    return {f.property: f.reason for f in P.check(KINDS[kind], props)}


def _live_user(**spec: Any) -> dict[str, Any]:
    """A User's outputs as the backend answered them: every default filled in, no password."""
    doc = {
        "apiVersion": "tenancy/v1",
        "kind": "User",
        "metadata": {"name": "alice", "organization": "acme", "uid": "u1", "resourceVersion": "3", "labels": {}},
        "spec": {**KINDS["User"].defaults(), "email": "alice@acme.example", "displayName": "Alice", **spec},
        "status": {"mailbox": True},
    }
    doc["spec"].pop("password")
    return P.outputs(KINDS["User"], doc)


ALICE = {"name": "alice", "organization": "acme", "email": "alice@acme.example", "display_name": "Alice"}


# --- names and round trips ---------------------------------------------------------------------------


def test_property_names_come_from_the_table():
    org, user, sub = KINDS["Organization"], KINDS["User"], KINDS["CustomerSubscription"]
    assert P.input_properties(org)[:3] == ["name", "display_name", "parent"]
    assert "organization" not in P.input_properties(org)
    assert P.output_properties(org) == [
        "uid",
        "resource_version",
        "user_count",
        "admin_count",
        "monthly_cost",
        "balance",
    ]
    assert P.output_properties(sub) == ["uid", "resource_version", "subscription_id", "phase", "trial_ends_at"]
    assert P.output_properties(KINDS["MailboxQuota"])[-1] == "used_addresses"
    assert P.secret_properties(user) == ["password"] and P.immutable_properties(user) == ["email"]
    for kind in KINDS.values():
        P.check_table(kind)


def test_outputs_round_trip_to_the_same_document():
    outs = _live_user(role="administrator")
    assert "password" not in outs and outs["mailbox"] is True and outs["uid"] == "u1"
    again = P.live_document(KINDS["User"], outs)
    assert again["metadata"]["resourceVersion"] == "3"
    assert again["spec"]["role"] == "administrator" and again["status"] == {"mailbox": True}


def test_nested_objects_are_snake_case_outside_and_camel_case_inside():
    org = KINDS["Organization"]
    props = {
        "name": "acme",
        "display_name": "Acme",
        "billing_address": {"name": "A", "street": "S 1", "postal_code": "1", "city": "C", "country": "DE"},
    }
    doc = P.document(org, props)
    assert doc["spec"]["billingAddress"]["postalCode"] == "1"
    assert (
        P.outputs(org, {**doc, "status": {"monthlyCost": {"amount": "3.50", "currency": "EUR"}}})["billing_address"][
            "postal_code"
        ]
        == "1"
    )


def test_import_inputs_leave_out_what_only_the_backend_sets():
    inputs = P.inputs_of(KINDS["User"], _live_user())
    assert "uid" not in inputs and "mailbox" not in inputs and "resource_version" not in inputs
    assert inputs["email"] == "alice@acme.example" and inputs["organization"] == "acme"


def test_import_inputs_leave_out_a_cli_stack_label():
    outs = {**_live_user(), "labels": {"tenancy/stack": "prod", "team": "a"}}
    assert P.inputs_of(KINDS["User"], outs)["labels"] == {"team": "a"}
    assert P.check(KINDS["User"], P.inputs_of(KINDS["User"], outs)) == []


# --- check -----------------------------------------------------------------------------------------


def test_a_valid_resource_passes():
    assert _failures("User", {**ALICE, "password": STRONG}) == {}


def test_a_bad_slug_names_the_property():
    failures = _failures("Organization", {"name": "Not_A_Slug", "display_name": "X"})
    # the words of `tenancy validate` (one translator): what is wrong and what would be right
    assert list(failures) == ["name"] and failures["name"].startswith(
        "'Not_A_Slug' is not valid: expected 1 to 63 lowercase"
    )


def test_unknown_properties_are_refused_by_their_own_name():
    failures = _failures("Organization", {"name": "acme", "display_name": "A", "colour": "red"})
    assert list(failures) == ["colour"] and failures["colour"].startswith("unknown field 'colour'; allowed in spec:")
    nested = _failures(
        "Organization",
        {
            "name": "acme",
            "display_name": "A",
            "billing_address": {
                "name": "A",
                "street": "S",
                "postal_code": "1",
                "city": "C",
                "country": "DE",
                "zip": "1",
            },
        },
    )
    assert list(nested) == ["billing_address.zip"]
    assert nested["billing_address.zip"].startswith("unknown field 'zip'; allowed in spec.billingAddress: name, street")


def test_missing_required_and_bad_enum_values():
    failures = _failures("User", {"name": "bob", "organization": "acme", "role": "boss"})
    assert set(failures) == {"email", "display_name", "role"}
    assert "collaborator" in failures["role"]


def test_list_items_are_named_by_index():
    failures = _failures(
        "Organization", {"name": "acme", "display_name": "A", "domains": ["acme.example", "Not A Domain"]}
    )
    assert list(failures) == ["domains[1]"]


def test_scoped_kinds_need_an_organization():
    assert "organization" in _failures("Alias", {"name": "info", "address": "info@acme.example", "user": "alice"})


def test_single_resource_rules():
    assert "too weak" in _failures("User", {**ALICE, "password": "password123"})["password"]
    assert "max_addresses" in _failures(
        "MailboxQuota", {"name": "q", "organization": "acme", "domain": "acme.example", "max_addresses": 2}
    )
    assert "leader" in _failures(
        "Team", {"name": "t", "organization": "acme", "display_name": "T", "members": ["a"], "leader": "b"}
    )
    assert "contact" in _failures(
        "CustomerSubscription",
        {
            "name": "s",
            "organization": "acme",
            "product": "signatures-google-workspace",
            "customer_name": "C",
            "customer_can_edit_signatures": True,
        },
    )


def test_a_weak_password_is_never_quoted():
    failures = _failures("User", {**ALICE, "password": "hunter2hunter2"})
    assert "hunter2" not in failures["password"]


def test_values_unknown_in_a_preview_are_not_judged():
    failures = _failures("User", {**ALICE, "organization": P.UNKNOWN, "email": P.UNKNOWN})
    assert failures == {}


# --- diff ------------------------------------------------------------------------------------------


def _diff(olds: dict[str, Any], news: dict[str, Any]) -> Any:
    return TenancyProvider("User").diff("u1", olds, {**news, "__provider": "x"})


def test_no_change_when_the_backend_filled_in_the_defaults():
    result = _diff(_live_user(), ALICE)
    assert result.changes is False and result.replaces == []


def test_a_password_alone_is_no_change_until_its_version_moves():
    assert _diff(_live_user(), {**ALICE, "password": STRONG}).changes is False
    rotated = _diff(_live_user(), {**ALICE, "password": STRONG, "password_version": 2})
    assert rotated.changes is True and rotated.replaces == []


def test_active_and_username_are_arguments_and_a_username_left_out_is_the_email():
    assert {"active", "username"} <= set(P.input_properties(KINDS["User"]))
    stored = _live_user(username="alice@acme.example", active=True)
    assert stored["username"] == "alice@acme.example"
    assert _diff(stored, ALICE).changes is False
    suspended = _diff(stored, {**ALICE, "active": False})
    assert suspended.changes is True and suspended.replaces == []
    assert _diff(stored, {**ALICE, "username": "alice"}).changes is True
    assert P.document(KINDS["User"], {**ALICE, "active": False, "username": "alice"})["spec"] == {
        "email": "alice@acme.example",
        "displayName": "Alice",
        "active": False,
        "username": "alice",
    }


def test_an_update_is_no_replace():
    result = _diff(_live_user(), {**ALICE, "subscription": "pro"})
    assert result.changes is True and result.replaces == []


@pytest.mark.parametrize(
    ("news", "replaces"),
    [
        ({**ALICE, "email": "alice2@acme.example"}, ["email"]),
        ({**ALICE, "name": "alice2"}, ["name"]),
        ({**ALICE, "organization": "other"}, ["organization"]),
    ],
)
def test_identity_and_immutable_fields_replace_delete_first(news: dict[str, Any], replaces: list[str]):
    result = _diff(_live_user(), news)
    assert result.changes is True and result.replaces == replaces and result.delete_before_replace is True


def test_unknown_immutable_values_may_replace():
    result = _diff(_live_user(), {**ALICE, "email": P.UNKNOWN})
    assert result.changes is True and result.replaces == ["email"]


def test_labels_and_protection_are_changes():
    assert _diff(_live_user(), {**ALICE, "labels": {"team": "a"}}).changes is True
    assert _diff(_live_user(), {**ALICE, "protected": True}).changes is True


def test_a_stack_label_set_by_the_cli_is_kept_not_fought():
    outs = _live_user()
    outs["labels"] = {"tenancy/stack": "prod"}
    assert _diff(outs, ALICE).changes is False
