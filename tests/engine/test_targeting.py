"""Targeted plans on plain data: addresses, the changes a target needs first, what an exclusion takes along."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from provider import render
from provider.costs import Prices
from provider.errors import ConfigError
from provider.operations import Delete
from provider.plan import Plan, plan
from provider.targeting import Address, Selection
from tenancy_kinds import ResourceKey as K

from tests.builders import document, live, org, user
from .test_ordering import _moving_customer, before, names, quota


def labelled(document: dict, **labels: str) -> dict:
    return {**document, "metadata": {**document["metadata"], "labels": labels}}


def planned(result: Plan) -> list[str]:
    return names(result.operations)


def targeted(desired: list, current: list, *, destroy: bool = False, **selection: object) -> Plan:
    return plan(desired, current, stack="s", destroy=destroy, selection=Selection(**selection))  # type: ignore[arg-type]


# --- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "key", "expected"), [
    ("Organization/acme", K("Organization", "", "acme"), True),
    ("Organization/acme", K("User", "acme", "acme"), False),
    ("User/acme/bob", K("User", "acme", "bob"), True),
    ("User/acme/bob", K("User", "beta", "bob"), False),
    ("User/acme/*", K("User", "acme", "bob"), True),
    ("User/acme/*", K("Team", "acme", "bob"), False),
    ("User/acme/b*", K("User", "acme", "ben"), True),
    ("User/acme/b*", K("User", "acme", "ann"), False),
    ("*/acme/*", K("Alias", "acme", "info"), True),
    ("*/acme/*", K("Organization", "", "acme"), False),  # an organization has two segments
    ("*/*", K("Organization", "", "acme"), True),
    ("User/*", K("User", "acme", "bob"), False),  # `*` never crosses a segment
    ("User/a*e/bob", K("User", "acme", "bob"), True),
    ("User/a.me/bob", K("User", "acme", "bob"), False),  # only `*` is special
])
def test_an_address_matches_by_segments(address: str, key: K, expected: bool):
    assert Address.parse(address, "--target").matches(key, {}) is expected


def test_a_tenant_address_matches_what_carries_the_tenant_label():
    acme = Address.parse("Tenant/acme", "--target")
    assert acme.matches(K("User", "whatever", "bob"), {"tenancy/tenant": "acme"})
    assert not acme.matches(K("User", "acme", "bob"), {"tenancy/tenant": "acme-2"})
    assert not acme.matches(K("Organization", "", "acme"), {})  # the name alone is not the tenant
    assert Address.parse("Tenant/ac*", "--target").matches(K("User", "x", "y"), {"tenancy/tenant": "acme-2"})


@pytest.mark.parametrize(("address", "says"), [
    ("acme", "is not an address: write Organization/NAME, KIND/ORGANIZATION/NAME"),
    ("User/acme/bob/x", "is not an address"),
    ("User//bob", "has an empty segment"),
    ("User/acme/bo b", "has the segment 'bo b'"),
    ("Tenant/acme/bob", "a tenant is addressed as Tenant/NAME"),
])
def test_a_malformed_address_is_refused_saying_how_to_write_one(address: str, says: str):
    with pytest.raises(ConfigError, match=re.escape(f"--exclude {address!r}")) as refused:
        Selection(excludes=(address,))
    assert says in str(refused.value)


def test_a_malformed_selector_is_refused_with_the_apis_words():
    with pytest.raises(ConfigError, match=r"--selector 'tier=gold,,x': empty term .* Use comma-separated terms"):
        Selection(selector="tier=gold,,x")


# --- what a target brings along -----------------------------------------------------------------


def new_acme() -> list[dict]:
    return [org("acme"), user("acme", "ann", role="administrator"), user("acme", "bob"),
            document("Team", "t", "acme", displayName="T", members=["ann"])]


def test_a_target_brings_the_changes_it_needs_first_shown_and_counted_like_the_rest():
    result = targeted(new_acme() + [org("beta")], [], targets=("User/acme/ann",))
    assert planned(result) == ["create Organization acme", "create User acme/ann"]
    assert result.summary == "Plan: 2 to create, 0 to update, 0 to replace, 0 to delete."
    assert result.not_planned == 3
    text = render.text(result)
    assert "  + Organization acme" in text and "  + User acme/ann" in text and "Team" not in text
    assert "Targeted plan: 3 changes outside the selection are not planned.\nPlan: 2 to create" in text


def test_a_target_brings_the_quota_raise_before_the_mailbox():
    current = [live(org("acme"), stack="s"), quota(1, "s"), live(user("acme", "u0"), stack="s")]
    desired = [org("acme"), quota(2), user("acme", "u0", displayName="U0 Renamed"), user("acme", "u1")]
    result = targeted(desired, current, targets=("User/acme/u1",))
    assert planned(result) == ["update MailboxQuota acme/q", "create User acme/u1"]
    assert result.not_planned == 1  # u0's new display name


def test_a_target_brings_the_change_to_what_it_names():
    """A new user on a domain its organization is adding: the organization's update comes first."""
    current = [live(org("acme"), stack="s"), live(user("acme", "u0"), stack="s")]
    desired = [org("acme", domains=["acme.example", "new.example"]), user("acme", "u0", displayName="U0 Renamed"),
               user("acme", "u1", email="u1@new.example")]
    result = targeted(desired, current, targets=("User/acme/u1",))
    assert planned(result) == ["update Organization acme", "create User acme/u1"]


