"""The generated JSON Schemas: checked in up to date, and agreeing with the pydantic models."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from provider.errors import ManifestError
from tenancy_kinds import KINDS
from provider.manifests import load, load_text
from provider.schemas import MANIFEST_SCHEMA, OPENAPI, kind_filename, render_schemas, stale_schemas, write_schemas

from tests.builders import org, quota, subscription, team, user

from .helpers import BASE

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"


@functools.cache
def rendered() -> dict[str, str]:
    return render_schemas()  # the OpenAPI part builds the backend's app: render once per session


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(rendered()[name])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_checked_in_schemas_are_up_to_date() -> None:
    texts = rendered()
    expected = {kind_filename(k) for k in KINDS.values()} | {
        MANIFEST_SCHEMA,
        "blueprint.schema.json",
        "tenant.schema.json",
    }
    if importlib.util.find_spec("tenancy_backend.openapi") is not None:
        expected.add(OPENAPI)
    assert set(texts) == expected
    for name, text in texts.items():
        path = SCHEMAS / name
        assert path.is_file(), f"{path} is missing: run `tenancy schema`"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `tenancy schema`"
    assert stale_schemas(SCHEMAS) == []


def test_rendering_is_deterministic_and_well_formed() -> None:
    first, second = rendered(), render_schemas()
    assert first == second
    for name, text in first.items():
        assert text.endswith("}\n")
        document = json.loads(text)
        assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if name != OPENAPI:
            assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
            assert document["$id"].endswith("/" + name) and document["title"]
    assert set(json.loads(first["user.schema.json"])["properties"]) == {
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "status",
    }


def test_write_and_check_staleness(tmp_path: Path) -> None:
    assert {p for p, _ in stale_schemas(tmp_path)} == {tmp_path / n for n in render_schemas()}
    written = write_schemas(tmp_path)
    assert sorted(p.name for p in written) == sorted(render_schemas())
    assert stale_schemas(tmp_path) == []
    (tmp_path / "user.schema.json").write_text("{}\n")
    (tmp_path / "widget.schema.json").write_text("{}\n")
    assert [(p.name, why) for p, why in stale_schemas(tmp_path)] == [
        ("user.schema.json", "out of date"),
        ("widget.schema.json", "no longer generated (no such kind)"),
    ]


# --- agreement between the schemas and the models ----------------------------------------------------------


def example_documents() -> list[dict[str, Any]]:
    documents = [m.document for m in load([REPO / "examples"])]
    documents += [d for d in yaml.safe_load_all(BASE) if d]
    assert len(documents) > 60
    return documents


def _user() -> dict[str, Any]:
    return user("acme", "ada", meta={"labels": {"team": "core"}}, password={"fromEnv": "ADA_PW"})


def _org() -> dict[str, Any]:
    return org("acme", billingAddress={"name": "A", "street": "S 1", "postalCode": "1", "city": "C", "country": "DE"})


def _quota() -> dict[str, Any]:
    return quota("acme", "q")


def _subscription() -> dict[str, Any]:
    return subscription("acme", "s", customerName="C", contact={"name": "N", "email": "n@c.example"})


def _team() -> dict[str, Any]:
    return team("acme", "t", ["ada"], shares=["calendars"])


def mutate(make: Any, path: tuple[Any, ...], value: Any = "__delete__") -> dict[str, Any]:
    document = copy.deepcopy(make())
    target = document
    for step in path[:-1]:
        target = target[step]
    if value == "__delete__":
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


# Each is invalid for a reason that JSON Schema and pydantic both express.
INVALID = {
    "missing-email": mutate(_user, ("spec", "email")),
    "missing-spec": mutate(_user, ("spec",)),
    "missing-organization": mutate(_user, ("metadata", "organization")),
    "unknown-spec-field": mutate(_user, ("spec", "emial"), "x@acme.example"),
    "unknown-top-field": mutate(_user, ("extra",), 1),
    "bad-slug": mutate(_user, ("metadata", "name"), "Ada"),
    "slug-too-long": mutate(_user, ("metadata", "name"), "a" * 64),
    "bad-email": mutate(_user, ("spec", "email"), "ada-at-acme"),
    "bad-role": mutate(_user, ("spec", "role"), "admin"),
    "password-clear-text": mutate(_user, ("spec", "password"), "hunter2hunter2"),
    "password-both-sources": mutate(_user, ("spec", "password"), {"fromEnv": "A", "fromFile": "b"}),
    "password-bad-variable": mutate(_user, ("spec", "password"), {"fromEnv": "1A"}),
    "password-version-zero": mutate(_user, ("spec", "passwordVersion"), 0),
    "display-name-empty": mutate(_user, ("spec", "displayName"), ""),
    "display-name-too-long": mutate(_user, ("spec", "displayName"), "x" * 201),
    "bad-label-key": mutate(_user, ("metadata", "labels"), {"bad key": "x"}),
    "label-value-not-text": mutate(_user, ("metadata", "labels"), {"team": ["x"]}),
    "wrong-api-version": mutate(_user, ("apiVersion",), "tenancy/v2"),
    "organization-metadata-has-organization": mutate(_org, ("metadata", "organization"), "x"),
    "bad-domain": mutate(_org, ("spec", "domains"), ["acme..example"]),  # (any case is fine: DNS ignores it)
    "domains-not-a-list": mutate(_org, ("spec", "domains"), "acme.example"),
    "logo-not-https": mutate(_org, ("spec", "logoUrl"), "http://acme.example/logo.png"),
    "bad-country": mutate(_org, ("spec", "billingAddress", "country"), "Germany"),
    "bad-plan": mutate(_org, ("spec", "plan"), "gold"),
    "quota-zero": mutate(_quota, ("spec", "maxAddresses"), 0),
    "quota-not-a-number": mutate(_quota, ("spec", "maxAddresses"), "five"),
    "quota-bad-offer": mutate(_quota, ("spec", "offer"), "premium"),
    "subscription-bad-product": mutate(_subscription, ("spec", "product"), "signatures-lotus"),
    "subscription-contact-without-email": mutate(_subscription, ("spec", "contact"), {"name": "N"}),
    "subscription-bad-mode": mutate(_subscription, ("spec", "signatureModes"), ["smoke-signals"]),
    "subscription-zero-users": mutate(_subscription, ("spec", "users"), 0),
    "team-bad-share": mutate(_team, ("spec", "shares"), ["printers"]),
    "team-bad-member": mutate(_team, ("spec", "members"), ["Ada Lovelace"]),
    "team-leader-not-a-name": mutate(_team, ("spec", "leader"), 7),
}

# Invalid only without type coercion: pydantic's lax mode would turn "5" into 5; the loader validates
# strictly (as JSON Schema does), so these are compared with the loader only.
STRICT_ONLY = {
    "number-as-text": mutate(_quota, ("spec", "maxAddresses"), "5"),
    "bool-as-number": mutate(_user, ("spec", "billingRights"), 1),
    "bool-as-text": mutate(_user, ("spec", "billingReminders"), "true"),
}


def pydantic_verdict(document: dict[str, Any]) -> bool:
    kind = KINDS.get(document.get("kind"))  # type: ignore[arg-type]
    if kind is None:
        return False
    try:
        kind.document.model_validate(document)
    except Exception:  # noqa: BLE001 - pydantic's ValidationError; any failure is a "no"
        return False
    return True


def loader_verdict(document: dict[str, Any]) -> bool:
    try:
        load_text(yaml.safe_dump(document))
    except ManifestError:
        return False
    return True


def schema_verdicts(document: dict[str, Any]) -> tuple[bool, bool]:
    kind = KINDS.get(document.get("kind"))  # type: ignore[arg-type]
    per_kind = validator(kind_filename(kind)).is_valid(document) if kind else False
    return validator(MANIFEST_SCHEMA).is_valid(document), per_kind


def test_there_are_enough_invalid_documents() -> None:
    assert len(INVALID) >= 20


@pytest.mark.parametrize("document", example_documents(), ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_valid_documents_agree(document: dict[str, Any]) -> None:
    assert schema_verdicts(document) == (True, True)
    assert pydantic_verdict(document) and loader_verdict(document)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_documents_agree(name: str) -> None:
    document = INVALID[name]
    assert schema_verdicts(document) == (False, False)
    assert not pydantic_verdict(document)
    assert not loader_verdict(document)


@pytest.mark.parametrize("name", sorted(STRICT_ONLY))
def test_strict_loader_agrees_with_schemas_on_types(name: str) -> None:
    document = STRICT_ONLY[name]
    assert schema_verdicts(document) == (False, False)
    assert not loader_verdict(document)


def test_valid_base_documents_are_valid_before_mutation() -> None:
    for make in (_user, _org, _quota, _subscription, _team):
        document = make()
        assert schema_verdicts(document) == (True, True) and pydantic_verdict(document) and loader_verdict(document)


def test_manifest_schema_rejects_unknown_kind() -> None:
    document = _user()
    document["kind"] = "Usr"
    assert not validator(MANIFEST_SCHEMA).is_valid(document)
