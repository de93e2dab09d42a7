"""`tenancy plan/apply/destroy/import` end to end, over HTTP on loopback and embedded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tenancy_kinds import ResourceKey as K
from tests.builders import org, user

from .conftest import REPO, Backend, write
from .manifests import ACME, ENV, PASSWORD, users

EMPTY = "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete."


def acme(tmp: Path, extra: str = "", stack: str | None = "prod", body: str = ACME) -> Path:
    files = {"acme.yaml": body + extra}
    if stack:
        files["tenancy.yaml"] = f"stack: {stack}\n"
    return write(tmp / "manifests", files)


def test_examples_apply_then_plan_empty(backend: Backend):
    examples = str(REPO / "examples")
    first = backend.tenancy("apply", examples, "--yes")
    assert first.rc == 0, first.both
    assert "Apply complete" in first.out
    again = backend.tenancy("plan", examples, "--detailed-exitcode")
    assert again.rc == 0, again.both
    assert EMPTY in again.out


def test_each_example_directory_applies_and_plans_empty(embedded: Backend):
    for directory in sorted(
        p for p in (REPO / "examples").iterdir() if p.is_dir() and p.name not in {"gitops", "pulumi", "policies"}
    ):
        first = embedded.tenancy("apply", str(directory), "--yes")
        assert first.rc == 0, (directory.name, first.both)
        again = embedded.tenancy("plan", str(directory), "--detailed-exitcode")
        assert (again.rc, EMPTY in again.out) == (0, True), (directory.name, again.both)


def test_drift_made_through_the_api_is_shown_with_before_and_after(backend: Backend, tmp_path: Path):
    manifests = acme(tmp_path)
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    client = backend.client()
    bob = client.get(K("User", "acme", "bob"))
    bob["spec"]["displayName"] = "Robert"
    client.update(bob, if_match=bob["metadata"]["resourceVersion"])
    drift = backend.tenancy("plan", str(manifests), "--detailed-exitcode", env=ENV)
    assert drift.rc == 2, drift.both
    assert "~ User acme/bob" in drift.out
    assert '~ spec.displayName: "Robert" → "Bob"' in drift.out
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete." in drift.out


def test_a_stale_saved_plan_is_refused_and_changes_nothing(backend: Backend, tmp_path: Path):
    manifests = acme(tmp_path)
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    (manifests / "acme.yaml").write_text(ACME.replace("displayName: Bob", "displayName: Bob Builder"))
    saved = tmp_path / "tenancy.plan"
    planned = backend.tenancy("plan", str(manifests), "--out", str(saved), env=ENV)
    assert planned.rc == 0 and saved.exists()
    client = backend.client()
    bob = client.get(K("User", "acme", "bob"))
    bob["spec"]["subscription"] = "pro"
    client.update(bob, if_match=bob["metadata"]["resourceVersion"])
    applied = backend.tenancy("apply", "--plan", str(saved), "--yes", env=ENV)
    assert applied.rc == 1, applied.both
    assert "stale" in applied.err and "User acme/bob: changed since (resourceVersion " in applied.err
    assert client.get(K("User", "acme", "bob"))["spec"]["displayName"] == "Bob"


def test_a_stale_saved_plan_says_what_was_created_or_deleted_since(backend: Backend, tmp_path: Path):
    manifests = acme(tmp_path)
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    (manifests / "acme.yaml").write_text(ACME.replace("displayName: Bob", "displayName: Bob Builder") + users(1))
    saved = tmp_path / "tenancy.plan"
    assert backend.tenancy("plan", str(manifests), "--out", str(saved), env=ENV).rc == 0
    client = backend.client()
    client.create(yaml.safe_load(users(1).split("---\n", 1)[1]))  # the planned create, done by someone else
    for key in (K("Alias", "acme", "info"), K("Team", "acme", "sales"), K("User", "acme", "bob")):
        client.delete(key, if_match=None)  # the last one is the planned update's target
    applied = backend.tenancy("apply", "--plan", str(saved), "--yes", env=ENV)
    assert applied.rc == 1, applied.both
    assert "User acme/u0: created since (resourceVersion absent → " in applied.err
    assert "User acme/bob: deleted since (resourceVersion " in applied.err and " → absent)" in applied.err
    assert "unchanged now" not in applied.err


def test_a_fresh_saved_plan_applies(backend: Backend, tmp_path: Path):
    manifests = acme(tmp_path)
    saved = tmp_path / "tenancy.plan"
    assert backend.tenancy("plan", str(manifests), "--out", str(saved), env=ENV).rc == 0
    assert PASSWORD not in saved.read_text()
    applied = backend.tenancy("apply", "--plan", str(saved), "--yes", env=ENV)
    assert applied.rc == 0, applied.both
    assert EMPTY in backend.tenancy("plan", str(manifests), env=ENV).out


@pytest.mark.parametrize(
    "edit, field_name",
    [
        (lambda p: p.pop("versions"), "the document"),
        (lambda p: p.update(versions={"bob": "1"}), "versions"),
        (lambda p: p["versions"].update({"User/acme/bob": 7}), "versions.User/acme/bob"),
        (lambda p: p.update(paths="manifests"), "paths"),
        (lambda p: p.update(selection={"targets": "User/acme/bob"}), "selection.targets"),
        (lambda p: p.update(selection={"targets": ["User/acme/bob"]}), "selection"),  # not the whole plan
    ],
)
def test_a_saved_plan_edited_by_hand_is_refused_with_the_field_and_changes_nothing(
    embedded: Backend, tmp_path: Path, edit: Any, field_name: str
):
    manifests = acme(tmp_path)
    saved = tmp_path / "tenancy.plan"
    assert embedded.tenancy("plan", str(manifests), "--out", str(saved), env=ENV).rc == 0
    document = json.loads(saved.read_text())
    edit(document)
    saved.write_text(json.dumps(document))
    applied = embedded.tenancy("apply", "--plan", str(saved), "--yes", env=ENV)
    assert applied.rc == 1, applied.both
    assert f"{saved} is not a saved plan as `tenancy plan --out` writes it ({field_name}: " in applied.err
    assert "internal error" not in applied.both and "Traceback" not in applied.both
    assert "Plan: 6 to create" in embedded.tenancy("plan", str(manifests), env=ENV).out


def test_the_deletion_guard_refuses_before_touching_anything(backend: Backend, tmp_path: Path):
    manifests = acme(tmp_path, extra=users(27))
    (manifests / "acme.yaml").write_text(ACME.replace("maxAddresses: 10", "maxAddresses: 40") + users(27))
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    (manifests / "acme.yaml").write_text(ACME)
    refused = backend.tenancy("apply", str(manifests), "--yes", env=ENV)
    assert refused.rc == 1
    assert "more than --max-deletions 25" in refused.err
    assert backend.client().get(K("User", "acme", "u0")) is not None
    allowed = backend.tenancy("apply", str(manifests), "--yes", "--max-deletions", "30", env=ENV)
    assert allowed.rc == 0, allowed.both
    assert backend.client().get(K("User", "acme", "u0")) is None


def test_without_a_stack_nothing_is_deleted(backend: Backend, tmp_path: Path):
    manifests = acme(tmp_path, extra=users(1), stack=None)
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    (manifests / "acme.yaml").write_text(ACME)
    result = backend.tenancy("plan", str(manifests), "--detailed-exitcode", env=ENV)
    assert result.rc == 0, result.both
    assert "nothing will be deleted" in result.out and EMPTY in result.out


def test_an_unlabelled_resource_is_adopted(backend: Backend, tmp_path: Path):
    client = backend.client()
    client.create(
        {
            "apiVersion": "tenancy/v1",
            "kind": "Organization",
            "metadata": {"name": "acme"},
            "spec": {"displayName": "Acme Corp", "plan": "entry", "domains": ["acme.example"]},
        }
    )
    manifests = acme(tmp_path)
    result = backend.tenancy("plan", str(manifests), env=ENV)
    assert "= Organization acme (adopt into stack prod)" in result.out, result.both
    assert "Plan: 5 to create, 1 to update, 0 to replace, 0 to delete." in result.out
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    assert client.get(K("Organization", "", "acme"))["metadata"]["labels"]["tenancy/stack"] == "prod"


def test_another_stacks_resource_is_an_error(backend: Backend, tmp_path: Path):
    assert backend.tenancy("apply", str(acme(tmp_path)), "--yes", env=ENV).rc == 0
    result = backend.tenancy("plan", str(tmp_path / "manifests"), "--stack", "other", env=ENV)
    assert result.rc == 1
    assert "owned by stack 'prod'" in result.err


def test_import_round_trip_plans_empty(backend: Backend, tmp_path: Path):
    assert backend.tenancy("apply", str(acme(tmp_path)), "--yes", env=ENV).rc == 0
    out = tmp_path / "imported"
    imported = backend.tenancy("import", "--organization", "acme", "--out", str(out))
    assert imported.rc == 0, imported.both
    text = (out / "acme.yaml").read_text()
    assert "password" not in text and "uid" not in text and "resourceVersion" not in text
    again = backend.tenancy("plan", str(out), "--detailed-exitcode")
    assert again.rc == 0, again.both
    assert EMPTY in again.out


def test_importing_one_organization_of_a_larger_stack_plans_empty_and_deletes_nothing(
    backend: Backend, tmp_path: Path
):
    manifests = acme(tmp_path)
    (manifests / "beta.yaml").write_text(
        "apiVersion: tenancy/v1\nkind: Organization\nmetadata: {name: beta}\n"
        "spec: {displayName: Beta, plan: free, domains: [beta.example]}\n"
    )
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    out = tmp_path / "imported"
    imported = backend.tenancy("import", "--organization", "acme", "--out", str(out))
    assert imported.rc == 0, imported.both
    assert "stack prod also holds 1 resource outside acme" in imported.out
    assert not any(line.startswith("stack:") for line in (out / "tenancy.yaml").read_text().splitlines())
    again = backend.tenancy("plan", str(out), "--detailed-exitcode")
    assert again.rc == 0, again.both  # as stack prod, this plan would delete beta
    assert EMPTY in again.out


def test_a_failure_reports_every_outcome_and_a_rerun_converges(backend: Backend, tmp_path: Path):
    client = backend.client()
    # A user of another organization already has ada's password. Only the backend can know that (passwords
    # are never shown), so the plan cannot foresee the refusal: apply meets it half-way.
    client.create(org("squatter"))
    client.create(user("squatter", "sam", role="administrator", password=PASSWORD))
    manifests = acme(tmp_path)
    failed = backend.tenancy("apply", str(manifests), "--yes", env=ENV)
    assert failed.rc == 1
    assert "failed: + User acme/ada" in failed.out and "already used by a user of another organization" in failed.out
    assert "skipped: + Team acme/sales" in failed.out and "because User acme/ada failed" in failed.out
    assert "4 applied, 1 failed, 1 skipped" in failed.out
    assert client.get(K("User", "acme", "bob")) is not None
    client.delete(K("User", "squatter", "sam"), if_match=None)
    rerun = backend.tenancy("apply", str(manifests), "--yes", env=ENV)
    assert rerun.rc == 0, rerun.both
    assert "Plan: 2 to create, 0 to update" in rerun.out
    assert EMPTY in backend.tenancy("plan", str(manifests), env=ENV).out


def test_the_plan_judges_unique_values_and_quotas_against_what_it_does_not_declare(backend: Backend, tmp_path: Path):
    client = backend.client()
    client.create(
        {
            "apiVersion": "tenancy/v1",
            "kind": "Organization",
            "metadata": {"name": "squatter"},
            "spec": {"displayName": "Squatter", "domains": ["beta.example"]},
        }
    )
    beta = (
        "---\napiVersion: tenancy/v1\nkind: Organization\nmetadata: {name: beta}\n"
        "spec: {displayName: Beta, plan: entry, domains: [beta.example]}\n"
        "---\napiVersion: tenancy/v1\nkind: User\nmetadata: {name: boss, organization: beta}\n"
        "spec: {email: boss@beta.example, displayName: Boss, role: administrator}\n"
    )
    refused = backend.tenancy("plan", str(acme(tmp_path, extra=beta)), env=ENV)
    assert refused.rc == 1 and refused.out == ""
    assert (
        "Organization beta: domain 'beta.example' is already used by Organization squatter, which these "
        "manifests do not declare"
    ) in refused.err
    # A user these manifests do not declare (and, with no stack, never delete) still has a mailbox.
    manifests = acme(tmp_path / "acme")
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    (manifests / "acme.yaml").write_text(ACME.replace("maxAddresses: 10", "maxAddresses: 5"))
    for i in range(4):
        client.create(yaml.safe_load(users(1, start=i).split("---\n", 1)[1]))
    lowered = backend.tenancy("plan", str(manifests), env=ENV)
    assert lowered.rc == 1
    assert (
        "MailboxQuota acme/main: maxAddresses 5 is below the 6 addresses that would be in use on acme.example"
        in lowered.err
    )


def test_a_secret_from_the_environment_appears_nowhere(backend: Backend, tmp_path: Path):
    manifests = acme(tmp_path)
    saved = tmp_path / "saved.plan"
    outputs = [
        backend.tenancy("plan", str(manifests), "--out", str(saved), env=ENV),
        backend.tenancy("plan", str(manifests), "--json", env=ENV),
        backend.tenancy("plan", str(manifests), "--format", "markdown", env=ENV),
        backend.tenancy("apply", str(manifests), "--yes", env=ENV),
    ]
    (manifests / "acme.yaml").write_text(ACME.replace("subscription: pro", "subscription: pro\n  passwordVersion: 2"))
    outputs.append(backend.tenancy("apply", str(manifests), "--yes", env=ENV))
    assert "(sensitive)" in outputs[0].out
    for result in outputs:
        assert result.rc == 0, result.both
        assert PASSWORD not in result.both
    assert PASSWORD not in saved.read_text()
    for db_file in tmp_path.glob("tenancy.db*"):
        assert PASSWORD.encode() not in db_file.read_bytes()


def test_a_quota_shrinks_after_the_mailboxes_leave(backend: Backend, tmp_path: Path):
    manifests = acme(tmp_path, extra=users(6))
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    (manifests / "acme.yaml").write_text(ACME.replace("maxAddresses: 10", "maxAddresses: 5") + users(3))
    shrink = backend.tenancy("apply", str(manifests), "--yes", env=ENV)
    assert shrink.rc == 0, shrink.both
    quota = backend.client().get(K("MailboxQuota", "acme", "main"))
    assert quota["spec"]["maxAddresses"] == 5 and quota["status"]["usedAddresses"] == 5


def test_apply_without_a_terminal_and_without_yes_refuses(backend: Backend, tmp_path: Path):
    result = backend.tenancy("apply", str(acme(tmp_path)), env=ENV, input="")
    assert result.rc == 1
    assert "--yes" in result.err
    assert backend.client().get(K("Organization", "", "acme")) is None


def test_json_and_markdown_plans(embedded: Backend, tmp_path: Path):
    manifests = acme(tmp_path)
    document = json.loads(embedded.tenancy("plan", str(manifests), "--json", env=ENV).out)
    assert document["format_version"] == "1.3" and document["summary"]["create"] == 6
    markdown = embedded.tenancy("plan", str(manifests), "--format", "markdown", env=ENV).out
    assert markdown.startswith("### Tenancy plan — stack `prod`")


def test_destroy_deletes_what_the_stack_manages(backend: Backend, tmp_path: Path):
    manifests = acme(tmp_path)
    assert backend.tenancy("apply", str(manifests), "--yes", env=ENV).rc == 0
    gone = backend.tenancy("destroy", str(manifests), "--yes", env=ENV)
    assert gone.rc == 0, gone.both
    assert "0 to create, 0 to update, 0 to replace, 6 to delete." in gone.out
    assert backend.client().get(K("Organization", "", "acme")) is None


def test_bad_manifests_are_refused_with_file_and_line(embedded: Backend, tmp_path: Path):
    manifests = acme(tmp_path, body=ACME.replace("role: administrator", "role: boss"))
    result = embedded.tenancy("plan", str(manifests), env=ENV)
    assert result.rc == 1
    assert "acme.yaml:" in result.err and "role" in result.err
    assert "Traceback" not in result.both
    shutil.rmtree(manifests)
