"""The HTTP API against a real `tenancy serve` subprocess on loopback (SQLite; one server per module)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tenancy_kinds import KINDS
from tests.support import Server, create_token, start_server

from tests.builders import STRONG_PASSWORD, alias, op, org, quota, subscription, team, user

PROBLEM = "application/problem+json"


class Api:
    """A tiny client over requests, with the server's root token by default."""

    def __init__(self, server: Server, token: str | None = None) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token or server.token}"

    def __call__(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["json"] = body
        return self.session.request(method, self.server.url + path, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def api(server: Server) -> Api:
    return Api(server)


def unique(prefix: str = "o") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def make_org(api: Api, **spec: Any) -> str:
    name = unique()
    response = api("POST", "/v1/organizations", org(name, **spec))
    assert response.status_code == 201, response.text
    return name


RFC_9110_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
    412: "Precondition Failed", 413: "Content Too Large", 422: "Unprocessable Content", 429: "Too Many Requests",
}


def assert_problem(response: requests.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status and "type" in problem
    assert problem["title"] == RFC_9110_TITLES.get(status, problem["title"])  # one name per status, whoever refused
    assert isinstance(problem["errors"], list)
    text = problem["detail"] + " ".join(e["message"] for e in problem["errors"])
    for fragment in fragments:
        assert fragment in text, text
    return problem  # type: ignore[no-any-return]


def path_of(document: dict[str, Any]) -> str:
    kind = KINDS[document["kind"]]
    meta = document["metadata"]
    if not kind.scoped:
        return f"/v1/organizations/{meta['name']}"
    return f"/v1/organizations/{meta['organization']}/{kind.plural}/{meta['name']}"


def collection_of(kind: str, organization: str | None) -> str:
    if organization is None:
        return "/v1/organizations"
    return f"/v1/organizations/{organization}/{KINDS[kind].plural}"


# --- CRUD -----------------------------------------------------------------------------------------


def _example(kind: str, o: str) -> tuple[dict[str, Any], dict[str, Any]]:
    examples = {
        "Organization": (org(o + "-x"), {"displayName": "Renamed"}),
        "User": (user(o, "zed", password=STRONG_PASSWORD), {"displayName": "Zed Z"}),
        "Team": (team(o, "ops", ["alice"]), {"members": ["alice", "bob"]}),
        "MailboxQuota": (quota(o, "q"), {"maxAddresses": 9}),
        "Alias": (alias(o, "help", "alice"), {"user": "bob"}),
        "CustomerSubscription": (subscription(o, "sig"), {"users": 5}),
    }
    return examples[kind]


@pytest.mark.parametrize("kind", list(KINDS))
def test_crud_of_every_kind(api: Api, kind: str) -> None:
    o = make_org(api)
    for name in ("alice", "bob"):
        assert api("POST", f"/v1/organizations/{o}/users", user(o, name)).status_code == 201
    document, change = _example(kind, o)
    organization = document["metadata"].get("organization")
    created = api("POST", collection_of(kind, organization), document)
    assert created.status_code == 201, created.text
    body = created.json()
    version = body["metadata"]["resourceVersion"]
    assert created.headers["ETag"] == f'"{version}"'
    assert created.headers["Location"] == path_of(body)
    assert "password" not in body["spec"] and STRONG_PASSWORD not in created.text

    read = api("GET", path_of(body))
    assert read.status_code == 200 and read.json() == body and read.headers["ETag"] == f'"{version}"'

    changed = {**body, "spec": {**body["spec"], **change}}
    stale = api("PUT", path_of(body), changed, headers={"If-Match": '"999999"'})
    assert_problem(stale, 412, "changed since it was read")
    updated = api("PUT", path_of(body), changed, headers={"If-Match": f'"{version}"'})
    assert updated.status_code == 200, updated.text
    new_version = updated.json()["metadata"]["resourceVersion"]
    assert updated.headers["ETag"] == f'"{new_version}"' and new_version != version

    listed = api("GET", collection_of(kind, organization))
    assert body["metadata"]["name"] in [d["metadata"]["name"] for d in listed.json()["items"]]

    assert_problem(api("DELETE", path_of(body), headers={"If-Match": version}), 412)
    deleted = api("DELETE", path_of(body), headers={"If-Match": new_version})
    if KINDS[kind].delete_archives:
        assert deleted.status_code == 200 and deleted.json()["status"]["phase"] == "archived"
        assert api("GET", path_of(body)).json()["spec"]["state"] == "archived"
    else:
        assert deleted.status_code == 204 and deleted.content == b""
        assert_problem(api("GET", path_of(body)), 404, "not found")


def test_put_fills_name_and_organization_from_the_path(api: Api) -> None:
    o = make_org(api)
    document = user(o, "alice")
    created = api("POST", f"/v1/organizations/{o}/users", {**document, "metadata": {"name": "alice"}})
    assert created.status_code == 201, created.text
    body = created.json()
    body["status"] = {"mailbox": "ignored"}
    body["metadata"]["uid"] = "ignored"
    assert api("PUT", path_of(body), body).status_code == 200
    other = {**body, "metadata": {**body["metadata"], "name": "bob"}}
    assert_problem(api("PUT", path_of(body), other), 422, "does not match the name 'alice' in the path")


# --- lists ----------------------------------------------------------------------------------------


def test_pagination_over_2500_items(api: Api) -> None:
    o = make_org(api)
    names = [f"t{i:04d}" for i in range(2500)]
    operations = [op("create", team(o, n)) for n in names]
    response = api("POST", "/v1/changesets", {"operations": operations})
    assert response.status_code == 200, response.text[:500]
    assert len(response.json()["results"]) == 2500

    def walk(limit: int | None) -> list[str]:
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": limit} if limit else {}
            if cursor:
                params["cursor"] = cursor
            page = api("GET", f"/v1/organizations/{o}/teams", params=params).json()
            assert len(page["items"]) <= (limit or 100)
            seen += [d["metadata"]["name"] for d in page["items"]]
            cursor = page["nextCursor"]
            if cursor is None:
                return seen

    assert walk(1000) == names
    assert walk(None) == names
    assert_problem(api("GET", f"/v1/organizations/{o}/teams", params={"limit": 1001}), 422, "limit")
    assert_problem(api("GET", f"/v1/organizations/{o}/teams", params={"limit": 0}), 422)
    assert_problem(api("GET", f"/v1/organizations/{o}/teams", params={"cursor": "nope"}), 400, "invalid cursor")


def test_label_selector(api: Api) -> None:
    o = make_org(api)
    for name, labels in {"a": {"team": "sales", "tenancy/stack": "s1"}, "b": {"team": "ops"}, "c": {}}.items():
        assert api("POST", f"/v1/organizations/{o}/users", user(o, name, meta={"labels": labels})).status_code == 201

    def names(selector: str) -> list[str]:
        response = api("GET", f"/v1/organizations/{o}/users", params={"labelSelector": selector})
        assert response.status_code == 200, response.text
        return [d["metadata"]["name"] for d in response.json()["items"]]

    assert names("team") == ["a", "b"]
    assert names("team=sales") == ["a"]
    assert names("team!=sales") == ["b", "c"]
    assert names("!team") == ["c"]
    assert names("tenancy/stack=s1,team=sales") == ["a"]
    assert_problem(api("GET", f"/v1/organizations/{o}/users", params={"labelSelector": "a,,b"}), 400, "labelSelector")


def test_export_prices_and_deposits(api: Api) -> None:
    o = make_org(api)
    api("POST", f"/v1/organizations/{o}/users", user(o, "alice", subscription="pro"))
    exported = api("GET", "/v1/export", params={"organization": o})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/json")
    items = exported.json()["items"]
    assert [(d["kind"], d["metadata"]["name"]) for d in items] == [("Organization", o), ("User", "alice")]
    assert items[0]["status"]["monthlyCost"] == {"amount": "7.50", "currency": "EUR"}
    assert api("GET", "/v1/prices").json() == {
        "currency": "EUR",
        "subscriptions": {"free": "0.00", "entry": "3.50", "pro": "7.50"},
    }
    deposit = api("POST", f"/v1/organizations/{o}/deposits", {"amount": "50.00"})
    assert deposit.status_code == 200 and deposit.json()["status"]["balance"]["amount"] == "50.00"
    assert_problem(api("POST", f"/v1/organizations/{o}/deposits", {"amount": "-1"}), 422, "between 0.01")
    assert_problem(api("POST", f"/v1/organizations/{o}/deposits", {"amount": "1", "x": 1}), 422)
    assert_problem(api("GET", "/v1/export", params={"organization": "ghost"}), 404)


# --- concurrency control and idempotency ----------------------------------------------------------


def test_idempotent_post_replays_the_first_answer(api: Api) -> None:
    o = make_org(api)
    headers = {"Idempotency-Key": unique("key")}
    first = api("POST", f"/v1/organizations/{o}/users", user(o, "alice"), headers=headers)
    again = api("POST", f"/v1/organizations/{o}/users", user(o, "alice"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["ETag"] == first.headers["ETag"]
    assert len(api("GET", f"/v1/organizations/{o}/users").json()["items"]) == 1
    assert_problem(
        api("POST", f"/v1/organizations/{o}/users", user(o, "bob"), headers=headers),
        422,
        "already used for a different request",
    )
    changes = {"operations": [op("create", user(o, "carol"))]}
    key = {"Idempotency-Key": unique("key")}
    one, two = (api("POST", "/v1/changesets", changes, headers=key) for _ in range(2))
    assert one.status_code == two.status_code == 200 and one.json() == two.json()


def test_concurrent_creates_of_one_address_admit_exactly_one(api: Api) -> None:
    o = make_org(api)

    def attempt(i: int) -> int:
        return api("POST", f"/v1/organizations/{o}/users", user(o, f"u{i}", email=f"same@{o}.example")).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, range(16)))
    assert sorted(statuses) == [201] + [409] * 15


# --- bad requests ---------------------------------------------------------------------------------


def test_authentication(api: Api, server: Server) -> None:
    url = server.url + "/v1/organizations"
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ):
        response = requests.get(url, headers=headers, timeout=10)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # RFC 6750 §3.1: the challenge names the error only when a bearer token was sent.
    assert requests.get(url, timeout=10).headers["WWW-Authenticate"] == 'Bearer realm="tenancy"'
    for token in ("nope", "tnc_" + secrets.token_urlsafe(32)):
        response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="tenancy", error="invalid_token"'
    token = create_token(server.db_url)
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    from tenancy_backend.service import Service

    service = Service(server.db_url)
    service.revoke_token(token)
    service.close()
    assert_problem(requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10), 401, "revoked")
    assert requests.get(server.url + "/healthz", timeout=10).json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b"\xff\xfe{}", 400, "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "not valid JSON"),
        (b'"just a string"', 422, "resource document"),
        (b'{"apiVersion": "tenancy/v1"}', 422, "invalid Organization document"),
    ],
    ids=["malformed", "empty", "bad-utf8", "deep", "string", "incomplete"],
)
def test_malformed_bodies(api: Api, body: bytes, status: int, fragment: str) -> None:
    response = api("POST", "/v1/organizations", data=body, headers={"Content-Type": "application/json"})
    assert_problem(response, status, fragment)


