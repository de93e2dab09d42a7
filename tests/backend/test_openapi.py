"""The OpenAPI document: checked in, served, and honoured by the server (a bounded schemathesis run)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tenancy_backend.openapi import openapi_document, render_openapi
from tenancy_backend.service import Service
from tests.support import REPO, Server

from .docs import alias, op, org, quota, subscription, team, user

CHECKED_IN = REPO / "schemas" / "openapi.json"


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
        "$ref": "#/components/schemas/UserDocument"
    }
    assert {"201", "401", "404", "409", "412", "413", "422", "429"} <= set(create_user["responses"])
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