def test_a_target_in_an_indivisible_unit_brings_the_whole_unit_and_only_what_it_waits_for():
    desired, current = _moving_customer()
    kim = targeted(desired, current, targets=("User/zed/kim",))
    assert sorted(planned(kim)) == ["replace User zed/boss", "replace User zed/kim", "update Organization zed"]
    assert len(kim.graph.units) == 1 and kim.not_planned == 2
    ann = targeted(desired, current, targets=("User/alpha/ann",))  # alpha takes old.example once zed let go
    assert len(ann.operations) == 5 and ann.not_planned == 0
    assert before(ann.operations, "update Organization zed", "create Organization alpha")


def test_deletions_of_matching_vanished_resources_are_included_with_what_must_happen_first():
    team = document("Team", "t", "acme", displayName="T", members=["ann", "bob"])
    current = [live(org("acme"), stack="s"), live(user("acme", "ann"), stack="s"),
               live(user("acme", "bob"), stack="s"), live(team, stack="s"), live(user("acme", "carl"), stack="s")]
    desired = [org("acme"), user("acme", "ann"), document("Team", "t", "acme", displayName="T", members=["ann"])]
    result = targeted(desired, current, targets=("User/acme/bob",))
    assert planned(result) == ["update Team acme/t", "delete User acme/bob"]  # the team lets go first
    assert result.not_planned == 1  # carl's deletion


def test_destroy_with_a_target_deletes_only_the_matching_resources_and_what_must_go_first():
    current = [live(org("acme"), stack="s"), live(user("acme", "ann"), stack="s"), live(user("acme", "bob"), stack="s"),
               live(document("Team", "t", "acme", displayName="T", members=["bob"]), stack="s")]
    result = targeted([], current, destroy=True, targets=("User/acme/bob",))
    assert planned(result) == ["delete Team acme/t", "delete User acme/bob"]
    assert all(isinstance(op, Delete) for op in result.operations) and result.not_planned == 2
    whole_organization = targeted([], current, destroy=True, targets=("Organization/acme",))
    assert len(whole_organization.operations) == 4  # its resources go before it


# --- what an exclusion takes along --------------------------------------------------------------


def test_an_exclusion_leaves_out_the_matching_changes_and_every_change_that_needs_them():
    result = targeted(new_acme() + [org("beta")], [], excludes=("User/acme/ann",))
    assert planned(result) == ["create Organization acme", "create Organization beta", "create User acme/bob"]
    assert result.not_planned == 2  # ann, and the team naming her
    assert "Targeted plan: 2 changes outside the selection are not planned." in render.text(result)


def test_excluding_a_new_organization_leaves_out_everything_in_it():
    result = targeted(new_acme() + [org("beta")], [], excludes=("Organization/acme",))
    assert planned(result) == ["create Organization beta"]


def test_an_exclusion_wins_over_a_target_that_needs_it():
    result = targeted(new_acme(), [], targets=("User/acme/*",), excludes=("Organization/acme",))
    assert result.operations == () and result.not_planned == 4


def test_a_change_a_target_needed_goes_with_the_target_an_exclusion_takes():
    result = targeted(new_acme(), [], targets=("Team/acme/t",), excludes=("User/acme/ann",))
    assert result.operations == () and result.not_planned == 4  # not the organization the team needed
    kept = targeted(new_acme(), [], targets=("Team/acme/t", "User/acme/bob"), excludes=("User/acme/ann",))
    assert planned(kept) == ["create Organization acme", "create User acme/bob"]  # bob still needs it


def test_excluding_part_of_an_indivisible_unit_leaves_out_the_unit_and_what_waits_for_it():
    desired, current = _moving_customer()
    result = targeted(desired, current, excludes=("User/zed/kim",))
    assert result.operations == () and result.not_planned == 5


# --- selectors and tenants ------------------------------------------------------------------------


def test_a_selector_picks_by_the_labels_after_the_change_and_narrows_a_target():
    current = [live(org("acme"), stack="s"), live(labelled(user("acme", "old"), team="sales"), stack="s")]
    desired = [org("acme"), labelled(user("acme", "ann", role="administrator"), team="sales"),
               labelled(user("acme", "bob"), team="ops"), labelled(org("beta"), team="sales")]
    sales = targeted(desired, current, selector="team=sales")
    assert sorted(planned(sales)) == ["create Organization beta", "create User acme/ann", "delete User acme/old"]
    both = targeted(desired, current, selector="team=sales", targets=("User/acme/*",))
    assert sorted(planned(both)) == ["create User acme/ann", "delete User acme/old"]
    none = targeted(desired, current, selector="!team")
    assert none.operations == () and none.not_planned == 4  # a selector that matches nothing is no error


