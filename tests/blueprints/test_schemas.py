"""The published JSON Schemas know Blueprint and Tenant: an editor completes and checks a blueprint's
resources as the documents of their kinds, with expressions allowed wherever a value goes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "reseller-onboarding"


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "schemas" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def example_blueprint() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EXAMPLE / "small-business.yaml").read_text())
    return document


@pytest.mark.parametrize("name", ["manifest.schema.json", "blueprint.schema.json"])
def test_the_example_blueprint_is_valid_and_its_mistakes_are_not(name: str) -> None:
    check = validator(name)
    good = example_blueprint()
    assert list(check.iter_errors(good)) == []
    misspelled = copy.deepcopy(good)
    misspelled["spec"]["resources"][0]["spec"]["plann"] = "entry"
    wrong_value = copy.deepcopy(good)
    wrong_value["spec"]["resources"][0]["spec"]["plan"] = "gold"
    expression = copy.deepcopy(good)
    expression["spec"]["resources"][0]["spec"]["plan"] = "${params.plan}"
    unknown_kind = copy.deepcopy(good)
    unknown_kind["spec"]["resources"][0]["kind"] = "Usr"
    verdicts = [check.is_valid(d) for d in (misspelled, wrong_value, expression, unknown_kind)]
    assert verdicts == [False, False, True, False]


@pytest.mark.parametrize("file", sorted((EXAMPLE / "tenants").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_example_tenants_are_valid(file: Path) -> None:
    document = yaml.safe_load(file.read_text())
    assert validator("manifest.schema.json").is_valid(document) and validator("tenant.schema.json").is_valid(document)
    document["spec"]["blueprnt"] = document["spec"].pop("blueprint")
    assert not validator("tenant.schema.json").is_valid(document)
