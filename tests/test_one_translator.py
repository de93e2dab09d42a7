"""One translator of pydantic errors: the same mistake gets the same words from `tenancy validate`, from
the backend's `/v1` and from Pulumi's `check()` (tenancy_kinds.messages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provider import manifests
from provider.errors import ManifestError
from provider.pulumi import properties
from tenancy_backend.errors import ServiceError
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tenancy_kinds import KINDS

MISTAKES = {  # a document's spec with one mistake, the path it is about, and the Pulumi property
    "unknown field": ({"email": "kim@acme.example", "displayName": "Kim", "colour": "blue"}, "spec.colour", "colour"),
    "bad enum": ({"email": "kim@acme.example", "displayName": "Kim", "role": "owner"}, "spec.role", "role"),
    "missing": ({"displayName": "Kim"}, "spec.email", "email"),
    "too small": ({"email": "kim@acme.example", "displayName": "Kim", "passwordVersion": 0}, "spec.passwordVersion",
                  "password_version"),
    "wrong type": ({"email": "kim@acme.example", "displayName": "Kim", "billingRights": "yes"}, "spec.billingRights",
                   "billing_rights"),
}


def _document(spec: dict) -> dict:
    return {
        "apiVersion": "tenancy/v1",
        "kind": "User",
        "metadata": {"name": "kim", "organization": "acme"},
        "spec": spec,
    }


def _manifest_words(tmp_path: Path, spec: dict, path: str) -> str:
    (tmp_path / "m.yaml").write_text(json.dumps(_document(spec)))
    with pytest.raises(ManifestError) as raised:
        manifests.load([tmp_path / "m.yaml"])
    [finding] = [f for f in raised.value.findings if f.field == path]
    return finding.message


def _backend_words(spec: dict, path: str, tmp_path: Path) -> str:
    service = Service(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        service.create(
            Scope.root(),
            "Organization",
            None,
            {
                "apiVersion": "tenancy/v1",
                "kind": "Organization",
                "metadata": {"name": "acme"},
                "spec": {"displayName": "Acme", "plan": "entry", "domains": ["acme.example"]},
            },
        )
        with pytest.raises(ServiceError) as raised:
            service.create(Scope.root(), "User", "acme", _document(spec))
    finally:
        service.close()
    [error] = [e for e in raised.value.errors if e["path"] == path]
    return error["message"]


def _pulumi_words(spec: dict, prop: str) -> str:
    snake = {"displayName": "display_name", "passwordVersion": "password_version", "billingRights": "billing_rights"}
    props = {"name": "kim", "organization": "acme", **{snake.get(k, k): v for k, v in spec.items()}}
    failures = dict((f.property, f.reason) for f in properties.check(KINDS["User"], props))
    return failures[prop]


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_one_mistake_one_wording(mistake: str, tmp_path: Path) -> None:
    spec, path, prop = MISTAKES[mistake]
    manifest = _manifest_words(tmp_path, spec, path)
    pulumi = _pulumi_words(spec, prop)
    backend = _backend_words(spec, path, tmp_path)
    # The manifest's message is said after its place ("spec: required field 'email' ..."); the text is one.
    assert manifest.endswith(pulumi), (manifest, pulumi)
    assert backend == pulumi, (backend, pulumi)
