"""The pure plan: essence comparison, typed operations, stacks, protection, secrets, money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from provider import plan as planning
from provider.documents import Documents
from provider.errors import PlanError
from provider.costs import Prices
from provider.diff import diff
from provider.operations import Adopt, Create, Delete, Replace, Update
from provider.plan import plan
from tenancy_kinds import KINDS

from tests.builders import document, live, org, user


@pytest.fixture(autouse=True, params=["dicts", "compact"])
def _live_form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every plan here twice: from live documents as dicts, and kept compact as a live state keeps them
    (provider.documents), where the plan decodes only what it compares."""
    if request.param == "compact":
        compact = lambda desired, live, **kw: planning.plan(desired, Documents.of(live), **kw)
        monkeypatch.setitem(globals(), "plan", compact)


def test_round_trip_with_defaults_filled_in_shows_no_change():
    desired = user("acme", "alice")
    backend = live(desired, stack="s")
    backend["spec"] = {**KINDS["User"].defaults(), **backend["spec"]}
    backend["spec"].pop("password")
    assert diff(KINDS["User"], desired, backend, "s") is None


def test_unordered_lists_compare_as_sets():
    desired = document("Team", "t", "acme", displayName="T", members=["b", "a"])
    backend = live(document("Team", "t", "acme", displayName="T", members=["a", "b"]), stack="s")
    assert diff(KINDS["Team"], desired, backend, "s") is None


def test_update_carries_field_level_before_and_after():
    backend = live(user("acme", "alice", subscription="free"), stack="s")
    op = diff(KINDS["User"], user("acme", "alice", subscription="pro"), backend, "s")
    assert isinstance(op, Update)
    assert [(d.path, d.before, d.after) for d in op.diffs] == [(("spec", "subscription"), "free", "pro")]


def test_immutable_change_is_a_replace_that_says_the_mailbox_goes():
    backend = live(user("acme", "alice"), stack="s")
    op = diff(KINDS["User"], user("acme", "alice", email="alice2@acme.example"), backend, "s")
    assert isinstance(op, Replace)
    assert op.immutable == ("email",)
    assert any("mailbox" in note for note in op.notes)


def test_password_is_sent_on_create_and_when_its_version_moves_never_compared():
    desired = user("acme", "alice", password={"fromEnv": "PW"})
    created = diff(KINDS["User"], desired, None, "s")
    assert isinstance(created, Create) and created.sends_secret
    same = live(user("acme", "alice"), stack="s")
    assert diff(KINDS["User"], desired, same, "s") is None
    rotated = diff(KINDS["User"], user("acme", "alice", password={"fromEnv": "PW"}, passwordVersion=2), same, "s")
    assert rotated is not None and rotated.sends_secret
    assert [d.dotted for d in rotated.diffs if d.sensitive] == ["spec.password"]
    assert all(d.after == "(sensitive)" for d in rotated.diffs if d.sensitive)


def test_unlabelled_declared_resource_is_adopted():
    backend = live(org("acme"))
    op = diff(KINDS["Organization"], org("acme"), backend, "s")
    assert isinstance(op, Adopt)
    assert [d.dotted for d in op.diffs] == ["metadata.labels.tenancy/stack"]


def test_resource_of_another_stack_is_an_error():
    with pytest.raises(PlanError, match="owned by stack 'other'"):
        plan([org("acme")], [live(org("acme"), stack="other")], stack="s")


def test_only_the_stacks_own_vanished_resources_are_deleted():
    mine = live(user("acme", "old"), stack="s")
    theirs = live(user("acme", "foreign"), stack="other")
    unlabelled = live(user("acme", "manual"))
    result = plan([], [mine, theirs, unlabelled], stack="s")
    assert [(type(op), op.key.name) for op in result.operations] == [(Delete, "old")]


def test_without_a_stack_nothing_is_deleted_and_the_plan_says_so():
    result = plan([], [live(user("acme", "old"), stack="s")], stack=None)
    assert result.operations == ()
    assert any("nothing will be deleted" in n for n in result.notes)
    assert result.summary == "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete."


def test_protected_resources_are_never_deleted_or_replaced():
    protected = live(user("acme", "boss"), stack="s", protected=True)
    with pytest.raises(PlanError, match="protected"):
        plan([], [protected], stack="s")
    with pytest.raises(PlanError, match="protected"):
        plan([user("acme", "boss", email="new@acme.example")], [protected], stack="s")


