"""`--policy` and `policy:` end to end: the real `tenancy` command against a real `tenancy serve` on loopback.

A failing policy makes `plan` exit 1 and `apply` (also `--plan`) and `destroy` refuse with nothing changed
on the backend; warnings pass. The policies are the shipped examples/policies/ (written as conftest users
write them) and small ones written here. One server for the module: each test has organizations of its own.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenancy_kinds import ResourceKey as K

from .conftest import REPO, Backend, write
from .manifests import ACME

EXAMPLE_POLICIES = REPO / "examples" / "policies"
_NUMBERS = itertools.count()

NO_PRO = """package main

import rego.v1

deny contains msg if {
\tsome op in input.operations
\tsome change in op.changes
\tchange.path == "spec.subscription"
\tchange.after == "pro"
\tmsg := sprintf("%s may not move to pro", [op.name])
}
"""
WARN_PRO = NO_PRO.replace("deny contains", "warn contains").replace("may not", "should think twice before it may")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from tests.support import start_server

    running = start_server(f"sqlite:///{tmp_path_factory.mktemp('backend') / 'tenancy.db'}")
    try:
        yield running.url, running.token
    finally:
        running.stop()


@pytest.fixture
def served(server: tuple[str, str], tmp_path: Path) -> Backend:
    url, token = server
    return Backend("http", {"TENANCY_BACKEND": url, "TENANCY_TOKEN": token}, tmp_path)


@pytest.fixture
def org() -> str:
    """An organization of this test's own (names, domains and addresses unique on the shared server)."""
    return f"acme{next(_NUMBERS)}"


def bob(org: str) -> K:
    return K("User", org, "bob")


def subscription(backend: Backend, key: K) -> str:
    document = backend.client().get(key)
    assert document is not None, key
    return str(document["spec"]["subscription"])


def applied_acme(backend: Backend, tmp_path: Path, org: str) -> Path:
    """ACME (as `org`, in a stack of its own) applied without policies, then edited: bob moves to pro."""
    body = ACME.replace("acme", org).replace("Acme Corp", f"Acme {org}")
    body = body.replace("  password: {fromEnv: ADA_PASSWORD}\n", "")  # a password serves one organization only
    manifests = write(tmp_path / "manifests", {"acme.yaml": body, "tenancy.yaml": f"stack: {org}\n"})
    first = backend.tenancy("apply", str(manifests), "--yes")
    assert first.rc == 0, first.both
    (manifests / "acme.yaml").write_text(body.replace("subscription: entry", "subscription: pro"))
    return manifests


def policy_file(tmp_path: Path, text: str, name: str = "policy.rego") -> Path:
    path = tmp_path / "policies" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_deny_policy_stops_apply_with_nothing_changed(served: Backend, tmp_path: Path, org: str):
    manifests = applied_acme(served, tmp_path, org)
    before = served.client().get(bob(org))
    deny = policy_file(tmp_path, NO_PRO)
    refused = served.tenancy("apply", str(manifests), "--yes", "--policy", str(deny))
    assert refused.rc == 1, refused.both
    assert f"FAIL - {deny} - main - bob may not move to pro" in refused.err
    assert "1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions" in refused.err
    assert "the plan fails its policies (1 failure, FAIL above): nothing was changed" in refused.err
    assert f"~ User {org}/bob" in refused.out  # the plan is shown, so that the failure can be understood
    assert served.client().get(bob(org)) == before  # untouched: same subscription, same resourceVersion


def test_a_warn_policy_lets_apply_through(served: Backend, tmp_path: Path, org: str):
    manifests = applied_acme(served, tmp_path, org)
    warn = policy_file(tmp_path, WARN_PRO)
    result = served.tenancy("apply", str(manifests), "--yes", "--policy", str(warn))
    assert result.rc == 0, result.both
    assert f"WARN - {warn} - main - bob should think twice before it may move to pro" in result.err
    assert "1 test, 0 passed, 1 warning, 0 failures, 0 exceptions" in result.err
    assert subscription(served, bob(org)) == "pro"


def test_apply_of_a_saved_plan_honours_policies_given_and_configured(served: Backend, tmp_path: Path, org: str):
    manifests = applied_acme(served, tmp_path, org)
    before = served.client().get(bob(org))
    saved = tmp_path / "tenancy.plan"
    assert served.tenancy("plan", str(manifests), "--out", str(saved)).rc == 0
    deny = policy_file(tmp_path, NO_PRO)
    given = served.tenancy("apply", "--plan", str(saved), "--yes", "--policy", str(deny))
    assert given.rc == 1 and "FAIL - " in given.err, given.both
    # `policy:` in tenancy.yaml, relative to it, is read again with the manifests
    (manifests / "tenancy.yaml").write_text(f"stack: {org}\npolicy: [../policies]\n")
    configured = served.tenancy("apply", "--plan", str(saved), "--yes")
    assert configured.rc == 1, configured.both
    assert "bob may not move to pro" in configured.err
    assert served.client().get(bob(org)) == before
    (manifests / "tenancy.yaml").write_text(f"stack: {org}\n")
    assert served.tenancy("apply", "--plan", str(saved), "--yes").rc == 0
    assert subscription(served, bob(org)) == "pro"


