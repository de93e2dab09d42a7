"""Discovery: /Schemas publishes exactly the attributes served, with their real characteristics, and
/ServiceProviderConfig announces what the server does (each announced feature is exercised elsewhere)."""

from __future__ import annotations

from typing import Any

from tests.scim.conftest import GROUP_SCHEMA, USER_SCHEMA, Org

COMMON = {"schemas", "id", "externalId", "meta"}  # RFC 7643 §3.1: on every resource, in no schema


def _attributes(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in schema["attributes"]}


def test_the_user_schema_is_what_a_user_carries(org: Org) -> None:
    schema = org.scim("GET", f"/Schemas/{USER_SCHEMA}").json()
    attributes = _attributes(schema)
    assert set(attributes) == {"userName", "name", "displayName", "active", "password", "emails"}
    assert {a: attributes[a]["mutability"] for a in attributes} == {
        "userName": "readWrite", "name": "readWrite", "displayName": "readWrite", "active": "readWrite",
        "password": "writeOnly", "emails": "immutable"}
    assert attributes["password"]["returned"] == "never"
    assert attributes["userName"]["uniqueness"] == "server" and attributes["userName"]["caseExact"] is False
    assert {s["name"] for s in attributes["emails"]["subAttributes"]} == {"value", "type", "primary"}
    assert [s["name"] for s in attributes["name"]["subAttributes"]] == ["formatted"]
    ada = org.user(f"ada@{org.domain}", externalId="x", name={"formatted": "Ada"}, password="Hw6!tPq9#nXc4Rzb",
                   emails=[{"value": f"ada@{org.domain}", "type": "work", "primary": True}])
    assert set(ada) - COMMON == set(attributes) - {"password"}
    assert set(ada["name"]) == {"formatted"} and set(ada["emails"][0]) == {"value", "type", "primary"}


def test_the_group_schema_is_what_a_team_shows(org: Org) -> None:
    attributes = _attributes(org.scim("GET", f"/Schemas/{GROUP_SCHEMA}").json())
    assert set(attributes) == {"displayName", "members"}
    members = {s["name"]: s for s in attributes["members"]["subAttributes"]}
    assert set(members) == {"value", "$ref", "type"} and members["$ref"]["referenceTypes"] == ["User"]
    ada = org.user(f"ada@{org.domain}")
    group = org.scim("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops", "externalId": "g",
                                         "members": [{"value": ada["id"], "display": "ignored"}]}).json()
    assert set(group) - COMMON == set(attributes)
    assert group["members"] == [{"value": ada["id"], "$ref": ada["meta"]["location"], "type": "User"}]


def test_service_provider_config_and_resource_types(org: Org) -> None:
    config = org.scim("GET", "/ServiceProviderConfig").json()
    announced = {k: config[k]["supported"] for k in ("patch", "bulk", "filter", "changePassword", "sort", "etag")}
    assert announced == {"patch": True, "bulk": False, "filter": True, "changePassword": True, "sort": True,
                         "etag": True}
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = org.scim("GET", "/ResourceTypes").json()["Resources"]
    assert {(t["name"], t["endpoint"], t["schema"]) for t in types} == {
        ("User", "/Users", USER_SCHEMA), ("Group", "/Groups", GROUP_SCHEMA)}
    assert all(t["meta"]["location"].startswith(org.base + "/ResourceTypes/") for t in types)
    names = {s["name"] for s in org.scim("GET", "/Schemas").json()["Resources"]}
    assert names == {"User", "Group", "ServiceProviderConfig", "ResourceType", "Schema"}
    assert org.scim("GET", "/Schemas/urn:nothing").status_code == 404