def test_tenant_addresses_target_and_exclude_what_a_tenant_expands_to():
    def tenant(document: dict, name: str) -> dict:
        return labelled(document, **{"tenancy/tenant": name, "tenancy/blueprint": "mail"})

    current = [live(tenant(user("gone", "x"), "gone"), stack="s"), live(tenant(org("gone"), "gone"), stack="s")]
    desired = [tenant(org("acme"), "acme"), tenant(user("acme", "ada", role="administrator"), "acme"),
               tenant(org("beta"), "beta"), tenant(user("beta", "bo", role="administrator"), "beta"), org("hand")]
    acme = targeted(desired, current, targets=("Tenant/acme",))
    assert planned(acme) == ["create Organization acme", "create User acme/ada"]
    vanished = targeted(desired, current, targets=("Tenant/gone",))  # a deleted tenant: its resources go
    assert planned(vanished) == ["delete User gone/x", "delete Organization gone"]
    rest = targeted(desired, current, excludes=("Tenant/acme", "Tenant/gone"))
    assert sorted(planned(rest)) == ["create Organization beta", "create Organization hand", "create User beta/bo"]


# --- addresses that match nothing -----------------------------------------------------------------


def test_an_address_that_matches_no_resource_is_an_error_naming_the_closest():
    current = [live(org("acme"), stack="s"), live(user("acme", "bob"), stack="s")]
    desired = [org("acme"), user("acme", "bob"), user("acme", "rob")]
    with pytest.raises(ConfigError) as refused:
        targeted(desired, current, targets=("User/acme/bobb",), excludes=("user/acme/rob",))
    lines = str(refused.value).splitlines()
    assert lines[0].startswith("--target User/acme/bobb matches no resource; the closest addresses: User/acme/bob")
    assert "User/acme/rob" in lines[0]
    assert lines[1].startswith("--exclude user/acme/rob matches no resource; the closest addresses: User/acme/rob")
    with pytest.raises(ConfigError, match="Tenant/acme matches no resource"):
        targeted(desired, current, targets=("Tenant/acme",))


def test_an_address_of_a_resource_without_changes_selects_nothing_and_is_no_error():
    current = [live(org("acme"), stack="s"), live(user("acme", "bob"), stack="s")]
    result = targeted([org("acme"), user("acme", "bob"), user("acme", "new")], current, targets=("User/acme/bob",))
    assert result.operations == () and result.not_planned == 1
    assert render.text(result).rstrip().endswith(
        "Targeted plan: 1 changes outside the selection are not planned.\n"
        "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete."
    )


# --- the targeted plan is a plan ------------------------------------------------------------------


def test_a_targeted_plan_has_its_own_graph_costs_and_organization_labels():
    desired = [labelled(org("acme"), tier="gold"), user("acme", "ann", role="administrator", subscription="pro"),
               user("acme", "bob", subscription="entry"), org("beta")]
    current = [live(labelled(org("acme"), tier="gold"), stack="s")]
    result = plan(desired, current, stack="s", prices=Prices.of(), selection=Selection(targets=("User/acme/ann",)))
    assert planned(result) == ["create User acme/ann"]
    assert [op.key for op in result.graph.operations] == [K("User", "acme", "ann")]
    assert [[result.graph.operations[s.op] for s in unit] for unit in result.graph.units] == [list(result.operations)]
    [cost] = result.costs
    assert (cost.before, cost.after) == (Decimal("0"), Decimal("7.50"))  # bob's entry account is not planned
    assert result.organization_labels == {"acme": {"tier": "gold", "tenancy/stack": "s"}}


def test_the_json_plan_records_the_selection():
    result = targeted(new_acme(), [], targets=("User/acme/ann",), excludes=("Team/acme/*",), selector="!legacy")
    document = json.loads(render.json_text(result))
    assert document["format_version"] == "1.3"
    assert document["selection"] == {
        "targets": ["User/acme/ann"], "excludes": ["Team/acme/*"], "selector": "!legacy", "not_planned": 2,
        "text": "Targeted plan: 2 changes outside the selection are not planned.",
    }
    assert document["summary"]["create"] == 2
    assert "_Targeted plan: 2 changes outside the selection are not planned._" in render.markdown(result)


def test_an_empty_selection_is_a_whole_plan():
    result = plan(new_acme(), [], stack="s", selection=Selection())
    assert result.selection is None and result.targeted is None and len(result.operations) == 4
    assert "Targeted plan" not in render.text(result)