def test_plan_exits_1_on_a_deny_keeps_the_json_plan_alone_on_stdout_and_saves_nothing(
    served: Backend, tmp_path: Path, org: str
):
    manifests = applied_acme(served, tmp_path, org)
    plain = served.tenancy("plan", str(manifests), "--json")
    saved = tmp_path / "refused.plan"
    judged = served.tenancy(
        "plan", str(manifests), "--json", "--out", str(saved), "--policy", str(policy_file(tmp_path, NO_PRO))
    )
    assert (plain.rc, judged.rc) == (0, 1), judged.both
    assert judged.out == plain.out  # standard output is the plan and nothing else
    assert json.loads(judged.out)["summary"]["update"] == 1
    assert "FAIL - " in judged.err and "FAIL" not in judged.out
    assert not saved.exists()


def test_the_policies_read_exactly_what_plan_json_prints(served: Backend, tmp_path: Path, org: str):
    manifests = applied_acme(served, tmp_path, org)
    echo = policy_file(tmp_path, "package main\n\nimport rego.v1\n\nwarn contains json.marshal(input) if true\n")
    judged = served.tenancy("plan", str(manifests), "--policy", str(echo))
    assert judged.rc == 0, judged.both
    [line] = [line for line in judged.err.splitlines() if line.startswith("WARN - ")]
    seen = json.loads(line.split(" - main - ", 1)[1])
    assert seen == json.loads(served.tenancy("plan", str(manifests), "--json").out)
    [bob] = [op for op in seen["operations"] if op["name"] == "bob"]
    assert (bob["labels"], bob["organization_labels"]) == ({"tenancy/stack": org}, {"tenancy/stack": org})


def test_the_example_policies_guard_a_master_tenant_in_both_conftest_styles(served: Backend, tmp_path: Path):
    tenants = tmp_path / "master-tenant"
    shutil.copytree(REPO / "examples" / "master-tenant", tenants)
    assert served.tenancy("apply", str(tenants), "--yes", "--policy", str(EXAMPLE_POLICIES)).rc == 0
    northwind = tenants / "northwind.yaml"
    documents = northwind.read_text().split("\n---\n")
    northwind.write_text("\n---\n".join(d for d in documents if "name: lena," not in d))  # a deletion
    bakery = tenants / "sub-tenants" / "bakery.yaml"
    bakery.write_text(bakery.read_text().replace("subscription: free", "subscription: pro", 1))  # a move to pro
    client = served.client()
    lena, orders = K("User", "northwind-hosting", "lena"), K("User", "northwind-bakery", "orders")
    before = (client.get(lena), client.get(orders))

    refused = served.tenancy("apply", str(tenants), "--yes", "--policy", str(EXAMPLE_POLICIES))
    assert refused.rc == 1, refused.both
    fails = sorted(line for line in refused.err.splitlines() if line.startswith("FAIL - "))
    assert fails == [
        (f"FAIL - {EXAMPLE_POLICIES}/master_tenant_users.rego - main - User northwind-hosting/lena would be "
         "deleted, and northwind-hosting is a master tenant (tier=master): its users are never deleted or replaced"),
        (f"FAIL - {EXAMPLE_POLICIES}/pro_needs_approval.rego - main - User/northwind-bakery/orders moves from "
         "free to pro without the label approved=true"),
    ]
    assert (client.get(lena), client.get(orders)) == before
    assert served.tenancy("plan", str(tenants), "--policy", str(EXAMPLE_POLICIES)).rc == 1

    # approved, and lena kept: the plan passes (the change budget stays far below its 100 changes)
    bakery.write_text(bakery.read_text().replace("metadata: {name: orders, organization: northwind-bakery}",
                                                 "metadata: {name: orders, organization: northwind-bakery, "
                                                 "labels: {approved: 'true'}}"))
    northwind.write_text("\n---\n".join(documents))
    allowed = served.tenancy("apply", str(tenants), "--yes", "--policy", str(EXAMPLE_POLICIES))
    assert allowed.rc == 0, allowed.both
    assert "4 tests, 4 passed, 0 warnings, 0 failures, 0 exceptions" in allowed.err
    assert subscription(served, orders) == "pro"


def test_destroy_honours_the_policies(served: Backend, tmp_path: Path, org: str):
    manifests = applied_acme(served, tmp_path, org)
    keep = policy_file(tmp_path, NO_PRO.replace('change.path == "spec.subscription"\n\tchange.after == "pro"\n\t', "")
                       .replace("some change in op.changes", 'op.action == "delete"')
                       .replace("may not move to pro", "is never destroyed"))
    refused = served.tenancy("destroy", str(manifests), "--yes", "--policy", str(keep))
    assert refused.rc == 1 and "bob is never destroyed" in refused.err, refused.both
    assert served.client().get(bob(org)) is not None


def test_a_broken_policy_is_named_with_file_and_line_and_nothing_changes(served: Backend, tmp_path: Path, org: str):
    manifests = applied_acme(served, tmp_path, org)
    before = served.client().get(bob(org))
    broken = policy_file(tmp_path, NO_PRO.replace('msg := sprintf("%s may not move to pro", [op.name])', "msg := "))
    result = served.tenancy("apply", str(manifests), "--yes", "--policy", str(broken))
    assert result.rc == 1
    assert f"Error: {broken}:10:6: Rego syntax error: Invalid assignment operator" in result.err
    assert "Traceback" not in result.both
    assert served.client().get(bob(org)) == before


def test_tenancy_yaml_policy_paths_are_checked_with_their_line(embedded: Backend, tmp_path: Path):
    manifests = write(tmp_path / "manifests", {"acme.yaml": ACME,
                                               "tenancy.yaml": "stack: prod\npolicy:\n  - policies/\n"})
    result = embedded.tenancy("validate", str(manifests))
    assert result.rc == 1
    assert f"{manifests}/tenancy.yaml:3:5: error: policy: 'policies/' does not exist" in result.both