def test_validation_errors_use_document_paths(api: Api) -> None:
    o = make_org(api)
    bad = user(o, "alice", email="not-an-email", role="boss")
    problem = assert_problem(api("POST", f"/v1/organizations/{o}/users", bad), 422)
    assert {"spec.email", "spec.role"} <= {e["path"] for e in problem["errors"]}
    rule = assert_problem(api("POST", f"/v1/organizations/{o}/users", user(o, "x", email="x@elsewhere.example")), 422)
    assert rule["errors"][0]["path"] == "spec.email"


def test_bodies_over_one_mebibyte_are_refused(api: Api, server: Server) -> None:
    big = json.dumps(org("big", description="x" * (1024 * 1024))).encode()
    assert_problem(api("POST", "/v1/organizations", data=big, headers={"Content-Type": "application/json"}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"apiVersion": "tenancy/v1", "x": "'
        for _ in range(1100):
            yield b"y" * 1024
        yield b'"}'

    response = requests.post(server.url + "/v1/organizations", data=chunks(), headers=server.headers(), timeout=30)
    assert_problem(response, 413, "exceeds")


def test_unknown_routes_and_methods(api: Api) -> None:
    assert_problem(api("GET", "/v1/widgets"), 404, "no such route")
    assert_problem(api("GET", "/"), 404)
    response = api("PATCH", "/v1/organizations")
    assert_problem(response, 405, "PATCH")
    assert "GET" in response.headers["Allow"]
    assert_problem(api("GET", "/v1/organizations/NOT_A_SLUG"), 422)


# --- HTTP semantics (RFC 9110) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/organizations", "GET, HEAD, OPTIONS, POST"),
        ("/v1/organizations/acme", "DELETE, GET, HEAD, OPTIONS, PUT"),
        ("/v1/organizations/acme/users", "GET, HEAD, OPTIONS, POST"),
        ("/v1/organizations/acme/users/ada", "DELETE, GET, HEAD, OPTIONS, PUT"),
        ("/v1/organizations/acme/deposits", "OPTIONS, POST"),
        ("/v1/changesets", "OPTIONS, POST"),
        ("/v1/prices", "GET, HEAD, OPTIONS"),
    ],
)
def test_405_and_options_list_every_method_of_the_resource(api: Api, path: str, allowed: str) -> None:
    refused = api("PATCH", path)
    assert_problem(refused, 405, f"allowed: {allowed}")
    assert refused.headers["Allow"] == allowed
    options = requests.options(api.server.url + path, timeout=10)  # no token needed: routes are public
    assert options.status_code == 204 and options.headers["Allow"] == allowed and options.content == b""
    assert requests.options(api.server.url + "/v1/widgets", timeout=10).status_code == 404


