"""Tenant isolation, the full matrix: every route × every method × every kind of token.

Generated from the server's own /openapi.json, so that a new route cannot escape it. Against the target
organization `mx-t` (tests/security/world.py), each request is sent with eleven tokens: its own, its
parent's, root (allowed); its sibling's, its child's, an unrelated tenant's (hidden: 404, exactly as if it
did not exist); revoked, expired, garbage, none, and a non-Bearer header (401). Reads answer 200; real
writes 200/201/204 (creates and deletes on resources unique to the token); writes with a stale If-Match
412 — proof that the request reached the resource without changing it; methods a route does not have 405
for everybody. No response, whatever its status, carries a marker, uid, address or subscription id of an
organization outside the token's subtree; lists and exports hold exactly the token's subtree. Afterwards,
nothing a hidden or unauthenticated token tried exists or is gone.

(tests/backend/test_isolation.py checks the sibling/child/parent pairs with 404s; this is the matrix.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tenancy_kinds import KINDS
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tests.security.world import (
    ALLOWED,
    HIDDEN,
    PARENTS,
    SCOPE_ORG,
    SCOPES,
    TARGET,
    UNAUTHENTICATED,
    World,
    build,
    fresh,
    headers_for,
    subtree,
)
from tests.support import Server, start_server

TIME_LIMIT_S = 120.0
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
PUBLIC = {("GET", "/healthz")}
STALE = '"999999999"'


@dataclass(frozen=True)
class Probe:
    """One request of the matrix and what each relation to the target must get."""

    label: str
    method: str
    path: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    allowed: int = 200
    hidden: int = 404
    unauthenticated: int = 401

    def expected(self, scope: str) -> int:
        if scope in ALLOWED:
            return self.allowed
        return self.hidden if scope in HIDDEN else self.unauthenticated


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    db = tmp_path_factory.mktemp("matrix") / "tenancy.db"
    # Failed authentications are rate limited by default; this matrix sends hundreds on purpose.
    with start_server(f"sqlite:///{db}", extra_args=("--auth-failure-limit", "0")) as srv:
        yield srv


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    service = Service(server.db_url)
    yield build(service)
    service.close()


def _item(world: World, kind: str, name: str) -> dict[str, Any]:
    return next(d for d in world.documents[TARGET] if d["kind"] == kind and d["metadata"]["name"] == name)


def _collection(kind: str) -> str:
    return "/v1/organizations" if not KINDS[kind].scoped else f"/v1/organizations/{TARGET}/{KINDS[kind].plural}"


def probes(world: World, scope: str) -> Iterator[tuple[str, Probe]]:
    """(openapi route key, probe) for every documented operation, aimed at the target."""
    for kind in KINDS:
        collection = _collection(kind)
        template = "/v1/organizations" if kind == "Organization" else f"/v1/organizations/{{org}}/{KINDS[kind].plural}"
        mine = _item(world, kind, TARGET if kind == "Organization" else "t1" if kind == "Team" else
                     {"User": "u1", "MailboxQuota": "q1", "Alias": "a1", "CustomerSubscription": "s1"}[kind])
        item = (
            f"{_collection(kind)}/{mine['metadata']['name']}" if KINDS[kind].scoped else f"/v1/organizations/{TARGET}"
        )
        created, doomed = fresh(kind, "new", scope), fresh(kind, "del", scope)
        deleted_status = 200 if KINDS[kind].delete_archives else 204
        # The organization collection is not the target's: every token lists it, filtered to its subtree.
        listed = 200 if kind == "Organization" else 404
        yield f"GET {template}", Probe(f"list {kind}", "GET", f"{collection}?limit=1000", hidden=listed)
        yield (
            f"GET {template}",
            Probe(f"list {kind} by label", "GET", f"{collection}?labelSelector=tier%21%3Dx&limit=2", hidden=listed),
        )
        yield f"POST {template}", Probe(f"create {kind}", "POST", collection, created, allowed=201)
        yield f"GET {template}/{{name}}", Probe(f"read {kind}", "GET", item)
        yield f"PUT {template}/{{name}}", Probe(f"rewrite {kind} as read", "PUT", item, mine)
        yield (
            f"PUT {template}/{{name}}",
            Probe(f"update {kind}, stale If-Match", "PUT", item, mine, (("If-Match", STALE),), allowed=412),
        )
        yield (
            f"DELETE {template}/{{name}}",
            Probe(f"delete {kind}, stale If-Match", "DELETE", item, headers=(("If-Match", STALE),), allowed=412),
        )
        doomed_path = f"{collection}/{doomed['metadata']['name']}"
        yield f"DELETE {template}/{{name}}", Probe(f"delete {kind}", "DELETE", doomed_path, allowed=deleted_status)
    user = _item(world, "User", "u1")
    cs_user = fresh("User", "cs", scope)
    changes = {
        "operations": [
            {"op": "update", "kind": "User", "organization": TARGET, "name": "u1", "document": user},
            {
                "op": "create",
                "kind": "User",
                "organization": TARGET,
                "name": cs_user["metadata"]["name"],
                "document": cs_user,
            },
        ]
    }
    yield "POST /v1/changesets", Probe("changeset", "POST", "/v1/changesets", changes)
    yield "GET /v1/export", Probe("export the target", "GET", f"/v1/export?organization={TARGET}")
    yield (
        "POST /v1/organizations/{org}/deposits",
        Probe("deposit", "POST", f"/v1/organizations/{TARGET}/deposits", {"amount": "1.00"}),
    )
    yield "GET /v1/prices", Probe("prices", "GET", "/v1/prices", hidden=200)
    yield "GET /healthz", Probe("health", "GET", "/healthz", hidden=200, unauthenticated=200)


def _undocumented(spec: dict[str, Any]) -> Iterator[Probe]:
    """Every method a documented route does not have: 405 for everybody."""
    for template, operations in spec["paths"].items():
        path = template.replace("{org}", TARGET).replace("{name}", "u1" if "{org}" in template else TARGET)
        for method in METHODS:
            if method.lower() not in operations:
                yield Probe(
                    f"{method} {template}",
                    method,
                    path,
                    {} if method in ("POST", "PUT", "PATCH") else None,
                    allowed=405,
                    hidden=405,
                    unauthenticated=405,
                )


def _visible(scope: str, parents: dict[str, str | None]) -> set[str]:
    if scope in UNAUTHENTICATED:
        return set()
    return subtree(SCOPE_ORG[scope], parents)


def test_every_route_method_and_token(server: Server, world: World) -> None:
    spec = requests.get(server.url + "/openapi.json", timeout=30).json()
    documented = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops}
    covered: set[str] = set()
    outcomes: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    base_orgs = set(PARENTS)
    for scope in SCOPES:
        session = requests.Session()
        visible = _visible(scope, PARENTS) & base_orgs
        foreign = [s for o in base_orgs - visible for s in world.secrets_of(o)]
        cases = list(probes(world, scope))
        covered |= {route for route, _ in cases}
        for probe in [p for _, p in cases] + list(_undocumented(spec)):
            headers = {**headers_for(world, scope), **dict(probe.headers)}
            response = session.request(
                probe.method, server.url + probe.path, json=probe.body, headers=headers, timeout=30
            )
            outcomes[(scope, response.status_code)] += 1
            where = f"{scope}: {probe.label} ({probe.method} {probe.path})"
            if response.status_code != probe.expected(scope):
                failures.append(
                    f"{where}: {response.status_code}, expected {probe.expected(scope)}: {response.text[:200]}"
                )
            text = response.text + json.dumps(dict(response.headers))
            leaked = [s for s in foreign if s in text]
            if leaked:
                failures.append(f"{where}: leaked {leaked[:3]}")
            if response.status_code >= 400 and ("etag" in response.headers or "location" in response.headers):
                failures.append(f"{where}: a refusal carries ETag/Location")
    assert not failures, f"{len(failures)} wrong answers:\n" + "\n".join(failures[:40])
    assert covered == documented - {"GET /openapi.json"}, f"routes the matrix misses: {documented - covered}"
    total = sum(outcomes.values())
    print(
        f"\nisolation matrix: {total} requests, {len(spec['paths'])} paths × {len(METHODS)} methods × "
        f"{len(SCOPES)} tokens; "
        + ", ".join(
            f"{s} {n}" for s, n in sorted(Counter(code for (_, code), n in outcomes.items() for _ in range(n)).items())
        )
    )


def test_hidden_and_unauthenticated_tokens_changed_nothing(server: Server, world: World) -> None:
    """Runs after the matrix: what hidden tokens tried to create is absent, what they tried to delete is there."""
    root = Scope.root()
    service = world.service
    live = {(d["kind"], d["metadata"]["name"]): d for d in service.export(root)}
    for scope in SCOPES:
        for kind in KINDS:
            created = fresh(kind, "new", scope)["metadata"]["name"]
            doomed = live.get((kind, fresh(kind, "del", scope)["metadata"]["name"]))
            if scope in ALLOWED:
                assert (kind, created) in live, (scope, kind)
                assert doomed is None or doomed["spec"].get("state") == "archived", (scope, kind)
            else:
                assert (kind, created) not in live, f"{scope} created {kind} {created}"
                assert doomed is not None and doomed["spec"].get("state", "active") == "active", (scope, kind)
        cs = ("User", fresh("User", "cs", scope)["metadata"]["name"])
        assert (cs in live) == (scope in ALLOWED), (scope, cs)
    target = service.get(root, "Organization", None, TARGET)
    assert target["status"]["balance"]["amount"] == f"{len(ALLOWED)}.00"


@pytest.mark.parametrize("scope", [s for s in SCOPES if s not in UNAUTHENTICATED])
def test_lists_and_exports_hold_exactly_the_token_subtree(server: Server, world: World, scope: str) -> None:
    headers = headers_for(world, scope)
    exported = requests.get(server.url + "/v1/export", headers=headers, timeout=30).json()["items"]
    parents = {
        d["metadata"]["name"]: d["spec"].get("parent")
        for d in world.service.export(Scope.root())
        if d["kind"] == "Organization"
    }
    visible = subtree(SCOPE_ORG[scope], parents)
    owners = {d["metadata"]["name"] if d["kind"] == "Organization" else d["metadata"]["organization"] for d in exported}
    assert owners == visible
    listed = requests.get(server.url + "/v1/organizations?limit=1000", headers=headers, timeout=30).json()["items"]
    assert {d["metadata"]["name"] for d in listed} == visible
    for o in visible & set(PARENTS):
        users = requests.get(f"{server.url}/v1/organizations/{o}/users?limit=1000", headers=headers, timeout=30)
        assert users.status_code == 200 and all(u["metadata"]["organization"] == o for u in users.json()["items"])


def test_the_matrix_world_is_what_it_claims(tmp_path: Path) -> None:
    """The control: SCOPE_ORG's relations really are own/parent/sibling/child/other of the target."""
    parent, child, sibling = SCOPE_ORG["parent"], SCOPE_ORG["child"], SCOPE_ORG["sibling"]
    assert parent and child and sibling
    assert PARENTS[TARGET] == parent and PARENTS[child] == TARGET
    assert PARENTS[sibling] == PARENTS[TARGET] and sibling != TARGET
    assert TARGET not in subtree(SCOPE_ORG["other"], PARENTS)