def test_archived_subscriptions_are_not_deleted_again():
    archived = live(document("CustomerSubscription", "c", "r", product="signatures-microsoft-365",
                           customerName="C", state="archived"), stack="s")
    assert plan([], [archived], stack="s").operations == ()


@pytest.mark.parametrize("stack", ["s", None])
def test_reactivating_an_archived_subscription_is_refused_by_the_plan(stack: str | None):
    fields = {"product": "signatures-microsoft-365", "customerName": "C"}
    archived = live(document("CustomerSubscription", "c", "r", **fields, state="archived"), stack=stack)
    for declared in (document("CustomerSubscription", "c", "r", **fields, state="active"),
                     document("CustomerSubscription", "c", "r", **fields)):  # active by default: declared again
        with pytest.raises(PlanError, match="r/c is archived, and archived is final: it cannot be reactivated"):
            plan([declared], [archived], stack=stack)
    # Still archived, with another field changed: an ordinary update.
    changed = document("CustomerSubscription", "c", "r", **fields, state="archived", users=3)
    assert [type(op) for op in plan([changed], [archived], stack=stack).operations] in ([Update], [Adopt])


def test_summary_counts_adoptions_as_updates():
    result = plan([org("a"), org("b")], [live(org("a"))], stack="s")
    assert result.summary == "Plan: 1 to create, 1 to update, 0 to replace, 0 to delete."


def test_monthly_cost_change_and_low_balance_warning():
    acme = live(org("acme"), stack="s")
    acme["status"] = {"balance": {"amount": "10.00", "currency": "EUR"}}
    result = plan(
        [org("acme"), user("acme", "a", subscription="pro"), user("acme", "b", subscription="entry")],
        [acme], stack="s", prices=Prices.of(),
    )
    [cost] = result.costs
    assert (cost.before, cost.after) == (Decimal("0"), Decimal("11.00"))
    assert any("balance 10.00 EUR" in w for w in result.warnings)


def test_no_warning_when_the_balance_covers_the_month():
    acme = live(org("acme"), stack="s")
    acme["status"] = {"balance": {"amount": "100.00", "currency": "EUR"}}
    result = plan([org("acme"), user("acme", "a", subscription="pro")], [acme], stack="s", prices=Prices.of())
    assert result.warnings == ()


def test_a_suspension_is_an_update_of_active():
    backend = live(user("acme", "alice", active=True, username="alice@acme.example"), stack="s")
    op = diff(KINDS["User"], user("acme", "alice", active=False), backend, "s")
    assert isinstance(op, Update)
    assert [(d.path, d.before, d.after) for d in op.diffs] == [(("spec", "active"), True, False)]


def test_a_username_left_out_is_the_email_on_both_sides():
    stored = live(user("acme", "alice", username="Alice@acme.example", email="Alice@acme.example"), stack="s")
    assert diff(KINDS["User"], user("acme", "alice", email="Alice@acme.example"), stored, "s") is None
    renamed = diff(KINDS["User"], user("acme", "alice", email="Alice@acme.example", username="alice"), stored, "s")
    assert isinstance(renamed, Update)
    assert [(d.path, d.before, d.after) for d in renamed.diffs] == [
        (("spec", "username"), "Alice@acme.example", "alice")
    ]


def test_import_leaves_out_a_username_equal_to_the_email_and_keeps_a_suspension():
    from provider.importer import manifest_document

    imported = manifest_document(live(user("acme", "alice", username="alice@acme.example", active=False)))
    assert imported["spec"] == {"email": "alice@acme.example", "displayName": "Alice", "active": False}
    own = manifest_document(live(user("acme", "bob", username="bob.smith")))
    assert own["spec"]["username"] == "bob.smith"
    assert diff(KINDS["User"], imported, live(user("acme", "alice", username="alice@acme.example", active=False))) \
        is None


def test_a_username_held_by_a_user_the_manifests_do_not_declare_fails_the_plan():
    directory_user = live(user("acme", "ada", username="Ada"))  # made over SCIM: no stack label
    with pytest.raises(PlanError, match="username 'ada' is already used by User acme/ada, which these manifests"):
        plan([org("acme"), user("acme", "bob", username="ada")], [live(org("acme"), stack="s"), directory_user],
             stack="s")