def test_head_is_get_without_the_body(api: Api) -> None:
    o = make_org(api)
    for path in (f"/v1/organizations/{o}", "/v1/organizations", "/v1/prices", f"/v1/export?organization={o}"):
        got, head = api("GET", path), api("HEAD", path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        for header in ("content-type", "etag", "content-length"):
            assert head.headers.get(header) == got.headers.get(header), (path, header)
    assert api("HEAD", "/v1/organizations/ghost").status_code == 404
    assert requests.head(api.server.url + "/v1/prices", timeout=10).status_code == 401
    assert api("HEAD", "/v1/changesets").headers["Allow"] == "OPTIONS, POST"  # 405: no GET there


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_a_body_not_declared_as_json_is_415(api: Api, content_type: str) -> None:
    body = json.dumps(org(unique())).encode()
    response = api("POST", "/v1/organizations", data=body, headers={"Content-Type": content_type})
    assert_problem(response, 415, content_type.split(";")[0], "application/json")
    assert response.headers["Accept"] == "application/json"
    assert api("GET", "/v1/organizations?limit=1").status_code == 200  # nothing was created from it


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/tenancy+json"],
)
def test_json_media_types_are_read(api: Api, content_type: str) -> None:
    body = json.dumps(org(unique())).encode()
    created = api("POST", "/v1/organizations", data=body, headers={"Content-Type": content_type})
    assert created.status_code == 201, created.text


