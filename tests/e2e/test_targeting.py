"""`--target`, `--exclude`, `--selector` and set-aware diffs end to end: the real `tenancy` against a real backend."""

from __future__ import annotations

import json
from pathlib import Path

from tenancy_kinds import ResourceKey as K

from .conftest import Backend, write
from .manifests import ACME, ENV, users

BETA = """\
---
apiVersion: tenancy/v1
kind: Organization
metadata: {name: beta, labels: {tier: gold}}
spec: {displayName: Beta, plan: entry, domains: [beta.example]}
---
apiVersion: tenancy/v1
kind: User
metadata: {name: boss, organization: beta, labels: {tier: gold}}
spec: {email: boss@beta.example, displayName: Boss, role: administrator}
"""


def manifests(tmp: Path, body: str = ACME + BETA) -> Path:
    return write(tmp / "manifests", {"all.yaml": body, "tenancy.yaml": "stack: prod\n"})


def exists(backend: Backend, *keys: K) -> list[bool]:
    client = backend.client()
    return [client.get(key) is not None for key in keys]


ACME_ORG, BOB, ADA, BETA_ORG, BOSS = (K("Organization", "", "acme"), K("User", "acme", "bob"), K("User", "acme", "ada"),
                                      K("Organization", "", "beta"), K("User", "beta", "boss"))


def test_a_targeted_plan_and_apply_bring_what_the_target_needs_and_nothing_else(backend: Backend, tmp_path: Path):
    path = str(manifests(tmp_path))
    planned = backend.tenancy("plan", path, "--target", "User/acme/bob", "--detailed-exitcode", env=ENV)
    assert planned.rc == 2, planned.both
    assert "  + Organization acme\n" in planned.out and "  + MailboxQuota acme/main\n" in planned.out  # room first
    assert "  + User acme/bob\n" in planned.out and "User acme/ada" not in planned.out
    assert "Organization beta\n" not in planned.out and "User beta/boss" not in planned.out
    assert planned.out.endswith(
        "Targeted plan: 5 changes outside the selection are not planned.\n"
        "Plan: 3 to create, 0 to update, 0 to replace, 0 to delete.\n"
    )
    applied = backend.tenancy("apply", path, "--target", "User/acme/bob", "--yes", env=ENV)
    assert applied.rc == 0, applied.both
    assert "Apply complete: 3 applied, 0 failed, 0 skipped." in applied.out
    assert exists(backend, ACME_ORG, BOB, ADA, BETA_ORG) == [True, True, False, False]
    rest = backend.tenancy("plan", path, env=ENV)
    assert "Plan: 5 to create, 0 to update, 0 to replace, 0 to delete." in rest.out and "Targeted" not in rest.out


def test_an_excluded_apply_leaves_out_the_match_and_what_needs_it(embedded: Backend, tmp_path: Path):
    path = str(manifests(tmp_path))
    applied = embedded.tenancy("apply", path, "--exclude", "Organization/beta", "--yes", env=ENV)
    assert applied.rc == 0, applied.both
    assert "Targeted plan: 2 changes outside the selection are not planned." in applied.out
    assert "Plan: 6 to create, 0 to update, 0 to replace, 0 to delete." in applied.out
    assert exists(embedded, ACME_ORG, ADA, BETA_ORG, BOSS) == [True, True, False, False]


def test_a_selector_plans_the_labelled_resources(embedded: Backend, tmp_path: Path):
    planned = embedded.tenancy("plan", str(manifests(tmp_path)), "--selector", "tier=gold", "--json", env=ENV)
    assert planned.rc == 0, planned.both
    document = json.loads(planned.out)
    assert [(op["kind"], op["name"]) for op in document["operations"]] == [("Organization", "beta"), ("User", "boss")]
    assert document["selection"] == {
        "targets": [], "excludes": [], "selector": "tier=gold", "not_planned": 6,
        "text": "Targeted plan: 6 changes outside the selection are not planned.",
    }


def test_a_targeted_deletion_deletes_only_the_matching_vanished_resource(backend: Backend, tmp_path: Path):
    path = manifests(tmp_path, ACME + users(2))
    assert backend.tenancy("apply", str(path), "--yes", env=ENV).rc == 0
    (path / "all.yaml").write_text(ACME.replace("displayName: Bob", "displayName: Bob Builder"))  # u0, u1 vanish
    planned = backend.tenancy("plan", str(path), "--target", "User/acme/u0", env=ENV)
    assert planned.rc == 0, planned.both
    assert "  - User acme/u0\n" in planned.out and "u1" not in planned.out and "Bob Builder" not in planned.out
    assert "Targeted plan: 2 changes outside the selection are not planned." in planned.out
    applied = backend.tenancy("apply", str(path), "--target", "User/acme/u0", "--yes", env=ENV)
    assert applied.rc == 0, applied.both
    assert exists(backend, K("User", "acme", "u0"), K("User", "acme", "u1")) == [False, True]
    assert backend.client().get(BOB)["spec"]["displayName"] == "Bob"


