"""The pure parts of the SCIM server: names derived from logins, defaults of a request, the display name
rule, and which filters an index can answer."""

from __future__ import annotations

import pytest
from scim2_models import Context, SearchRequest

from tenancy_backend.scim.mapping import (
    slug,
    user_document,
    user_resource,
    with_user_defaults,
)
from tenancy_backend.scim.models import User
from tenancy_backend.scim.queries import Narrowing, narrowing


@pytest.mark.parametrize(("login", "name"), [
    ("ada.lovelace@acme.example", "ada-lovelace"),
    ("Grace Hopper", "grace-hopper"),
    ("Zoë_Ünal", "zoe-unal"),
    ("---", "user"),
    ("x" * 80, "x" * 63),
    ("0" * 62 + "-y", "0" * 62),
])
def test_resource_names_are_slugs_of_the_login(login: str, name: str) -> None:
    assert slug(login, "user") == name


def test_a_request_gets_what_a_tenancy_user_always_has() -> None:
    filled = with_user_defaults({"userName": "ada@acme.example", "NAME": {"formatted": "Ada L"}})
    assert filled["displayName"] == "Ada L" and filled["active"] is True
    assert filled["emails"] == [{"value": "ada@acme.example", "primary": True}]
    assert "emails" not in with_user_defaults({"userName": "ada"})  # no address: the model refuses it
    assert with_user_defaults({"userName": "ada", "Active": False})["Active"] is False
    assert with_user_defaults([1]) == [1]


def test_display_name_and_name_formatted_are_one_field() -> None:
    document = {"apiVersion": "tenancy/v1", "kind": "User",
                "metadata": {"name": "ada", "organization": "acme", "uid": "u-1", "resourceVersion": "3",
                             "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"},
                "spec": {"email": "ada@acme.example", "username": "ada", "displayName": "Ada", "active": True},
                "status": {"mailbox": True}}
    from tenancy_backend.scim.mapping import Place

    stored = user_resource(document, Place("https://h/scim/v2/acme"))
    renamed = stored.model_copy(deep=True)
    assert renamed.name is not None
    renamed.name.formatted = "Ada Lovelace"
    written = user_document(renamed, "acme", [], current=document, before=stored)
    assert written.document["spec"]["displayName"] == "Ada Lovelace"
    both = renamed.model_copy(update={"display_name": "A. L."})
    assert user_document(both, "acme", [], current=document, before=stored).document["spec"]["displayName"] == "A. L."


def _search(expression: str) -> SearchRequest[User]:
    return SearchRequest[User].model_validate({"filter": expression}, scim_ctx=Context.SEARCH_REQUEST)


def test_lookups_by_username_address_or_id_use_an_index_and_nothing_else_does() -> None:
    assert narrowing(_search('userName eq "Ada@acme.example"')) == Narrowing(unique=(("username", "Ada@acme.example"),))
    assert narrowing(_search('emails.value eq "a@b.example" and active eq true')) == Narrowing(
        unique=(("email", "a@b.example"),))
    assert narrowing(_search('urn:ietf:params:scim:schemas:core:2.0:User:id eq "u-1"')) == Narrowing(uids=("u-1",))
    for expression in ('userName eq "a" or userName eq "b"', 'userName co "a"', 'displayName eq "A"',
                       'userName eq "zoë"', 'not (userName eq "a")'):
        assert narrowing(_search(expression)) is None, expression