def test_dns_names_are_case_insensitive(api: Api) -> None:
    name = unique()
    created = api("POST", "/v1/organizations", org(name, domains=[f"{name.upper()}.Example"]))
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["domains"] == [f"{name}.example"]
    clash = api("POST", "/v1/organizations", org(unique(), domains=[f"{name}.EXAMPLE"]))
    assert_problem(clash, 409, f"{name}.example")


def test_openapi_is_served(api: Api) -> None:
    from tenancy_backend.openapi import openapi_document

    response = requests.get(api.server.url + "/openapi.json", timeout=10)
    assert response.status_code == 200 and response.json() == json.loads(json.dumps(openapi_document()))


def test_requests_are_logged_without_bodies(api: Api, server: Server) -> None:
    o = make_org(api)
    marker = "Secret-Marker-" + secrets.token_hex(4)
    api("POST", f"/v1/organizations/{o}/users", user(o, "sam", password=marker + "!Aa9"))
    log = server.output()
    assert f"POST /v1/organizations/{o}/users" in log
    assert marker not in log and api.session.headers["Authorization"].split()[1] not in log


# --- servers of their own -------------------------------------------------------------------------


def test_rate_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with start_server(f"sqlite:///{tmp_path / 'rl.db'}", rate_limit=2) as server:
        statuses, retry_after = [], None
        for _ in range(12):
            response = requests.get(server.url + "/v1/prices", headers=server.headers(), timeout=10)
            statuses.append(response.status_code)
            if response.status_code == 429:
                retry_after = response.headers.get("Retry-After")
                assert_problem(response, 429, "rate limit")
        assert 200 in statuses and 429 in statuses
        assert retry_after is not None and int(retry_after) >= 1
        time.sleep(1.1)
        assert requests.get(server.url + "/v1/prices", headers=server.headers(), timeout=10).status_code == 200
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200


def test_data_survives_a_restart_and_a_kill(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with start_server(f"sqlite:///{tmp_path / 'r.db'}") as server:
        api = Api(server)
        o = make_org(api)
        server.restart()
        assert api("GET", f"/v1/organizations/{o}").status_code == 200
        server.kill()
        server.start()
        assert api("GET", f"/v1/organizations/{o}").status_code == 200