# --- SCIM (SPEC §8): the same tokens and scopes under /scim/v2/{org} --------------------------------

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCIM_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SCIM_PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_SEARCH = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "count": 5}


def scim_routes() -> set[str]:
    """`METHOD /scim/v2/...` of every SCIM operation, read from the application the server runs."""
    from starlette.routing import Mount

    from tenancy_backend.api import build_app

    [mount] = [r for r in build_app(None).routes if isinstance(r, Mount) and r.path == "/scim/v2"]
    return {
        f"{m} /scim/v2{r.path}"
        for r in mount.app.routes
        if getattr(r, "include_in_schema", False)
        for m in r.methods - {"HEAD"}
    }


@pytest.fixture(scope="module")
def scim_doomed(world: World) -> dict[tuple[str, str], str]:
    """(kind, scope) → uid of a user and a team of the target that each token's SCIM DELETE aims at."""
    root = Scope.root()
    out = {}
    for scope in SCOPES:
        name = f"scim-del-{scope}"
        user = world.service.create(
            root,
            "User",
            TARGET,
            {
                "apiVersion": "tenancy/v1",
                "kind": "User",
                "metadata": {"name": name},
                "spec": {"email": f"{name}@{TARGET}.example", "displayName": name},
            },
        )
        team = world.service.create(
            root,
            "Team",
            TARGET,
            {"apiVersion": "tenancy/v1", "kind": "Team", "metadata": {"name": name}, "spec": {"displayName": name}},
        )
        out[("User", scope)], out[("Team", scope)] = user["metadata"]["uid"], team["metadata"]["uid"]
    return out


