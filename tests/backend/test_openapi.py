"""The OpenAPI document: checked in, served, and honoured by the server (a bounded schemathesis run)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from tenancy_kinds import KINDS, Kind
from tenancy_kinds.billing import parse_amount
from tenancy_backend.errors import BadRequest
from tenancy_backend.openapi import PROBLEM_JSON, openapi_document, render_openapi
from tenancy_backend.parsing import check_text
from tenancy_backend.selectors import (
    CURSOR_PATTERN,
    SELECTOR_PATTERN,
    decode_cursor,
    encode_cursor,
    parse_selector,
)
from tenancy_backend.service import MAX_DEPOSIT, Service
from tests.support import REPO, Server

from tests.builders import alias, op, org, quota, subscription, team, user

CHECKED_IN = REPO / "schemas" / "openapi.json"
DEPOSIT_AMOUNT = openapi_document()["components"]["schemas"]["Deposit"]["properties"]["amount"]["anyOf"][0]["pattern"]


def test_checked_in_openapi_is_current() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == render_openapi(), (
        "schemas/openapi.json is stale: regenerate it with "
        "`python -c \"from tenancy_backend.openapi import write_openapi; write_openapi('schemas/openapi.json')\"`"
    )


def test_the_served_openapi_is_the_checked_in_file_byte_for_byte(server: Server) -> None:
    served = requests.get(f"{server.url}/openapi.json", timeout=30)
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/json")
    assert served.content == CHECKED_IN.read_bytes()


def test_openapi_is_deterministic_and_complete() -> None:
    document = openapi_document()
    assert json.dumps(document, sort_keys=True) == json.dumps(openapi_document(), sort_keys=True)
    paths = document["paths"]
    for plural in ("users", "teams", "aliases", "mailbox-quotas", "customer-subscriptions"):
        assert set(paths[f"/v1/organizations/{{org}}/{plural}"]) == {"get", "post"}
        assert set(paths[f"/v1/organizations/{{org}}/{plural}/{{name}}"]) == {"get", "put", "delete"}
    create_user = paths["/v1/organizations/{org}/users"]["post"]
    assert create_user["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserDocumentCreate"
    }
    components = document["components"]["schemas"]
    # What the path gives may be left out of the body: the organization on POST, the name too on PUT.
    assert components["ScopedMetadataCreate"]["required"] == ["name"]
    assert components["ScopedMetadataReplace"]["required"] == []
    assert components["OrganizationMetadataCreate"]["required"] == ["name"]
    assert components["UserDocument"]["properties"]["metadata"] == {"$ref": "#/components/schemas/ScopedMetadata"}
    assert {"201", "401", "404", "409", "413", "415", "422", "429"} <= set(create_user["responses"])
    assert "412" not in create_user["responses"]  # no If-Match on a POST: a precondition fails where one is read
    for method in ("put", "delete"):
        assert {"401", "404", "409", "412", "422", "429"} <= set(
            paths["/v1/organizations/{org}/users/{name}"][method]["responses"]
        )
    assert paths["/healthz"]["get"]["security"] == []
    schemathesis.openapi.from_dict(document).validate()  # a valid OpenAPI 3.1 document


@pytest.fixture(scope="module")
def world(server: Server) -> None:
    service = Service(server.db_url)  # something to find: "st" with one resource of every kind
    service.changeset(
        service.authenticate(server.token),
        [
            op("create", org("st", domains=["st.example"])),
            op("create", user("st", "alice")),
            op("create", team("st", "devs", ["alice"])),
            op("create", quota("st", "q")),
            op("create", alias("st", "info", "alice")),
            op("create", subscription("st", "sig")),
        ],
    )
    service.close()


schema = schemathesis.openapi.from_dict(openapi_document())

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_the_api_honours_its_openapi_document(case: Any, server: Server, world: None) -> None:
    response = case.call(base_url=server.url, headers=server.headers(), timeout=30)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    case.validate_response(response, checks=CHECKS, headers=server.headers())


def test_problem_documents_everywhere(server: Server) -> None:
    for method, path in [("GET", "/nowhere"), ("DELETE", "/healthz"), ("GET", "/v1/organizations")]:
        response = requests.request(method, server.url + path, timeout=10)
        assert response.headers["content-type"].startswith("application/problem+json"), path
        assert set(response.json()) == {"type", "title", "status", "detail", "errors"}


# --- the document says what the server enforces ---------------------------------------------------


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_refusal_is_a_documented_problem() -> None:
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, method, operation in _operations():
        refusals = {int(s): r for s, r in operation["responses"].items() if int(s) >= 400}
        where = f"{method.upper()} {path}"
        assert all(r["content"] == problem for r in refusals.values()), where
        if operation.get("security") == []:
            continue
        assert {401, 429, 503} <= set(refusals), where
        assert refusals[401]["headers"]["WWW-Authenticate"] and refusals[429]["headers"]["Retry-After"]
        if "requestBody" in operation:
            assert {400, 413, 415, 422} <= set(refusals), where
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if "If-Match" in headers:
            assert 412 in refusals, where
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert {404, 422} <= set(refusals), where


def test_query_and_header_parameters_are_strings_not_nulls() -> None:
    for path, method, operation in _operations():
        for parameter in operation.get("parameters", []):
            assert "anyOf" not in parameter["schema"], (method, path, parameter)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.from_regex(SELECTOR_PATTERN), st.text(alphabet=" \t\n\u00a0,=!aZ09/.-_é", max_size=24)))
def test_the_documented_selector_pattern_is_the_parsers_grammar(selector: str) -> None:
    try:
        parse_selector(selector)
        accepted = True
    except BadRequest:
        accepted = False
    assert accepted == bool(re.search(SELECTOR_PATTERN, selector)), repr(selector)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(st.from_regex(CURSOR_PATTERN, fullmatch=True), st.text(alphabet="0123456789abcdefABXYZ=_- ", max_size=18))
)
def test_every_cursor_of_the_documented_pattern_is_a_page_and_no_other(cursor: str) -> None:
    try:
        decode_cursor(cursor)
        accepted = True
    except BadRequest:
        accepted = False
    assert accepted == bool(re.fullmatch(CURSOR_PATTERN, cursor)), repr(cursor)


def test_cursors_round_trip() -> None:
    for last_id in (0, 1, 255, 2**40 + 7, 16**15 - 1):
        assert decode_cursor(encode_cursor(last_id)) == last_id
        assert re.fullmatch(CURSOR_PATTERN, encode_cursor(last_id))


def _whole_numbers_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_integers(v) for v in value]
    return value


BODY_OPERATIONS = sorted(
    op["operationId"] for _, _, op in _operations() if op["operationId"].startswith(("create", "replace"))
)


def _kind_of(operation_id: str) -> Kind:
    return KINDS[operation_id.removeprefix("create").removeprefix("replace")]


@pytest.mark.parametrize("operation_id", BODY_OPERATIONS)
def test_every_document_the_openapi_schema_allows_the_models_accept(operation_id: str) -> None:
    """The per-value half of the truth: no value the document allows is refused by the kinds' models
    (patterns, lengths, enums) or by the backend's text check. Rules between values are the other half."""
    kind = _kind_of(operation_id)
    operations = (r.ok() for r in schema.get_all_operations())  # type: ignore[union-attr]  # an Err raises, and should
    operation = next(op for op in operations if op.definition.raw["operationId"] == operation_id)

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def accepted(case: Any) -> None:
        document = _whole_numbers_as_integers(copy.deepcopy(case.body))  # 1.0 is an integer in JSON Schema
        metadata = document["metadata"]
        for field, value in (case.path_parameters or {}).items():  # what the server fills from the path
            metadata.setdefault({"org": "organization"}.get(field, field), value)
        kind.wire_document.model_validate_json(json.dumps(document), strict=True)
        check_text(document)

    accepted()


@settings(max_examples=300, deadline=None, database=None)
@given(st.from_regex(DEPOSIT_AMOUNT, fullmatch=True))
def test_every_documented_deposit_amount_is_accepted(amount: str) -> None:
    assert Decimal("0.01") <= parse_amount(amount) <= MAX_DEPOSIT
