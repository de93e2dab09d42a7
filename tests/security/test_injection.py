"""Names, label selectors, cursors and other parameters carrying SQL or path metacharacters do nothing but
fail validation (4xx), on SQLite and on PostgreSQL, and leave every table of the database as it was.

Each payload (`'; DROP TABLE resources; --`, `' OR '1'='1`, `../`, `%2e%2e`, `%252e`, NUL, backslashes,
shell and template syntax, overlong and non-ASCII strings) is sent raw (http.client, no client-side
normalisation) as an organization and as a resource name in every route, as a label selector, a cursor,
a limit, an export filter, an Idempotency-Key and an If-Match, and inside bodies (metadata.name,
metadata.organization, a label key, changeset fields). Every answer is a 4xx problem document; a label
*value* holding SQL is a valid selector term, bound as a parameter: it matches nothing (200, no items).
Finally the real CLI refuses manifests whose names carry the same payloads, sending nothing.
"""

from __future__ import annotations

import http.client
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from tenancy_kinds import LABEL_KEY_PATTERN
from tests.faults.harness import cli_env, table_snapshot, tenancy
from tests.builders import document
from tests.support import Server, new_pg_database, start_server

TIME_LIMIT_S = 120.0
PAYLOADS = [
    "'; DROP TABLE resources; --",
    "' OR '1'='1",
    '" OR 1=1 --',
    "1; SELECT pg_sleep(5)",
    "1 UNION SELECT token_hash FROM tokens",
    "../",
    "..",
    "../../etc/passwd",
    "..%2f",
    "%2e%2e",
    "%2e%2e%2f",
    "%252e%252e%252f",
    "....//",
    "..\\..\\",
    "%00",
    "a%00b",
    "\x00",
    "%ff",
    "%c0%ae%c0%ae",
    "$(id)",
    "`id`",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "*",
    "%",
    "_",
    "acme/../inj",
    "INJ",
    "inj ",
    " inj",
    "a" * 300,
    "😀",
    "\u202einj",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = (
        f"sqlite:///{tmp_path_factory.mktemp('inj') / 'tenancy.db'}"
        if request.param == "sqlite"
        else new_pg_database("tenancy_injection")
    )
    with start_server(url, extra_args=("--auth-failure-limit", "0")) as srv:
        world = [
            document("Organization", "inj", None, displayName="Inj", plan="pro", domains=["inj.example"]),
            document("User", "alice", "inj", email="alice@inj.example", displayName="Alice", role="administrator"),
            document("Team", "devs", "inj", displayName="Devs", members=["alice"]),
        ]
        for d in world:
            kind = {"Organization": "", "User": "/inj/users", "Team": "/inj/teams"}[d["kind"]]
            status, text = _send(srv, "POST", f"/v1/organizations{kind}", d)
            assert status == 201, text
        yield srv


def _send(
    server: Server, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {**server.headers(), "Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=payload, headers=all_headers, encode_chunked=False)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def _segment(payload: str) -> str:
    """The payload in a path segment: percent-encoded where it must be, already-encoded forms kept raw."""
    if "%" in payload and all(c.isascii() and c.isprintable() for c in payload):
        return payload.replace(" ", "%20").replace("\\", "%5C")
    return quote(payload, safe="/.")


def requests_for(payload: str) -> Iterator[tuple[str, str, str, Any, dict[str, str]]]:
    """(label, method, path, body, headers) for every place the payload can go."""
    seg, q = _segment(payload), quote(payload, safe="")
    user = document("User", "bob", "inj", email="bob@inj.example", displayName="Bob")
    for plural in ("users", "teams", "aliases", "mailbox-quotas", "customer-subscriptions"):
        yield f"org in {plural} list", "GET", f"/v1/organizations/{seg}/{plural}", None, {}
        yield f"org in {plural} create", "POST", f"/v1/organizations/{seg}/{plural}", user, {}
        yield f"name in {plural} read", "GET", f"/v1/organizations/inj/{plural}/{seg}", None, {}
        yield f"name in {plural} update", "PUT", f"/v1/organizations/inj/{plural}/{seg}", user, {}
        yield f"name in {plural} delete", "DELETE", f"/v1/organizations/inj/{plural}/{seg}", None, {}
    yield "organization read", "GET", f"/v1/organizations/{seg}", None, {}
    yield "organization delete", "DELETE", f"/v1/organizations/{seg}", None, {}
    yield "deposit", "POST", f"/v1/organizations/{seg}/deposits", {"amount": "1.00"}, {}
    if not re.match(LABEL_KEY_PATTERN, payload.strip()):  # "INJ" or " inj" select on a label key: valid
        yield "selector", "GET", f"/v1/organizations/inj/users?labelSelector={q}", None, {}
        yield "selector on export", "GET", f"/v1/export?labelSelector={q}", None, {}
    yield "cursor", "GET", f"/v1/organizations/inj/users?cursor={q}", None, {}
    yield "cursor on organizations", "GET", f"/v1/organizations?cursor={q}", None, {}
    yield "limit", "GET", f"/v1/organizations/inj/users?limit={q}", None, {}
    yield "export filter", "GET", f"/v1/export?organization={q}", None, {}
    if payload.isascii() and payload.isprintable() and payload != "*":  # If-Match: * is valid HTTP
        yield (
            "idempotency key",
            "POST",
            "/v1/organizations/inj/users",
            {**user, "spec": {**user["spec"], "displayName": 7}},
            {"Idempotency-Key": payload},
        )
        yield "if-match", "PUT", "/v1/organizations/inj/users/alice", _alice(), {"If-Match": payload}
    yield "body name", "POST", "/v1/organizations/inj/users", {**user, "metadata": {"name": payload}}, {}
    yield (
        "body organization",
        "POST",
        "/v1/organizations/inj/users",
        {**user, "metadata": {"name": "bob", "organization": payload}},
        {},
    )
    if not re.match(LABEL_KEY_PATTERN, payload):  # e.g. "INJ" is a perfectly good label key
        yield (
            "body label key",
            "POST",
            "/v1/organizations/inj/users",
            {**user, "metadata": {"name": "bob", "labels": {payload: "x"}}},
            {},
        )
    yield (
        "organization name",
        "POST",
        "/v1/organizations",
        document("Organization", payload, None, displayName="X", domains=[]),
        {},
    )
    for field in ("name", "organization", "kind", "op"):
        operation = {
            "op": "create",
            "kind": "User",
            "organization": "inj",
            "name": "bob",
            "document": user,
            field: payload,
        }
        yield f"changeset {field}", "POST", "/v1/changesets", {"operations": [operation]}, {}


def _alice() -> dict[str, Any]:
    return document("User", "alice", "inj", email="alice@inj.example", displayName="Alice", role="administrator")


def test_metacharacters_only_fail_validation(server: Server) -> None:
    before = table_snapshot(server.db_url)
    statuses: Counter[int] = Counter()
    wrong = []
    for payload in PAYLOADS:
        for label, method, path, body, headers in requests_for(payload):
            status, text = _send(server, method, path, body, headers)
            statuses[status] += 1
            if not 400 <= status < 500:
                wrong.append(f"{label} with {payload!r}: {status} {text[:160]}")
            elif status != 405 and '"errors"' not in text:
                wrong.append(f"{label} with {payload!r}: {status} is not a problem document: {text[:160]}")
    assert not wrong, "\n".join(wrong[:30])
    assert table_snapshot(server.db_url) == before, "the database changed"
    print(
        f"\ninjection ({server.db_url.split(':')[0]}): {sum(statuses.values())} requests, {len(PAYLOADS)} payloads: "
        + ", ".join(f"{s} ×{n}" for s, n in sorted(statuses.items()))
        + "; database unchanged"
    )


@pytest.mark.parametrize("value", ["'; DROP TABLE resources; --", "x' OR 1 --", "\\'; SELECT 1; --"])
def test_sql_in_a_selector_value_is_a_value(server: Server, value: str) -> None:
    before = table_snapshot(server.db_url)
    status, text = _send(server, "GET", f"/v1/organizations/inj/users?labelSelector={quote('team=' + value, safe='')}")
    assert status == 200 and json.loads(text)["items"] == [], text
    status, text = _send(server, "GET", f"/v1/organizations/inj/users?labelSelector={quote('team!=' + value, safe='')}")
    assert status == 200 and [u["metadata"]["name"] for u in json.loads(text)["items"]] == ["alice"], text
    assert table_snapshot(server.db_url) == before


def test_the_cli_refuses_such_names_and_sends_nothing(server: Server, tmp_path: Path) -> None:
    before = table_snapshot(server.db_url)
    m = tmp_path / "m"
    m.mkdir()
    docs = [
        document("Organization", "inj2", None, displayName="Inj2", plan="pro", domains=["inj2.example"]),
        document("User", "admin", "inj2", email="admin@inj2.example", displayName="A", role="administrator"),
    ]
    docs += [document("User", p, "inj2", email=f"u{i}@inj2.example", displayName="U") for i, p in enumerate(PAYLOADS)]
    docs += [document("Team", "t", p, displayName="T") for p in PAYLOADS[:5]]
    (m / "inj.yaml").write_text(yaml.safe_dump_all(docs, allow_unicode=True))
    env = cli_env(server.url, server.token)
    for args in (["plan", "m"], ["apply", "m", "--yes"]):
        result = tenancy(args, env, tmp_path)
        assert result.rc == 1 and "Traceback" not in result.both, result.both[-2000:]
        assert result.both.count(": error: ") >= len(PAYLOADS), result.both[-3000:]
    assert table_snapshot(server.db_url) == before
