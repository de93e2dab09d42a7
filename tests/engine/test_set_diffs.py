"""Set-aware list diffs: a set-valued field's change says what joins and what leaves, never the whole list."""

from __future__ import annotations

import json

import pytest

from provider import render
from provider.diff import diff
from provider.operations import Create, Update
from provider.plan import plan
from tenancy_kinds import KINDS

from tests.builders import document, live, org

SET_FIELDS = sorted((kind.name, name) for kind in KINDS.values() for name in kind.unordered)


def team(*members: str, **spec: object) -> dict:
    spec.setdefault("displayName", "Sales")
    return document("Team", "sales", "acme", members=list(members), **spec)


def test_the_table_of_kinds_declares_the_set_valued_fields_of_the_spec():
    assert SET_FIELDS == [
        ("CustomerSubscription", "signatureModes"), ("Organization", "domains"),
        ("Team", "externalMembers"), ("Team", "members"), ("Team", "shares"),
    ]


def test_a_set_change_is_one_field_diff_with_what_joins_and_what_leaves():
    op = diff(KINDS["Team"], team("ann", "dave", "bob"), live(team("carl", "bob", "ann"), stack="s"), "s")
    assert isinstance(op, Update)
    [change] = op.diffs
    assert change.path == ("spec", "members")
    assert (change.added, change.removed) == (("dave",), ("carl",))
    assert (change.before, change.after) == (["ann", "bob", "carl"], ["ann", "bob", "dave"])  # whole, sorted


def test_text_and_markdown_show_only_the_newcomer_and_the_leaver():
    result = plan([team("ann", "bob", "dave")], [live(team("ann", "bob", "carl"), stack="s")], stack="s")
    assert "      ~ spec.members: + dave, - carl\n" in render.text(result)
    assert "    ~ spec.members: + dave, - carl\n" in render.markdown(result)
    assert "ann" not in render.text(result) and "ann" not in render.markdown(result)


def test_json_carries_added_and_removed_beside_before_and_after():
    result = plan([team("ann", "dave")], [live(team("ann", "bob", "carl"), stack="s")], stack="s")
    [operation] = json.loads(render.json_text(result))["operations"]
    assert operation["changes"] == [{
        "path": "spec.members", "before": ["ann", "bob", "carl"], "after": ["ann", "dave"], "sensitive": False,
        "added": ["dave"], "removed": ["bob", "carl"],
    }]


def test_a_ten_thousand_member_team_with_one_newcomer_is_a_one_line_diff():
    members = [f"user{i:05d}" for i in range(10_000)]
    result = plan([team(*members, "zoe")], [live(team(*members), stack="s")], stack="s")
    lines = [line for line in render.text(result).splitlines() if line.startswith("      ")]
    assert lines == ["      ~ spec.members: + zoe"]


@pytest.mark.parametrize(("kind", "field"), SET_FIELDS)
def test_every_set_valued_field_of_the_table_diffs_as_a_set(kind: str, field: str):
    base = {
        "Organization": org("acme", domains=["a.example", "b.example"]),
        "Team": team("ann", shares=["calendars", "documents"], externalMembers=["x@out.example", "y@out.example"]),
        "CustomerSubscription": document("CustomerSubscription", "c", "acme", product="signatures-microsoft-365",
                                       customerName="C", signatureModes=["server-side", "client-side"]),
    }[kind]
    new_value = {"domains": ["b.example", "c.example"], "shares": ["documents", "contacts"],
                 "externalMembers": ["y@out.example", "z@out.example"],
                 "signatureModes": ["client-side", "exchange-on-premises"]}.get(field, ["ann", "bob"])
    desired = {**base, "spec": {**base["spec"], field: new_value}}
    op = diff(KINDS[kind], desired, live(base, stack="s"), "s")
    assert op is not None
    [change] = [d for d in op.diffs if d.path == ("spec", field)]
    assert change.is_set
    assert set(change.added or ()) == set(new_value) - set(base["spec"][field])
    assert set(change.removed or ()) == set(base["spec"][field]) - set(new_value)


def test_other_lists_and_scalars_keep_before_and_after():
    op = diff(KINDS["Team"], team("ann", displayName="Sales EU"), live(team("ann"), stack="s"), "s")
    assert op is not None
    [change] = op.diffs
    assert not change.is_set and (change.added, change.removed) == (None, None)
    out = render.text(plan([team("ann", displayName="Sales EU")], [live(team("ann"), stack="s")], stack="s"))
    assert '~ spec.displayName: "Sales" → "Sales EU"' in out


def test_a_create_lists_the_whole_set_as_before_and_its_json_says_everything_joins():
    op = diff(KINDS["Team"], team("bob", "ann"), None, "s")
    assert isinstance(op, Create)
    result = plan([team("bob", "ann")], [], stack="s")
    assert '      + spec.members: ["ann", "bob"]' in render.text(result)
    [operation] = json.loads(render.json_text(result))["operations"]
    [members] = [c for c in operation["changes"] if c["path"] == "spec.members"]
    assert members == {"path": "spec.members", "before": None, "after": ["ann", "bob"], "sensitive": False,
                       "added": ["ann", "bob"], "removed": []}


def test_a_deletion_json_says_everything_leaves():
    result = plan([], [live(team("bob", "ann"), stack="s")], stack="s")
    [operation] = json.loads(render.json_text(result))["operations"]
    assert operation["action"] == "delete"
    [members] = [c for c in operation["changes"] if c["path"] == "spec.members"]
    assert (members["added"], members["removed"]) == ([], ["ann", "bob"])