def scim_probes(world: World, scope: str, doomed: dict[tuple[str, str], str]) -> Iterator[tuple[str, Probe]]:
    base = f"/scim/v2/{TARGET}"
    user, team = _item(world, "User", "u1"), _item(world, "Team", "t1")
    uid, gid = user["metadata"]["uid"], team["metadata"]["uid"]
    stale = (("If-Match", STALE),)
    same_name = {
        "schemas": [SCIM_PATCH],
        "Operations": [{"op": "replace", "path": "displayName", "value": user["spec"]["displayName"]}],
    }
    same_team = {
        "schemas": [SCIM_PATCH],
        "Operations": [{"op": "replace", "path": "displayName", "value": team["spec"]["displayName"]}],
    }
    as_read = {
        "schemas": [SCIM_USER],
        "userName": user["spec"]["username"],
        "displayName": user["spec"]["displayName"],
        "emails": [{"value": user["spec"]["email"], "primary": True}],
    }
    group_as_read = {"schemas": [SCIM_GROUP], "displayName": team["spec"]["displayName"], "members": [{"value": uid}]}
    new_user = {"schemas": [SCIM_USER], "userName": f"scim-new-{scope}@{TARGET}.example"}
    new_group = {"schemas": [SCIM_GROUP], "displayName": f"scim-new {scope}", "members": [{"value": uid}]}
    for path in ("ServiceProviderConfig", "ResourceTypes", "ResourceTypes/User", "Schemas", f"Schemas/{SCIM_USER}"):
        template = path.replace("/User", "/{item}").replace(f"/{SCIM_USER}", "/{item}")
        yield f"GET /scim/v2/{{org}}/{template}", Probe(f"SCIM {path}", "GET", f"{base}/{path}")
    for endpoint, item, doomed_kind, as_is, same, created in (
        ("Users", uid, "User", as_read, same_name, new_user),
        ("Groups", gid, "Team", group_as_read, same_team, new_group),
    ):
        collection, one = f"/scim/v2/{{org}}/{endpoint}", f"/scim/v2/{{org}}/{endpoint}/{{item}}"
        yield f"GET {collection}", Probe(f"SCIM list {endpoint}", "GET", f"{base}/{endpoint}?count=1000")
        yield (
            f"GET {collection}",
            Probe(
                f"SCIM filter {endpoint}", "GET", f'{base}/{endpoint}?filter=displayName co "e"&attributes=displayName'
            ),
        )
        yield f"POST {collection}", Probe(f"SCIM create {endpoint}", "POST", f"{base}/{endpoint}", created, allowed=201)
        yield (
            f"POST {collection}/.search",
            Probe(f"SCIM search {endpoint}", "POST", f"{base}/{endpoint}/.search", SCIM_SEARCH),
        )
        yield f"GET {one}", Probe(f"SCIM read {endpoint}", "GET", f"{base}/{endpoint}/{item}")
        yield f"PUT {one}", Probe(f"SCIM replace {endpoint} as read", "PUT", f"{base}/{endpoint}/{item}", as_is)
        yield (
            f"PUT {one}",
            Probe(f"SCIM replace {endpoint}, stale", "PUT", f"{base}/{endpoint}/{item}", as_is, stale, allowed=412),
        )
        yield f"PATCH {one}", Probe(f"SCIM patch {endpoint}", "PATCH", f"{base}/{endpoint}/{item}", same)
        yield (
            f"PATCH {one}",
            Probe(f"SCIM patch {endpoint}, stale", "PATCH", f"{base}/{endpoint}/{item}", same, stale, allowed=412),
        )
        yield (
            f"DELETE {one}",
            Probe(f"SCIM delete {endpoint}, stale", "DELETE", f"{base}/{endpoint}/{item}", headers=stale, allowed=412),
        )
        yield (
            f"DELETE {one}",
            Probe(
                f"SCIM delete {endpoint}", "DELETE", f"{base}/{endpoint}/{doomed[(doomed_kind, scope)]}", allowed=204
            ),
        )
    yield "POST /scim/v2/{org}/.search", Probe("SCIM search", "POST", f"{base}/.search", SCIM_SEARCH)
    yield "", Probe("SCIM unknown path", "GET", f"{base}/Nothing/here", allowed=404)