def test_a_saved_targeted_plan_keeps_its_selection_and_apply_honours_it(backend: Backend, tmp_path: Path):
    path = str(manifests(tmp_path))
    saved = tmp_path / "beta.plan"
    planned = backend.tenancy("plan", path, "--target", "Organization/beta", "--out", str(saved), env=ENV)
    assert planned.rc == 0, planned.both
    document = json.loads(saved.read_text())
    assert document["selection"] == {"targets": ["Organization/beta"], "excludes": [], "selector": None}
    assert document["plan"]["selection"]["not_planned"] == 7
    both = backend.tenancy("apply", "--plan", str(saved), "--target", "User/beta/boss", "--yes", env=ENV)
    assert both.rc == 1 and "a saved plan keeps the selection it was made with" in both.err
    applied = backend.tenancy("apply", "--plan", str(saved), "--yes", env=ENV)
    assert applied.rc == 0, applied.both
    assert "Targeted plan: 7 changes outside the selection are not planned." in applied.out
    assert "Apply complete: 1 applied, 0 failed, 0 skipped." in applied.out
    assert exists(backend, BETA_ORG, BOSS, ACME_ORG) == [True, False, False]


def test_destroy_with_a_target_deletes_only_that_and_what_must_go_first(embedded: Backend, tmp_path: Path):
    path = str(manifests(tmp_path))
    assert embedded.tenancy("apply", path, "--yes", env=ENV).rc == 0
    destroyed = embedded.tenancy("destroy", path, "--target", "User/acme/bob", "--yes", env=ENV)
    assert destroyed.rc == 0, destroyed.both
    # The team and the alias name bob: they go first; nothing else does.
    assert "Plan: 0 to create, 0 to update, 0 to replace, 3 to delete." in destroyed.out
    assert exists(embedded, BOB, K("Team", "acme", "sales"), K("Alias", "acme", "info"), ADA, BOSS) == [
        False, False, False, True, True]


def test_an_address_that_matches_nothing_is_an_error_naming_the_closest(embedded: Backend, tmp_path: Path):
    path = str(manifests(tmp_path))
    wrong = embedded.tenancy("plan", path, "--target", "User/acme/bobb", "--exclude", "Team/acme/sale", env=ENV)
    assert wrong.rc == 1
    assert "Error: --target User/acme/bobb matches no resource; the closest addresses: User/acme/bob" in wrong.err
    assert "--exclude Team/acme/sale matches no resource; the closest addresses: Team/acme/sales" in wrong.err
    assert "Traceback" not in wrong.both
    malformed = embedded.tenancy("apply", path, "--target", "acme", "--yes", env=ENV)
    assert malformed.rc == 1 and "--target 'acme' is not an address: write Organization/NAME" in malformed.err
    assert exists(embedded, ACME_ORG) == [False]


def test_a_team_change_shows_who_joins_and_who_leaves(embedded: Backend, tmp_path: Path):
    path = manifests(tmp_path, ACME + users(1))
    assert embedded.tenancy("apply", str(path), "--yes", env=ENV).rc == 0
    (path / "all.yaml").write_text(ACME.replace("members: [ada, bob]", "members: [ada, u0]") + users(1))
    planned = embedded.tenancy("plan", str(path), env=ENV)
    assert "  ~ Team acme/sales\n      ~ spec.members: + u0, - bob\n" in planned.out, planned.out
    markdown = embedded.tenancy("plan", str(path), "--format", "markdown", env=ENV)
    assert "    ~ spec.members: + u0, - bob\n" in markdown.out


NO_NEW_USERS = """package main

import rego.v1

deny contains msg if {
\tsome op in input.operations
\top.kind == "User"
\top.action == "create"
\tmsg := sprintf("%s/%s: no new users this week", [op.organization, op.name])
}

warn contains msg if {
\tinput.selection != null
\tmsg := sprintf("targeted: %s", [input.selection.text])
}
"""


def test_policies_judge_the_targeted_plan_that_is_printed(embedded: Backend, tmp_path: Path):
    path = str(manifests(tmp_path))
    policy = write(tmp_path / "policies", {"users.rego": NO_NEW_USERS}) / "users.rego"
    whole = embedded.tenancy("apply", path, "--policy", str(policy), "--yes", env=ENV)
    assert whole.rc == 1 and "FAIL - " in whole.err and "acme/ada: no new users this week" in whole.err
    targeted = embedded.tenancy("apply", path, "--policy", str(policy), "--target", "Organization/*", "--yes", env=ENV)
    assert targeted.rc == 0, targeted.both
    assert "WARN - " in targeted.err and "targeted: Targeted plan: 6 changes outside the selection" in targeted.err
    assert exists(embedded, ACME_ORG, BETA_ORG, ADA) == [True, True, False]
