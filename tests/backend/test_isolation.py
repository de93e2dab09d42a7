"""Tenant isolation: every route × method with a token that cannot see the target → 404 and no foreign data.

The world: `iso-p` with a sub-organization `iso-c`, and an unrelated `iso-s`; each holds one resource of
every kind. A token sees its organization and everything below it; root sees all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tenancy_kinds import KINDS, owning_organization
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tests.support import Server

from tests.builders import alias, op, org, quota, subscription, team, user

ORGS = {"iso-p": None, "iso-c": "iso-p", "iso-s": None}
SUBTREE = {"iso-p": {"iso-p", "iso-c"}, "iso-c": {"iso-c"}, "iso-s": {"iso-s"}}
PAIRS = [(viewer, target) for viewer in ORGS for target in ORGS if target not in SUBTREE[viewer]]


def _contents(o: str) -> list[dict[str, Any]]:
    return [
        user(o, "u1", email=f"secret-{o}@{o}.example", displayName=f"Secret person of {o}"),
        team(o, "t1", ["u1"], displayName=f"Team of {o}", description=f"secret team of {o}"),
        quota(o, "q1"),
        alias(o, "a1", "u1", address=f"alias-{o}@{o}.example"),
        subscription(o, "s1", customerName=f"Secret customer of {o}"),
    ]


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[dict[str, Any]]:
    service = Service(server.db_url)
    root = Scope.root()
    operations = []
    for name, parent in ORGS.items():
        operations.append(op("create", org(name, parent=parent, displayName=f"Secret org {name}")))
        operations += [op("create", d) for d in _contents(name)]
    service.changeset(root, operations)
    tokens = {name: service.create_token(name) for name in ORGS}
    documents = {
        name: [d for d in service.export(root, organization=name) if owning_organization(d) == name] for name in ORGS
    }
    yield {"service": service, "tokens": tokens, "documents": documents}
    service.close()


def _secrets(documents: list[dict[str, Any]]) -> list[str]:
    """Strings that must never reach a foreign token: uids, addresses, display names, customer names."""
    out = []
    for d in documents:
        out.append(d["metadata"]["uid"])
        spec = d["spec"]
        for field in ("email", "address", "displayName", "customerName", "description"):
            if spec.get(field):
                out.append(spec[field])
        if d["kind"] == "CustomerSubscription":
            out.append(d["status"]["subscriptionId"])
    return out


def _requests(target: str, documents: list[dict[str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """Every route and method that names `target` (method, path, JSON body)."""
    org_doc = next(d for d in documents if d["kind"] == "Organization")
    yield "GET", f"/v1/organizations/{target}", None
    yield "PUT", f"/v1/organizations/{target}", org_doc
    yield "DELETE", f"/v1/organizations/{target}", None
    yield "POST", f"/v1/organizations/{target}/deposits", {"amount": "10.00"}
    yield "GET", f"/v1/export?organization={target}", None
    yield "POST", "/v1/organizations", org(f"{target}-kid", parent=target, domains=[])
    for d in documents:
        kind = KINDS[d["kind"]]
        if not kind.scoped:
            continue
        collection = f"/v1/organizations/{target}/{kind.plural}"
        item = f"{collection}/{d['metadata']['name']}"
        fresh = {**d, "metadata": {"name": "fresh", "organization": target}}
        yield "GET", collection, None
        yield "GET", collection + "?labelSelector=x&limit=5", None
        yield "POST", collection, fresh
        yield "GET", item, None
        yield "PUT", item, d
        yield "DELETE", item, None
        yield "POST", "/v1/changesets", {"operations": [op("update", d)]}
        yield "POST", "/v1/changesets", {"operations": [op("delete", d)]}


@pytest.mark.parametrize(("viewer", "target"), PAIRS, ids=[f"{v}-sees-not-{t}" for v, t in PAIRS])
def test_foreign_routes_answer_404_without_data(
    server: Server, world: dict[str, Any], viewer: str, target: str
) -> None:
    service: Service = world["service"]
    before = list(service.export(Scope.root()))
    headers = {"Authorization": f"Bearer {world['tokens'][viewer]}"}
    secrets = _secrets(world["documents"][target])
    checked = 0
    for method, path, body in _requests(target, world["documents"][target]):
        response = requests.request(method, server.url + path, json=body, headers=headers, timeout=30)
        where = f"{method} {path} as {viewer}"
        assert response.status_code == 404, f"{where}: {response.status_code} {response.text[:300]}"
        assert response.headers["content-type"].startswith("application/problem+json"), where
        leaked = [s for s in secrets if s in response.text]
        assert not leaked, f"{where} leaked {leaked}"
        checked += 1
    assert checked > 40
    # Listing what the viewer may see never includes the target either.
    for path in ("/v1/organizations", "/v1/export"):
        response = requests.get(server.url + path, headers=headers, timeout=30)
        assert response.status_code == 200
        assert not [s for s in secrets if s in response.text], path
        items = response.json()["items"]
        assert target not in {owning_organization(d) for d in items}, path  # (a child still names its parent)
    assert list(service.export(Scope.root())) == before, "nothing changed"


@pytest.mark.parametrize("viewer", list(ORGS))
def test_own_subtree_is_visible(server: Server, world: dict[str, Any], viewer: str) -> None:
    headers = {"Authorization": f"Bearer {world['tokens'][viewer]}"}
    for target in SUBTREE[viewer]:
        for d in world["documents"][target]:
            kind = KINDS[d["kind"]]
            meta = d["metadata"]
            path = (
                f"/v1/organizations/{meta['organization']}/{kind.plural}/{meta['name']}"
                if kind.scoped
                else f"/v1/organizations/{meta['name']}"
            )
            response = requests.get(server.url + path, headers=headers, timeout=30)
            assert response.status_code == 200, f"{viewer} → {path}: {response.text}"
    listed = requests.get(server.url + "/v1/organizations", headers=headers, timeout=30).json()["items"]
    names = {d["metadata"]["name"] for d in listed} & set(ORGS)
    assert names == SUBTREE[viewer]
    exported = requests.get(server.url + "/v1/export", headers=headers, timeout=30).json()["items"]
    assert {owning_organization(d) for d in exported} == SUBTREE[viewer]


def test_root_sees_everything(server: Server, world: dict[str, Any]) -> None:
    exported = requests.get(server.url + "/v1/export", headers=server.headers(), timeout=30).json()["items"]
    assert set(ORGS) <= {owning_organization(d) for d in exported}
    uids = {d["metadata"]["uid"] for d in exported}
    assert all(d["metadata"]["uid"] in uids for docs in world["documents"].values() for d in docs)