def scim_refusals() -> Iterator[Probe]:
    """Every method a SCIM path does not have: 405 for everybody."""
    from tenancy_backend.scim.routes import METHODS as SCIM_METHODS
    from tenancy_backend.scim.routes import PATHS

    for template, allowed in PATHS.items():
        path = f"/scim/v2{template}".replace("{org}", TARGET).replace("{item}", "x")
        for method in SCIM_METHODS:
            if method not in allowed:
                yield Probe(
                    f"SCIM {method} {template}",
                    method,
                    path,
                    {} if method != "GET" else None,
                    allowed=405,
                    hidden=405,
                    unauthenticated=405,
                )


def test_every_scim_route_method_and_token(
    server: Server, world: World, scim_doomed: dict[tuple[str, str], str]
) -> None:
    covered: set[str] = set()
    failures: list[str] = []
    base_orgs = set(PARENTS)
    for scope in SCOPES:
        session = requests.Session()
        foreign = [s for o in base_orgs - (_visible(scope, PARENTS) & base_orgs) for s in world.secrets_of(o)]
        cases = list(scim_probes(world, scope, scim_doomed))
        covered |= {route for route, _ in cases if route}
        for probe in [p for _, p in cases] + list(scim_refusals()):
            headers = {**headers_for(world, scope), "Content-Type": "application/scim+json", **dict(probe.headers)}
            response = session.request(
                probe.method, server.url + probe.path, json=probe.body, headers=headers, timeout=30
            )
            where = f"{scope}: {probe.label} ({probe.method} {probe.path})"
            if response.status_code != probe.expected(scope):
                failures.append(
                    f"{where}: {response.status_code}, expected {probe.expected(scope)}: {response.text[:200]}"
                )
            if response.status_code >= 400 and not response.headers.get("content-type", "").startswith(
                "application/scim+json"
            ):
                failures.append(f"{where}: a refusal that is not a SCIM Error ({response.headers.get('content-type')})")
            leaked = [s for s in foreign if s in response.text + json.dumps(dict(response.headers))]
            if leaked:
                failures.append(f"{where}: leaked {leaked[:3]}")
    assert not failures, f"{len(failures)} wrong answers:\n" + "\n".join(failures[:40])
    assert covered == scim_routes(), f"SCIM routes the matrix misses: {scim_routes() - covered}"
    live = {(d["kind"], d["metadata"]["name"]) for d in world.service.export(Scope.root(), organization=TARGET)}
    for scope in SCOPES:  # what hidden and unauthenticated tokens tried is not there, what they aimed at is
        assert (("User", f"scim-new-{scope}") in live) == (scope in ALLOWED), scope
        assert (("User", f"scim-del-{scope}") in live) == (scope not in ALLOWED), scope
        assert (("Team", f"scim-del-{scope}") in live) == (scope not in ALLOWED), scope
