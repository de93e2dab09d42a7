"""Documents, versions, labels, pagination, export, subscriptions, idempotency, tokens and scopes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tenancy_kinds import KINDS
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service

from tests.builders import alias, op, org, quota, subscription, team, user
from .helpers import refused

ROOT = Scope.root()
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _world(service: Service) -> None:
    service.changeset(
        ROOT,
        [
            op("create", org("acme", meta={"labels": {"tenancy/stack": "prod", "tier": "gold"}})),
            op("create", org("beta", meta={"labels": {"tenancy/stack": "prod"}})),
            op("create", org("gamma", plan="free", parent="acme")),
            op("create", user("acme", "alice", role="administrator", meta={"labels": {"team": "sales"}})),
            op("create", user("acme", "bob", meta={"labels": {"team": "ops"}})),
            op("create", user("acme", "carol")),
            op("create", team("acme", "devs", ["alice"])),
            op("create", quota("acme", "q", max_addresses=10)),
            op("create", alias("acme", "info", "alice")),
            op("create", subscription("acme", "sig")),
        ],
    )


EXAMPLES = {
    "Organization": (None, org("acme"), {"displayName": "Acme Corp"}),
    "User": ("acme", user("acme", "zed"), {"displayName": "Zed Z"}),
    "Team": ("acme", team("acme", "ops", ["alice"]), {"description": "on call"}),
    "MailboxQuota": ("acme", quota("acme", "q2", domain="acme.test"), {"maxAddresses": 7}),
    "Alias": ("acme", alias("acme", "help", "alice"), {"user": "bob"}),
    "CustomerSubscription": ("acme", subscription("acme", "s2"), {"users": 12}),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_crud_of_every_kind(service: Service, kind: str) -> None:
    if kind != "Organization":
        _world(service)
        service.update(
            ROOT,
            "Organization",
            None,
            "acme",
            org(
                "acme",
                domains=["acme.example", "acme.test"],
                meta={"labels": {"tenancy/stack": "prod", "tier": "gold"}},
            ),
        )
    organization, document, change = EXAMPLES[kind]
    name = document["metadata"]["name"]
    created = service.create(ROOT, kind, organization, document)
    meta = created["metadata"]
    assert created["apiVersion"] == "tenancy/v1" and created["kind"] == kind
    assert meta["name"] == name and meta.get("organization") == organization
    assert ISO_Z.match(meta["createdAt"]) and ISO_Z.match(meta["updatedAt"]) and meta["uid"]
    assert set(created["spec"]) == set(KINDS[kind].spec_fields) - {"password"}, "every default filled in"
    assert service.get(ROOT, kind, organization, name) == created
    updated = service.update(ROOT, kind, organization, name, {**created, "spec": {**created["spec"], **change}})
    assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert updated["metadata"]["uid"] == meta["uid"] and updated["metadata"]["createdAt"] == meta["createdAt"]
    assert all(updated["spec"][k] == v for k, v in change.items())
    # A no-op update (the document as read) changes nothing, not even the version.
    assert service.update(ROOT, kind, organization, name, updated) == updated
    assert name in [d["metadata"]["name"] for d in service.list(ROOT, kind, organization).items]
    deleted = service.delete(ROOT, kind, organization, name)
    if KINDS[kind].delete_archives:
        assert deleted is not None and deleted["status"]["phase"] == "archived"
    else:
        assert deleted is None
        with refused(404, "not found"):
            service.get(ROOT, kind, organization, name)
        with refused(404):
            service.delete(ROOT, kind, organization, name)


def test_resource_versions_grow_across_the_backend(service: Service) -> None:
    _world(service)
    versions = [int(d["metadata"]["resourceVersion"]) for d in service.export(ROOT)]
    assert len(set(versions)) == len(versions)
    alice = service.get(ROOT, "User", "acme", "alice")
    service.delete(ROOT, "Alias", "acme", "info")
    service.delete(ROOT, "Team", "acme", "devs")
    service.delete(ROOT, "User", "acme", "alice")
    again = service.create(ROOT, "User", "acme", user("acme", "alice"))
    assert int(again["metadata"]["resourceVersion"]) > int(alice["metadata"]["resourceVersion"])


def test_if_match(service: Service) -> None:
    _world(service)
    bob = service.get(ROOT, "User", "acme", "bob")
    version = bob["metadata"]["resourceVersion"]
    with refused(412, "changed since it was read", f"current resourceVersion '{version}'"):
        service.update(ROOT, "User", "acme", "bob", bob, if_match="999")
    changed = {**bob, "spec": {**bob["spec"], "displayName": "Bobby"}}
    updated = service.update(ROOT, "User", "acme", "bob", changed, if_match=f'"{version}"')
    with refused(412):
        service.delete(ROOT, "User", "acme", "bob", if_match=version)
    service.delete(ROOT, "User", "acme", "bob", if_match=f'W/"{updated["metadata"]["resourceVersion"]}"')


def test_documents_name_and_organization_must_match_the_path(service: Service) -> None:
    _world(service)
    with refused(422, "does not match the name 'bob' in the path", path="metadata.name"):
        service.update(ROOT, "User", "acme", "bob", user("acme", "robert"))
    with refused(422, "does not match the organization 'acme'", path="metadata.organization"):
        service.create(ROOT, "User", "acme", user("beta", "zed"))
    missing = user("acme", "zed")
    del missing["metadata"]["organization"]
    assert service.create(ROOT, "User", "acme", missing)["metadata"]["organization"] == "acme"


def test_invalid_documents_locate_every_error(service: Service) -> None:
    bad = {
        "apiVersion": "tenancy/v1",
        "kind": "Organization",
        "metadata": {"name": "Bad_Name", "labels": {"ok": "x"}},
        "spec": {"displayName": "", "domains": ["fine.example", "NOT A DOMAIN"], "colour": "red"},
    }
    with refused(422, "invalid Organization document", path="metadata.name") as info:
        service.create(ROOT, "Organization", None, bad)
    paths = {e["path"] for e in info.value.errors}
    assert {"spec.displayName", "spec.domains[1]", "spec.colour"} <= paths
    with refused(422, "the body must be a resource document"):
        service.create(ROOT, "Organization", None, ["not", "a", "document"])
    with refused(422, "NUL"):
        service.create(ROOT, "Organization", None, org("acme", displayName="a\x00b"))
    with refused(422, "unpaired surrogates"):
        service.create(ROOT, "Organization", None, org("acme", displayName="a\ud800b"))
    with refused(422, "unknown kind"):
        service.create(ROOT, "Widget", None, org("acme"))


@pytest.mark.parametrize(
    ("kind", "document", "path"),
    [
        ("Organization", org("acme", meta={"protected": "yes"}), "metadata.protected"),
        ("User", user("acme", "ann", billingRights="yes"), "spec.billingRights"),
        ("User", user("acme", "ann", passwordVersion="2"), "spec.passwordVersion"),
        ("CustomerSubscription", subscription("acme", "cust", users=True), "spec.users"),
        ("CustomerSubscription", subscription("acme", "cust", users=5.5), "spec.users"),
        ("CustomerSubscription", subscription("acme", "cust", users="5"), "spec.users"),
        ("Team", team("acme", "devs", displayName=7), "spec.displayName"),
    ],
)
def test_values_of_the_wrong_json_type_are_refused_not_coerced(
    service: Service, kind: str, document: dict[str, Any], path: str
) -> None:
    """Coercing "yes" to true or true to 1 would store what nobody wrote: the API takes JSON's own types,
    as manifests do."""
    if kind != "Organization":
        service.create(ROOT, "Organization", None, org("acme"))
    organization = None if kind == "Organization" else "acme"
    with refused(422, f"invalid {kind} document", path=path):
        service.create(ROOT, kind, organization, document)


def test_a_whole_number_written_with_a_decimal_point_is_that_number(service: Service) -> None:
    """As in JSON Schema and in manifests: 5.0 is the integer 5 (Pulumi, for one, sends every number so)."""
    service.create(ROOT, "Organization", None, org("acme"))
    created = service.create(ROOT, "CustomerSubscription", "acme", subscription("acme", "cust", users=5.0))
    assert created["spec"]["users"] == 5 and type(created["spec"]["users"]) is int


def test_lists_that_are_sets_refuse_repeated_values(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("acme"))
    service.create(ROOT, "User", "acme", user("acme", "ann"))
    for field, value in (
        ("members", ["ann", "ann"]),
        ("shares", ["calendars", "calendars"]),
        ("externalMembers", ["x@y.example", "x@y.example"]),
    ):
        with refused(422, "is listed 2 times; list it once", path=f"spec.{field}"):
            service.create(ROOT, "Team", "acme", team("acme", "devs", **{field: value}))
    with refused(422, "'server-side' is listed 2 times", path="spec.signatureModes"):
        service.create(
            ROOT,
            "CustomerSubscription",
            "acme",
            subscription("acme", "cust", signatureModes=["server-side", "server-side"]),
        )


def test_billing_countries_are_iso_3166_codes(service: Service) -> None:
    address = {"name": "A", "street": "S 1", "postalCode": "1000", "city": "C"}
    for code, fragment in (
        ("XX", "'XX' is not an officially assigned ISO 3166-1 alpha-2 country code"),
        ("UK", "(the United Kingdom is GB)"),
    ):
        with refused(422, fragment, path="spec.billingAddress.country"):
            service.create(ROOT, "Organization", None, org("acme", billingAddress={**address, "country": code}))
    created = service.create(ROOT, "Organization", None, org("acme", billingAddress={**address, "country": "GB"}))
    assert created["spec"]["billingAddress"]["country"] == "GB"


def test_labels_and_selectors(service: Service) -> None:
    _world(service)

    def names(kind: str, organization: str | None, selector: str) -> list[str]:
        return [d["metadata"]["name"] for d in service.list(ROOT, kind, organization, label_selector=selector).items]

    assert names("Organization", None, "tenancy/stack=prod") == ["acme", "beta"]
    assert names("Organization", None, "tenancy/stack=prod,tier==gold") == ["acme"]
    assert names("Organization", None, "tier!=gold") == ["beta", "gamma"]
    assert names("Organization", None, "!tenancy/stack") == ["gamma"]
    assert names("User", "acme", "team") == ["alice", "bob"]
    assert names("User", "acme", "team=sales") == ["alice"]
    assert names("User", "acme", "team=ops") == ["bob"]
    for bad in ["a=b=c", "=x", "a,,b", "!", "bad key=1", "x=" + "v" * 300, "a'); DROP TABLE resources;--=1", "a=\x00"]:
        with refused(400, "invalid labelSelector", path="labelSelector"):
            service.list(ROOT, "User", "acme", label_selector=bad)
    assert service.get(ROOT, "Organization", None, "acme")["metadata"]["labels"] == {
        "tenancy/stack": "prod",
        "tier": "gold",
    }


def test_pagination(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("acme"))
    service.changeset(ROOT, [op("create", user("acme", f"u{i:03d}")) for i in range(25)])
    seen, cursor = [], None
    while True:
        page = service.list(ROOT, "User", "acme", limit=10, cursor=cursor)
        seen += [d["metadata"]["name"] for d in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"u{i:03d}" for i in range(25)]
    assert service.list(ROOT, "User", "acme", limit=25).next_cursor is None
    for garbage in ["garbage", "eyJhZnRlciI6IC0xfQ", "!!!", "W10"]:
        with refused(400, "invalid cursor", path="cursor"):
            service.list(ROOT, "User", "acme", cursor=garbage)
    for limit in (0, 1001, -1):
        with refused(422, "limit must be an integer between 1 and 1000", path="limit"):
            service.list(ROOT, "User", "acme", limit=limit)


def test_export_streams_everything_in_scope_with_statuses(service: Service) -> None:
    _world(service)
    everything = list(service.export(ROOT))
    assert len(everything) == 10
    acme = next(d for d in everything if d["kind"] == "Organization" and d["metadata"]["name"] == "acme")
    assert acme["status"]["userCount"] == 3
    quota_doc = next(d for d in everything if d["kind"] == "MailboxQuota")
    assert quota_doc["status"] == {"usedAddresses": 3}
    subtree = {(d["kind"], d["metadata"]["name"]) for d in service.export(ROOT, organization="acme")}
    assert ("Organization", "gamma") in subtree and ("Organization", "beta") not in subtree
    assert len(subtree) == 9
    labelled = [d["metadata"]["name"] for d in service.export(ROOT, label_selector="tenancy/stack=prod")]
    assert labelled == ["acme", "beta"]
    with refused(404):
        service.export(ROOT, organization="ghost")
    with refused(400):
        service.export(ROOT, label_selector="=x")


def test_subscription_lifecycle(tmp_path) -> None:  # type: ignore[no-untyped-def]
    now = [datetime(2024, 5, 1, 12, 0, tzinfo=UTC)]
    service = Service(f"sqlite:///{tmp_path / 't.db'}", clock=lambda: now[0])
    service.create(ROOT, "Organization", None, org("acme", plan="free"))
    created = service.create(ROOT, "CustomerSubscription", "acme", subscription("acme", "sig"))
    status = created["status"]
    assert status["phase"] == "trial" and status["trialEndsAt"] == "2024-05-15T12:00:00Z"
    assert re.match(r"^sub_[0-9a-f]{16}$", status["subscriptionId"])
    now[0] += timedelta(days=14)
    assert service.get(ROOT, "CustomerSubscription", "acme", "sig")["status"]["phase"] == "active"
    archived = service.delete(ROOT, "CustomerSubscription", "acme", "sig")
    assert archived is not None and archived["status"]["phase"] == "archived"
    assert archived["status"]["subscriptionId"] == status["subscriptionId"]
    assert service.get(ROOT, "CustomerSubscription", "acme", "sig") == archived  # stays readable
    assert service.delete(ROOT, "CustomerSubscription", "acme", "sig") == archived  # idempotent
    # A replace: the new subscription takes the name and starts a new trial.
    replacement = service.create(
        ROOT, "CustomerSubscription", "acme", subscription("acme", "sig", product="signatures-google-workspace")
    )
    assert replacement["status"]["phase"] == "trial"
    assert replacement["status"]["subscriptionId"] != status["subscriptionId"]


def test_create_idempotency(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("acme"))
    first = service.create(ROOT, "User", "acme", user("acme", "alice"), idempotency_key="abc")
    assert service.create(ROOT, "User", "acme", user("acme", "alice"), idempotency_key="abc") == first
    with refused(422, "already used for a different request"):
        service.create(ROOT, "User", "acme", user("acme", "bob"), idempotency_key="abc")
    # Keys belong to their principal: another token's "abc" is another key.
    other = Scope(None, True, "token:other")
    with refused(409, "already exists"):
        service.create(other, "User", "acme", user("acme", "alice"), idempotency_key="abc")
    with refused(422, "Idempotency-Key must be"):
        service.create(ROOT, "User", "acme", user("acme", "x"), idempotency_key="k" * 300)


# --- tokens and scopes ----------------------------------------------------------------------------


def test_tokens(service: Service) -> None:
    _world(service)
    root = service.create_token()
    assert root.startswith("tnc_") and len(root) > 40
    assert service.authenticate(root).is_root
    scoped = service.authenticate(service.create_token("acme", legal_representative=True))
    assert scoped.organization == "acme" and scoped.legal_representative
    for bad in (None, "", "tnc_nope"):
        with refused(401):
            service.authenticate(bad)
    service.revoke_token(root)
    with refused(401, "revoked"):
        service.authenticate(root)
    with refused(404, "no such token"):
        service.revoke_token("tnc_unknown")
    with refused(404):
        service.create_token("ghost")


def test_expired_tokens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    now = [datetime(2024, 5, 1, tzinfo=UTC)]
    service = Service(f"sqlite:///{tmp_path / 't.db'}", clock=lambda: now[0])
    token = service.create_token(expires_in=60)
    service.authenticate(token)
    now[0] += timedelta(seconds=61)
    with refused(401, "expired"):
        service.authenticate(token)


def test_scopes_see_their_subtree_only(service: Service) -> None:
    _world(service)
    acme = service.authenticate(service.create_token("acme"))
    gamma = service.authenticate(service.create_token("gamma"))
    beta = service.authenticate(service.create_token("beta"))
    assert [d["metadata"]["name"] for d in service.list(acme, "Organization", None).items] == ["acme", "gamma"]
    assert [d["metadata"]["name"] for d in service.list(gamma, "Organization", None).items] == ["gamma"]
    assert {d["metadata"]["name"] for d in service.export(gamma)} == {"gamma"}
    assert len(list(service.export(acme))) == 9
    for scope in (gamma, beta):  # a child and a sibling see nothing of acme
        with refused(404, "not found"):
            service.get(scope, "User", "acme", "alice")
        with refused(404):
            service.get(scope, "Organization", None, "acme")
        with refused(404):
            service.list(scope, "User", "acme")
        with refused(404):
            service.export(scope, organization="acme")
    service.get(acme, "Organization", None, "gamma")  # the parent sees its child


def test_scoped_tokens_create_below_their_organization_only(service: Service) -> None:
    _world(service)
    acme = service.authenticate(service.create_token("acme"))
    with refused(404, "a top-level organization needs a root token"):
        service.create(acme, "Organization", None, org("top"))
    with refused(404, "parent organization 'beta' not found"):
        service.create(acme, "Organization", None, org("under-beta", parent="beta"))
    service.create(acme, "Organization", None, org("child", parent="gamma"))
    with refused(404, "parent organization 'beta' not found"):  # cannot move its own organization out
        service.update(acme, "Organization", None, "acme", org("acme", parent="beta"))
    with refused(409, "already used by a resource of another organization"):  # no foreign names leak
        service.update(acme, "Organization", None, "child", org("child", parent="gamma", domains=["beta.example"]))


def test_deleting_an_organization_revokes_its_tokens(service: Service) -> None:
    service.create(ROOT, "Organization", None, org("temp"))
    token = service.create_token("temp")
    service.delete(ROOT, "Organization", None, "temp")
    service.create(ROOT, "Organization", None, org("temp"))  # same name, another tenant
    with refused(401, "revoked"):
        service.authenticate(token)
