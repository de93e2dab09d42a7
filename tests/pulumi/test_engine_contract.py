"""The engine contract: the real dynamic provider plugin, driven over gRPC as `pulumi up` would drive it,
against a real `tenancy serve` on loopback.

`pulumi_engine.Engine` starts `python -u -m pulumi.dynamic`, configures it with `tenancy:backend` and the
secret `tenancy:token`, and sends Check / Create / Diff / Update / Read / Delete with the provider pickled
into `__provider` and the properties serialized by the SDK.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2
from pulumi_engine import Engine, from_struct, secret

STRONG = "kT9#vq2!mZ7$wLp"
ROTATED = "Vb8%rw3^nQ6&yKs"
ORG = "pulumi-engine"
DOMAIN = f"{ORG}.example"
MAIL_DOMAIN = f"mail.{ORG}.example"
SOME = provider_pb2.DiffResponse.DIFF_SOME
NONE = provider_pb2.DiffResponse.DIFF_NONE
# The administrator's inputs, as a program declares them (created by the fixture, imported by key).
ADA = {
    "name": "ada",
    "organization": ORG,
    "email": f"ada@{DOMAIN}",
    "display_name": "Ada",
    "role": "administrator",
    "password": STRONG,
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, server: Any) -> Iterator[Engine]:
    cwd = tmp_path_factory.mktemp("pulumi-program")
    # The plugin must not find the backend or the token anywhere but in the stack's configuration.
    running = Engine(str(cwd), env={"TENANCY_BACKEND": "", "TENANCY_TOKEN": ""})
    try:
        answer = running.configure({"tenancy:backend": server.url, "tenancy:token": secret(server.token)})
        assert answer.acceptSecrets is False
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def tenant(engine: Engine) -> dict[str, Any]:
    """An organization with two domains, an administrator and a quota, created through the provider."""
    org = engine.create(
        "Organization",
        ORG,
        {"name": ORG, "display_name": "Pulumi Engine", "plan": "entry", "domains": [DOMAIN, MAIL_DOMAIN]},
    )
    quota = engine.create(
        "MailboxQuota", "main", {"name": "main", "organization": ORG, "domain": DOMAIN, "max_addresses": 10}
    )
    ada = engine.create("User", "ada", dict(ADA))
    return {"org": org, "quota": quota, "ada": ada}


def _inputs(outs: dict[str, Any], kind_outputs: tuple[str, ...] = ()) -> dict[str, Any]:
    server_only = {"uid", "resource_version", *kind_outputs}
    return {k: v for k, v in outs.items() if k not in server_only and v is not None}


LIFECYCLES = {
    "Organization": (
        {"name": "pulumi-engine-sub", "display_name": "Sub", "parent": ORG, "domains": ["sub.pulumi-engine.example"]},
        {"edition": "professional", "labels": {"tier": "gold"}},
    ),
    "User": (
        {"name": "bob", "organization": ORG, "email": f"bob@{DOMAIN}", "display_name": "Bob", "password": STRONG},
        {"display_name": "Robert", "subscription": "pro"},
    ),
    "Team": (
        {"name": "core", "organization": ORG, "display_name": "Core", "members": ["ada"], "leader": "ada"},
        {"description": "the core team", "shares": ["calendars", "documents"]},
    ),
    "MailboxQuota": (
        {"name": "mail", "organization": ORG, "domain": MAIL_DOMAIN, "offer": "starter", "max_addresses": 2},
        {"max_addresses": 7, "offer": "standard"},
    ),
    "Alias": (
        {"name": "hello", "organization": ORG, "address": f"hello@{DOMAIN}", "user": "ada"},
        {"address": f"hi@{DOMAIN}"},
    ),
    "CustomerSubscription": (
        {
            "name": "contoso",
            "organization": ORG,
            "product": "signatures-microsoft-365",
            "customer_name": "Contoso",
            "users": 5,
        },
        {"users": 12, "signature_modes": ["server-side", "client-side"]},
    ),
}


@pytest.mark.parametrize("kind", list(LIFECYCLES))
def test_full_lifecycle(engine: Engine, tenant: dict[str, Any], kind: str):
    props, change = LIFECYCLES[kind]
    name = props["name"]

    inputs, failures = engine.check(kind, name, props)
    assert failures == [] and inputs == props

    created = engine.create(kind, name, inputs)
    assert created.id and created.outs["uid"] == created.id and created.outs["resource_version"]
    assert "password" not in created.outs

    unchanged = engine.diff(kind, name, created.id, created.outs, props)
    assert unchanged.changes == NONE and list(unchanged.replaces) == []

    news = {**props, **change}
    diff = engine.diff(kind, name, created.id, created.outs, news)
    assert diff.changes == SOME and list(diff.replaces) == []

    updated = engine.update(kind, name, created.id, created.outs, news)
    for prop, value in change.items():
        assert updated[prop] == value if prop != "signature_modes" else sorted(updated[prop]) == sorted(value)
    assert updated["resource_version"] != created.outs["resource_version"]
    assert engine.diff(kind, name, created.id, updated, news).changes == NONE

    refreshed = engine.read(kind, name, created.id, updated, news)
    assert refreshed.id == created.id
    assert _props(refreshed)["resource_version"] == updated["resource_version"]

    engine.delete(kind, name, created.id, updated)
    gone = engine.read(kind, name, created.id, updated, news)
    if kind == "CustomerSubscription":  # deleting archives it; archived subscriptions stay readable
        assert _props(gone)["state"] == "archived" and _props(gone)["phase"] == "archived"
    else:
        assert gone.id == "" and _props(gone) == {}


def _props(response: provider_pb2.ReadResponse) -> dict[str, Any]:
    return from_struct(response.properties)


def test_status_outputs_come_back(engine: Engine, tenant: dict[str, Any]):
    org = engine.read("Organization", ORG, tenant["org"].id, tenant["org"].outs)
    outs = _props(org)
    assert outs["user_count"] >= 1 and outs["admin_count"] >= 1
    assert outs["monthly_cost"]["currency"] == "EUR" and "amount" in outs["balance"]
    assert tenant["ada"].outs["mailbox"] is True
    quota = _props(engine.read("MailboxQuota", "main", tenant["quota"].id, tenant["quota"].outs))
    assert quota["used_addresses"] >= 1


def test_a_password_rotates_only_when_its_version_moves(engine: Engine, tenant: dict[str, Any]):
    props = {
        "name": "carol",
        "organization": ORG,
        "email": f"carol@{DOMAIN}",
        "display_name": "Carol",
        "password": STRONG,
    }
    created = engine.create("User", "carol", props)
    try:
        same = engine.diff("User", "carol", created.id, created.outs, {**props, "password": ROTATED})
        assert same.changes == NONE  # a new value alone is not sent: bump password_version to rotate
        rotate = {**props, "password": ROTATED, "password_version": 2}
        assert engine.diff("User", "carol", created.id, created.outs, rotate).changes == SOME
        rotated = engine.update("User", "carol", created.id, created.outs, rotate)
        assert rotated["password_version"] == 2 and "password" not in rotated
    finally:
        engine.delete("User", "carol", created.id, _props(engine.read("User", "carol", created.id, created.outs)))


@pytest.mark.parametrize(
    ("kind", "props", "change", "field"),
    [
        (
            "User",
            {"name": "dora", "organization": ORG, "email": f"dora@{DOMAIN}", "display_name": "Dora"},
            {"email": f"dorothy@{DOMAIN}"},
            "email",
        ),
        (
            "MailboxQuota",
            {"name": "other", "organization": ORG, "domain": MAIL_DOMAIN, "max_addresses": 5},
            {"domain": "sub2.pulumi-engine.example"},
            "domain",
        ),
        (
            "CustomerSubscription",
            {
                "name": "fabrikam",
                "organization": ORG,
                "product": "signatures-microsoft-365",
                "customer_name": "Fabrikam",
            },
            {"product": "signatures-google-workspace"},
            "product",
        ),
    ],
)
def test_an_immutable_change_is_a_replace_deleting_first(
    engine: Engine, tenant: dict[str, Any], kind: str, props: dict[str, Any], change: dict[str, Any], field: str
):
    created = engine.create(kind, props["name"], props)
    diff = engine.diff(kind, props["name"], created.id, created.outs, {**props, **change})
    assert diff.changes == SOME and list(diff.replaces) == [field] and diff.deleteBeforeReplace is True
    # What the engine does next, delete before replace: delete the old one, then create the new one.
    engine.delete(kind, props["name"], created.id, created.outs)
    if kind == "MailboxQuota":
        return  # the new domain is not the organization's: creating it is the next test's business
    replacement = engine.create(kind, props["name"], {**props, **change})
    assert replacement.id != created.id and replacement.outs[field] == change[field]
    engine.delete(kind, props["name"], replacement.id, replacement.outs)


def test_a_renamed_resource_is_replaced(engine: Engine, tenant: dict[str, Any]):
    ada = tenant["ada"]
    diff = engine.diff("User", "ada", ada.id, ada.outs, {**_inputs(ada.outs, ("mailbox",)), "name": "ada2"})
    assert list(diff.replaces) == ["name"] and diff.deleteBeforeReplace is True


def test_check_refuses_a_bad_slug_and_an_unknown_field(engine: Engine):
    _, failures = engine.check(
        "User",
        "x",
        {"name": "Bad_Slug", "organization": ORG, "email": f"x@{DOMAIN}", "display_name": "X", "colour": "red"},
    )
    by_property = dict(failures)
    assert set(by_property) == {"name", "colour"}
    assert "is not valid: expected 1 to 63 lowercase letters" in by_property["name"]
    assert by_property["colour"].startswith("unknown field 'colour'")


@pytest.mark.parametrize("unknown", ["display_name", "email", "organization", "password"])
def test_check_in_a_preview_leaves_a_value_not_known_yet_unjudged(engine: Engine, unknown: str):
    props = {"name": "x", "organization": ORG, "email": f"x@{DOMAIN}", "display_name": "X", "password": STRONG}
    _, failures = engine.check("User", "x", {**props, unknown: rpc.UNKNOWN})
    assert failures == []


def test_diff_in_a_preview_with_a_list_item_not_known_yet_is_a_change(engine: Engine, tenant: dict[str, Any]):
    props = {"name": "crew", "organization": ORG, "display_name": "Crew", "members": ["ada"]}  # ada: the tenant's
    team = engine.create("Team", "crew", props)
    try:
        diff = engine.diff("Team", "crew", team.id, team.outs, {**props, "members": ["ada", rpc.UNKNOWN]})
        assert diff.changes == SOME and list(diff.replaces) == []
        assert engine.diff("Team", "crew", team.id, team.outs, {**props, "leader": rpc.UNKNOWN}).changes == SOME
    finally:
        engine.delete("Team", "crew", team.id, team.outs)


def test_a_preview_refuses_to_replace_a_protected_resource_as_the_plan_does(engine: Engine, tenant: dict[str, Any]):
    props = {"name": "pat", "organization": ORG, "email": f"pat@{DOMAIN}", "display_name": "Pat"}
    pat = engine.create("User", "pat", props)
    protected, latest = {**props, "protected": True}, pat.outs
    try:
        refused = _refusal(lambda: engine.diff("User", "pat", pat.id, latest, {**protected, "email": f"p@{DOMAIN}"}))
        assert f"User {ORG}/pat is protected and would be replaced (immutable email changed)" in refused
        assert engine.diff("User", "pat", pat.id, latest, protected).changes == SOME  # protecting it: an update
        latest = engine.update("User", "pat", pat.id, latest, protected)
        renamed = _refusal(lambda: engine.diff("User", "pat", pat.id, latest, {**protected, "name": "pat2"}))
        assert f"User {ORG}/pat is protected and would be deleted" in renamed
    finally:
        if latest.get("protected"):
            latest = engine.update("User", "pat", pat.id, latest, props)
        engine.delete("User", "pat", pat.id, latest)


def test_check_refuses_a_weak_password_without_quoting_it(engine: Engine):
    _, failures = engine.check(
        "User",
        "x",
        {"name": "x", "organization": ORG, "email": f"x@{DOMAIN}", "display_name": "X", "password": "Password123!"},
    )
    assert [p for p, _ in failures] == ["password"] and "Password123" not in failures[0][1]


def _refusal(call: Any) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.details()


def test_a_failing_create_says_what_the_backend_said(engine: Engine, tenant: dict[str, Any]):
    details = _refusal(
        lambda: engine.create(
            "User", "eve", {"name": "eve", "organization": ORG, "email": "eve@elsewhere.example", "display_name": "Eve"}
        )
    )
    last = details.strip().splitlines()[-1]
    assert "elsewhere.example" in last and ORG in last
    assert "During handling" not in details and "requests" not in details and "The above exception" not in details


def test_a_duplicate_is_refused(engine: Engine, tenant: dict[str, Any]):
    details = _refusal(lambda: engine.create("Organization", ORG, {"name": ORG, "display_name": "Again"}))
    assert f"Organization {ORG} already exists" in details


def test_an_update_from_stale_state_is_refused(engine: Engine, tenant: dict[str, Any]):
    org = tenant["org"]
    stale = {**org.outs, "resource_version": "0"}
    details = _refusal(
        lambda: engine.update(
            "Organization",
            ORG,
            org.id,
            stale,
            {**_inputs(org.outs, ("user_count", "admin_count", "monthly_cost", "balance")), "edition": "professional"},
        )
    )
    assert "resourceVersion" in details  # someone changed it since: refresh, then try again


def test_import_by_key_learns_the_inputs(engine: Engine, tenant: dict[str, Any]):
    ada = tenant["ada"]
    declared = dict(ADA)  # what the program declares: the inputs ada was created with
    for id_ in (f"User/{ORG}/ada", f"{ORG}/ada", ada.id):
        found = engine.read("User", "ada", id_, None, declared)
        assert found.id == ada.id, id_
        inputs = from_struct(found.inputs)
        assert inputs["email"] == f"ada@{DOMAIN}" and "uid" not in inputs and "password" not in inputs
        # The program's declaration matches what was imported: no diff, so the import succeeds.
        assert engine.diff("User", "ada", found.id, _props(found), declared).changes == NONE
    org = engine.read("Organization", ORG, ORG, None, {"name": ORG, "display_name": "Pulumi Engine"})
    assert org.id == tenant["org"].id


def test_a_protected_resource_is_not_deleted(engine: Engine, tenant: dict[str, Any]):
    props = {"name": "keep", "organization": ORG, "address": f"keep@{DOMAIN}", "user": "ada", "protected": True}
    created = engine.create("Alias", "keep", props)
    details = _refusal(lambda: engine.delete("Alias", "keep", created.id, created.outs))
    assert "protect" in details.strip().splitlines()[-1].lower()
    unprotected = engine.update("Alias", "keep", created.id, created.outs, {**props, "protected": False})
    engine.delete("Alias", "keep", created.id, unprotected)


def test_the_token_never_leaves_the_plugin(engine: Engine, tenant: dict[str, Any], server: Any):
    token = server.token.encode()
    for created in tenant.values():
        assert token not in created.raw
    for pickled in engine.pickles.values():
        assert token not in base64.b64decode(pickled)
    # The configured backend was used, not the CLI's default one in the program's directory.
    assert not (Path(engine.cwd) / ".tenancy").exists()
