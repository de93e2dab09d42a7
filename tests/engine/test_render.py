"""Rendering: Terraform-like text, a stable JSON document, Markdown for pull requests; no secret ever."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from provider import render
from provider.costs import Prices
from provider.plan import plan

from tests.builders import live, org, user


def sample_plan():
    current = [
        live(org("acme"), stack="s"),
        live(user("acme", "bob", subscription="free"), stack="s"),
        live(user("acme", "carl"), stack="s"),
        live(user("acme", "dora"), stack="s"),
    ]
    desired = [
        org("acme"),
        user("acme", "ann", role="administrator", password={"fromEnv": "ANN_PW"}),
        user("acme", "bob", subscription="pro"),
        user("acme", "carl", email="carl.new@acme.example"),
    ]
    return plan(desired, current, stack="s", prices=Prices.of())  # in apply order


def test_text_has_symbols_field_diffs_sensitive_marker_costs_and_the_exact_summary():
    out = render.text(sample_plan())
    assert "  + User acme/ann" in out
    assert '      + spec.role: "administrator"' in out
    assert "      + spec.password: (sensitive)" in out
    assert '  ~ User acme/bob' in out and '~ spec.subscription: "free" → "pro"' in out
    assert "  -/+ User acme/carl (replace: email is immutable)" in out
    assert "# forces replacement" in out and "mailbox" in out
    assert "  - User acme/dora" in out
    assert "acme: 0.00 → 7.50 EUR (+7.50)" in out
    assert out.rstrip().endswith("Plan: 1 to create, 1 to update, 1 to replace, 1 to delete.")
    assert "ANN_PW" not in out


def test_empty_plan_still_prints_the_summary_line():
    out = render.text(plan([org("acme")], [live(org("acme"), stack="s")], stack="s"))
    assert out.rstrip().endswith("Plan: 0 to create, 0 to update, 0 to replace, 0 to delete.")


def test_json_is_stable_and_versioned():
    document = json.loads(render.json_text(sample_plan()))
    assert document["format_version"] == "1.3"
    assert document["selection"] is None  # a whole plan
    assert document["summary"] == {
        "create": 1, "update": 1, "adopt": 0, "replace": 1, "delete": 1,
        "text": "Plan: 1 to create, 1 to update, 1 to replace, 1 to delete.",
    }
    replace = next(op for op in document["operations"] if op["action"] == "replace")
    assert replace["replace_fields"] == ["email"] and replace["resource_version"] == "1"
    password = next(c for op in document["operations"] for c in op["changes"] if c["path"] == "spec.password")
    assert password == {"path": "spec.password", "before": None, "after": "(sensitive)", "sensitive": True}
    assert document["costs"][0]["delta"] == "+7.50"


def labelled(document: dict, **labels: str) -> dict:
    return {**document, "metadata": {**document["metadata"], "labels": labels}}


def test_json_operations_carry_their_labels_and_their_organizations_labels():
    """What policies judge by (examples/policies/): a tier=master organization, an approved user."""
    current = [
        live(labelled(org("acme"), tier="master"), stack="s"),
        live(labelled(user("acme", "bob"), approved="true"), stack="s"),
        live(user("acme", "carl"), stack="s"),
    ]
    desired = [labelled(org("acme"), tier="master"), labelled(user("acme", "bob", subscription="pro"), approved="true")]
    operations = {op["name"]: op for op in render.as_json(plan(desired, current, stack="s"))["operations"]}
    assert set(operations) == {"bob", "carl"}  # the organization is unchanged, its labels are still known
    assert operations["bob"]["labels"] == {"approved": "true", "tenancy/stack": "s"}  # after the change
    assert operations["carl"]["labels"] == {"tenancy/stack": "s"}  # a deletion: as the backend holds it
    assert operations["carl"]["organization_labels"] == {"tier": "master", "tenancy/stack": "s"}
    desired[0] = labelled(org("acme"), tier="gold")  # the organization's labels as they will be
    relabelled = render.as_json(plan(desired, current, stack="s"))["operations"]
    assert {op["name"]: op["organization_labels"] for op in relabelled} == {
        "acme": None, "bob": {"tier": "gold", "tenancy/stack": "s"}, "carl": {"tier": "gold", "tenancy/stack": "s"},
    }


def test_markdown_for_pull_requests():
    out = render.markdown(sample_plan())
    assert out.startswith("### Tenancy plan — stack `s`")
    assert "**Plan: 1 to create, 1 to update, 1 to replace, 1 to delete.**" in out
    assert "```diff" in out and "| `acme` | 0.00 EUR | 7.50 EUR | +7.50 |" in out


def test_a_suspension_reads_as_an_update_of_active():
    current = [live(org("acme"), stack="s"), live(user("acme", "bob", active=True, username="bob@acme.example"),
                                                   stack="s")]
    out = render.text(plan([org("acme"), user("acme", "bob", active=False)], current, stack="s"))
    assert "  ~ User acme/bob\n      ~ spec.active: true → false\n" in out
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete." in out


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=500, deadline=None)
@given(_json_values)
def test_a_value_reads_as_json_writes_it(value):
    """The shortcuts for strings, booleans and integers write exactly what json.dumps writes."""
    expected = "(sensitive)" if value == "(sensitive)" else json.dumps(value, ensure_ascii=False, sort_keys=True)
    assert render._value(value) == expected


def test_a_value_with_quotes_backslashes_and_control_characters_is_escaped():
    for text in ['say "hi"', "back\\slash", "tab\there", "line\nbreak", "bell\x07", "dél\u2028"]:
        assert render._value(text) == json.dumps(text, ensure_ascii=False)
