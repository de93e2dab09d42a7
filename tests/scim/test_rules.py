"""Every rule of SPEC §2 holds through SCIM, judged by the same service code as /v1, and every refusal is a
SCIM Error document (`application/scim+json`) with the right status and scimType. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.scim.conftest import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    SCIM_JSON,
    USER_SCHEMA,
    Org,
    new_org,
)
from tests.support import Server


def refused(response: requests.Response, status: int, scim_type: str | None, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    error = response.json()
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["status"] == str(status)
    assert error.get("scimType") == scim_type, error
    for fragment in fragments:
        assert fragment in error["detail"], error["detail"]
    return error  # type: ignore[no-any-return]


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


# --- uniqueness, quotas, plans --------------------------------------------------------------------


def test_an_address_or_a_username_taken_is_uniqueness(org: Org) -> None:
    org.user(f"ada@{org.domain}")
    again = {"schemas": [USER_SCHEMA], "userName": "someone-else", "emails": [{"value": f"ADA@{org.domain}"}]}
    refused(org.scim("POST", "/Users", again), 409, "uniqueness", f"address 'ADA@{org.domain}' is already used")
    other = new_org(org.server)
    taken_name = {"schemas": [USER_SCHEMA], "userName": f"ada@{org.domain}", "emails": [{"value": f"x@{other.domain}"}]}
    refused(other.scim("POST", "/Users", taken_name), 409, "uniqueness", "a resource of another organization")


def test_a_full_quota_refuses_the_next_mailbox_and_off_domain_users_are_external(org: Org) -> None:
    quota = {"apiVersion": "tenancy/v1", "kind": "MailboxQuota", "metadata": {"name": "main"},
             "spec": {"domain": org.domain, "offer": "starter", "maxAddresses": 1}}
    assert org.v1("POST", f"/v1/organizations/{org.name}/mailbox-quotas", quota).status_code == 201
    org.user(f"ada@{org.domain}")
    refused(org.scim("POST", "/Users", {"userName": f"bob@{org.domain}"}), 409, None, "has no free address")
    guest = org.user("guest@partner.example")  # on none of the organization's domains: no mailbox
    stored = org.users()["guest"]
    assert (stored["spec"]["role"], stored["status"]["mailbox"]) == ("external", False)
    assert guest["emails"] == [{"value": "guest@partner.example", "primary": True}]
    assert org.users()["ada"]["spec"]["role"] == "collaborator"


def test_a_free_organization_holds_no_users_or_teams(server: Server) -> None:
    free = new_org(server, plan="free")
    refused(free.scim("POST", "/Users", {"userName": f"ada@{free.domain}"}), 409, None, "is on plan 'free'")
    refused(free.scim("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Ops"}), 409, None, "plan")


def test_passwords_follow_the_strength_rules_and_are_never_returned(org: Org) -> None:
    weak = {"userName": f"ada@{org.domain}", "password": "password1234"}
    refused(org.scim("POST", "/Users", weak), 400, "invalidValue", "the password is too weak")
    ada = org.user(f"ada@{org.domain}", password="Vq8#rLm2!xTz9pKw")
    changed = org.scim(
        "PATCH", f"/Users/{ada['id']}", patch({"op": "replace", "path": "password", "value": "Zt4#qLm8!wRx2pKv"})
    )
    assert changed.status_code == 200 and "password" not in changed.json()
    assert (
        "Zt4#qLm8" not in changed.text and "Zt4#qLm8" not in org.v1("GET", f"/v1/organizations/{org.name}/users").text
    )


# --- mutability -----------------------------------------------------------------------------------


def test_an_address_never_changes_over_scim(org: Org) -> None:
    ada = org.user(f"ada@{org.domain}")
    moved = patch({"op": "replace", "path": "emails", "value": [{"value": f"ada2@{org.domain}", "primary": True}]})
    refused(org.scim("PATCH", f"/Users/{ada['id']}", moved), 400, "mutability", "emails")
    put = {"schemas": [USER_SCHEMA], "userName": ada["userName"], "emails": [{"value": f"new@{org.domain}"}]}
    refused(org.scim("PUT", f"/Users/{ada['id']}", put), 400, "mutability", "emails is immutable")
    same = {
        "schemas": [USER_SCHEMA],
        "userName": f"ada.{org.name}",
        "emails": [{"value": f"ADA@{org.domain}", "type": "work"}],
    }
    kept = org.scim("PUT", f"/Users/{ada['id']}", same)
    assert kept.status_code == 200 and kept.json()["emails"] == ada["emails"], kept.text
    assert org.users()["ada"]["spec"]["email"] == f"ada@{org.domain}"


def test_required_attributes_cannot_be_removed_and_read_only_ones_are_ignored(org: Org) -> None:
    ada = org.user(f"ada@{org.domain}")
    refused(
        org.scim("PATCH", f"/Users/{ada['id']}", patch({"op": "remove", "path": "displayName"})),
        400,
        "mutability",
        "required attribute",
    )
    renamed = org.scim(
        "PATCH", f"/Users/{ada['id']}", patch({"op": "replace", "path": "name.formatted", "value": "Ada L."})
    )
    assert renamed.json()["displayName"] == "Ada L.", renamed.text
    put = {
        "schemas": [USER_SCHEMA],
        "id": "forged",
        "meta": {"version": "x"},
        "userName": f"ada.{org.name}",
        "displayName": "A",
    }
    replaced = org.scim("PUT", f"/Users/{ada['id']}", put)
    assert replaced.status_code == 200 and replaced.json()["id"] == ada["id"], replaced.text


# --- concurrency ----------------------------------------------------------------------------------


def test_etags_and_if_match(org: Org) -> None:
    ada = org.user(f"ada@{org.domain}")
    read = org.scim("GET", f"/Users/{ada['id']}")
    assert read.headers["etag"] == read.json()["meta"]["version"]
    suspend = patch({"op": "replace", "path": "active", "value": False})
    refused(org.scim("PATCH", f"/Users/{ada['id']}", suspend, **{"If-Match": '"999999"'}), 412, None, "changed since")
    done = org.scim("PATCH", f"/Users/{ada['id']}", suspend, **{"If-Match": read.headers["etag"]})
    assert done.status_code == 200 and done.headers["etag"] != read.headers["etag"]
    refused(org.scim("DELETE", f"/Users/{ada['id']}", **{"If-Match": read.headers["etag"]}), 412, None)
    assert org.scim("DELETE", f"/Users/{ada['id']}", **{"If-Match": done.headers["etag"]}).status_code == 204


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "scim_type"),
    [
        ('filter=userName eq "x', "invalidFilter"),
        ("filter=userName zz 1", "invalidFilter"),
        ('filter=nosuchAttribute eq "x"', "invalidFilter"),
        ("filter=active gt true", "invalidFilter"),
        ("startIndex=one", "invalidValue"),
        ("count=1e9", "invalidValue"),
    ],
)
def test_bad_queries_are_scim_errors(org: Org, query: str, scim_type: str) -> None:
    refused(org.scim("GET", f"/Users?{query}"), 400, scim_type)


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ("{not json", "invalidSyntax"),
        ("", "invalidSyntax"),
        ("[1, 2]", "invalidSyntax"),
        ('{"userName": 5}', "invalidValue"),
        ('{"displayName": "no userName"}', "invalidValue"),
        ('{"userName": "no-address"}', "invalidValue"),
        ('{"userName": "ada", "emails": [{"value": "not an address"}]}', "invalidValue"),
        (
            '{"userName": "ada", "emails": [{"value": "a@b.example", "primary": true}, '
            '{"value": "c@b.example", "primary": true}]}',
            "invalidValue",
        ),
    ],
)
def test_bad_bodies_are_scim_errors(org: Org, body: str, scim_type: str) -> None:
    sent = org.session.post(
        org.base + "/Users",
        data=body.encode(),
        headers={"Authorization": f"Bearer {org.token}", "Content-Type": SCIM_JSON},
        timeout=30,
    )
    refused(sent, 400, scim_type)


def test_filters_select_on_the_attributes_spec_names(org: Org) -> None:
    org.user(f"ada@{org.domain}", displayName="Ada Lovelace", externalId="e-ada")
    org.user(f"bob@{org.domain}", displayName="Bob Smith", externalId="e-bob")
    org.user("Carol", emails=[{"value": f"carol@{org.domain}"}], displayName="Carol Lovelace")

    def names(query: str) -> list[str]:
        listed = org.scim("GET", f"/Users?{query}")
        assert listed.status_code == 200, listed.text
        return sorted(u["userName"] for u in listed.json()["Resources"]) if listed.json()["totalResults"] else []

    assert names('filter=userName eq "ADA@' + org.domain + '"') == [f"ada@{org.domain}"]
    assert names('filter=displayName co "lovelace"') == ["Carol", f"ada@{org.domain}"]
    assert names('filter=userName sw "car"') == ["Carol"]
    assert names('filter=externalId eq "e-bob"') == [f"bob@{org.domain}"]
    assert names('filter=externalId eq "E-BOB"') == []  # externalId is caseExact
    assert names('filter=emails.value eq "carol@' + org.domain + '"') == ["Carol"]
    assert names("filter=externalId pr") == [f"ada@{org.domain}", f"bob@{org.domain}"]
    assert names('filter=displayName co "Lovelace" and userName sw "ada"') == [f"ada@{org.domain}"]
    assert names('filter=externalId eq "e-ada" or externalId eq "e-bob"') == [f"ada@{org.domain}", f"bob@{org.domain}"]
    assert names('filter=not (displayName co "lovelace") and active eq true') == [f"bob@{org.domain}"]
    assert names('filter=emails[value sw "CAROL@"]') == ["Carol"]
    paged = org.scim("GET", "/Users?sortBy=userName&startIndex=2&count=1&attributes=userName").json()
    assert (paged["totalResults"], paged["startIndex"], paged["itemsPerPage"]) == (3, 2, 1)
    assert set(paged["Resources"][0]) == {"schemas", "id", "userName"}
    assert paged["Resources"][0]["userName"] == f"bob@{org.domain}"  # ada@, bob@, Carol: case ignored
    lean = org.scim("GET", "/Users?excludedAttributes=emails,name").json()["Resources"][0]
    assert "emails" not in lean and "name" not in lean and "userName" in lean


def test_a_user_an_alias_names_is_not_deprovisioned_but_can_be_suspended(org: Org) -> None:
    ada = org.user(f"ada@{org.domain}")
    alias = {
        "apiVersion": "tenancy/v1",
        "kind": "Alias",
        "metadata": {"name": "info"},
        "spec": {"address": f"info@{org.domain}", "user": "ada"},
    }
    assert org.v1("POST", f"/v1/organizations/{org.name}/aliases", alias).status_code == 201
    refused(org.scim("DELETE", f"/Users/{ada['id']}"), 409, None, "still named by Alias")
    suspended = org.scim("PATCH", f"/Users/{ada['id']}", patch({"op": "replace", "path": "active", "value": "False"}))
    assert suspended.status_code == 200 and suspended.json()["active"] is False, suspended.text


def test_what_microsoft_entra_sends(org: Org) -> None:
    """Entra's own shapes: an extension and attributes this server does not serve (ignored), capitalised
    ops, booleans as strings, an address by `emails[type eq "work"]`, members removed by value."""
    address = f"test_user_1@{org.domain}"
    created = org.user(
        f"Test_User_1@{org.domain}",
        externalId="0a21f0f2",
        active=True,
        title="Manager",
        schemas=[USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        emails=[{"primary": True, "type": "work", "value": address}],
        name={"formatted": "Given Family", "givenName": "Given", "familyName": "Family"},
        **{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}},
    )
    assert created["emails"] == [{"value": address, "type": "work", "primary": True}]
    assert created["displayName"] == "Given Family" and "title" not in created
    same = patch(
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": address},
        {"op": "Replace", "path": "name.givenName", "value": "Ada"},
        {"op": "Replace", "path": "active", "value": "False"},
    )
    patched = org.scim("PATCH", f"/Users/{created['id']}", same)
    assert patched.status_code == 200 and patched.json()["active"] is False, patched.text
    moved = patch({"op": "Replace", "path": 'emails[type eq "work"].value', "value": f"other@{org.domain}"})
    refused(org.scim("PATCH", f"/Users/{created['id']}", moved), 400, "mutability", "emails")
    group = org.scim(
        "POST",
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "G1", "externalId": "8aa1", "members": [{"value": created["id"]}]},
    ).json()
    removed = org.scim(
        "PATCH",
        f"/Groups/{group['id']}",
        patch({"op": "Remove", "path": "members", "value": [{"value": created["id"]}]}),
    )
    assert removed.status_code == 200 and "members" not in removed.json(), removed.text
    member = f'filter=id eq "{group["id"]}" and members[value eq "{created["id"]}"]&excludedAttributes=members'
    assert org.scim("GET", f"/Groups?{member}").json()["totalResults"] == 0
