"""Hostile SCIM input: hypothesis-generated filters, bodies and PATCH operations against the real server on
SQLite and PostgreSQL. Every answer is a SCIM document, and none is a 5xx.

TENANCY_SCIM_FUZZ_EXAMPLES (default 60) bounds the examples of each test.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scim.conftest import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    SCIM_JSON,
    USER_SCHEMA,
    Org,
    new_org,
)
from tests.support import Server

EXAMPLES = int(os.environ.get("TENANCY_SCIM_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

ATTRIBUTES = ["userName", "displayName", "externalId", "emails", "emails.value", "emails.primary", "active",
              "name", "name.formatted", "password", "id", "meta.created", "meta.lastModified", "members",
              "members.value", "members.$ref", "schemas", "urn:ietf:params:scim:schemas:core:2.0:User:userName",
              "nosuch", "nosuch.sub", "emails[value eq \"x\"]", ""]
OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "zz", "EQ"]
# Query strings must encode as UTF-8 (a client cannot send a lone surrogate there); JSON bodies escape one.
query_text = st.text(st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["", "\x00", '"', "\\", "a@b.example"]
)
text = query_text | st.just("\ud800")
literals = st.one_of(
    query_text.map(json.dumps),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["true", "false", "null", '"2026-01-01T00:00:00Z"', "x"]),
)
attribute = st.sampled_from(ATTRIBUTES) | query_text


@st.composite
def filters(draw: Any, depth: int = 0) -> str:
    if depth < 2 and draw(st.booleans()):
        left, right = draw(filters(depth + 1)), draw(filters(depth + 1))
        shape = draw(st.sampled_from(["{} and {}", "{} or {}", "not ({})", "({}) and ({})", "{}[{}]"]))
        return shape.format(left, right) if shape.count("{}") == 2 else shape.format(left)
    if draw(st.integers(0, 9)) == 0:
        return draw(query_text)
    op = draw(st.sampled_from(OPERATORS))
    return f"{draw(attribute)} {op}" if op == "pr" else f"{draw(attribute)} {op} {draw(literals)}"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(attribute, children, max_size=4),
    max_leaves=12,
)


@st.composite
def user_bodies(draw: Any) -> Any:
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    body: dict[str, Any] = {"schemas": draw(st.sampled_from([[USER_SCHEMA], [], ["urn:x"], [GROUP_SCHEMA]]))}
    for name in draw(st.lists(st.sampled_from(ATTRIBUTES[:10]), max_size=6, unique=True)):
        body[name] = draw(json_values | st.just([{"value": draw(text), "primary": draw(st.booleans())}]))
    body.setdefault("userName", draw(text))
    return body


@st.composite
def patches(draw: Any) -> Any:
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    operations = [
        {
            "op": draw(st.sampled_from(["add", "remove", "replace", "Replace", "move", ""])),
            **({"path": draw(st.sampled_from(ATTRIBUTES) | filters())} if draw(st.booleans()) else {}),
            **({"value": draw(json_values)} if draw(st.booleans()) else {}),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    return {"schemas": [PATCH_SCHEMA], "Operations": operations}


def _scim_answer(response: Any) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(SCIM_JSON), response.headers
        assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        # Worded for the directory's administrator, not the library's (no "1 validation error for User").
        detail = response.json().get("detail") or ""
        assert "validation error for" not in detail and "errors.pydantic.dev" not in detail, detail


@pytest.fixture
def fuzzed(server: Server) -> Org:
    """An organization with a user and a group to aim PUTs and PATCHes at."""
    org = new_org(server, "fuzz")
    org.user(f"target@{org.domain}")
    return org


def _targets(org: Org) -> tuple[str, str]:
    user = org.scim("GET", "/Users?count=1").json()["Resources"][0]["id"]
    groups = org.scim("GET", "/Groups?count=1").json()
    if not groups["totalResults"]:
        created = org.scim("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Fuzz"})
        return user, created.json()["id"]
    return user, groups["Resources"][0]["id"]


def test_filters(fuzzed: Org) -> None:
    @FUZZ
    @given(expression=filters(), start=st.integers(-5, 5) | st.none(), count=st.integers(-5, 5) | st.none())
    def probe(expression: str, start: int | None, count: int | None) -> None:
        query: dict[str, Any] = {"filter": expression}
        if start is not None:
            query["startIndex"] = start
        if count is not None:
            query["count"] = count
        _scim_answer(
            fuzzed.session.get(
                fuzzed.base + "/Users", params=query, headers={"Authorization": f"Bearer {fuzzed.token}"}, timeout=30
            )
        )
        _scim_answer(
            fuzzed.scim(
                "POST",
                "/.search",
                {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": expression,
                    "sortBy": expression[:20],
                },
            )
        )

    probe()


def test_bodies(fuzzed: Org) -> None:
    user, group = _targets(fuzzed)

    @FUZZ
    @given(body=user_bodies(), method=st.sampled_from(["POST", "PUT"]), kind=st.sampled_from(["Users", "Groups"]))
    def probe(body: Any, method: str, kind: str) -> None:
        path = f"/{kind}" if method == "POST" else f"/{kind}/{user if kind == 'Users' else group}"
        _scim_answer(fuzzed.scim(method, path, body))

    probe()


def test_patches(fuzzed: Org) -> None:
    user, group = _targets(fuzzed)

    @FUZZ
    @given(body=patches(), kind=st.sampled_from(["Users", "Groups"]))
    def probe(body: Any, kind: str) -> None:
        _scim_answer(fuzzed.scim("PATCH", f"/{kind}/{user if kind == 'Users' else group}", body))

    probe()


@pytest.mark.parametrize(
    "operation, attribute",
    [
        ({"op": "replace", "path": "active", "value": "notabool"}, "active"),
        ({"op": "replace", "value": {"active": [1]}}, "active"),
        ({"op": "replace", "path": "displayName", "value": {"x": 1}}, "displayName"),
    ],
)
def test_a_patch_value_of_the_wrong_type_is_refused_naming_its_attribute(
    fuzzed: Org, operation: dict[str, Any], attribute: str
) -> None:
    user, _ = _targets(fuzzed)
    before = fuzzed.scim("GET", f"/Users/{user}").json()
    refused = fuzzed.scim("PATCH", f"/Users/{user}", {"schemas": [PATCH_SCHEMA], "Operations": [operation]})
    assert refused.status_code == 400, refused.text
    assert refused.json()["scimType"] == "invalidValue"
    _scim_answer(refused)
    assert attribute in refused.json()["detail"]
    assert fuzzed.scim("GET", f"/Users/{user}").json()["meta"]["version"] == before["meta"]["version"]
