"""One verdict for one document: the offline rules and the backend's service layer judge alike.

Hypothesis draws single documents of every kind, valid and invalid (bad values, unknown fields, wrong
types, broken references, taken unique values, domains not owned, the rules one resource can break on its
own), to be added to the same small world: a paid organization `acme` owning acme.example, with its
administrator `boss`. The offline judge is `tenancy validate`'s (the manifests' reader and the rules, over
the world's manifests plus the document); the backend's is `Service.create` on a database holding the
world, on SQLite and on PostgreSQL. Both must accept, or both refuse with a finding on the same path: a
rule written twice and drifting apart, or a rule only one side knows, fails this test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from provider import manifests, rules
from provider.errors import ManifestError, Severity
from tenancy_backend.errors import ServiceError
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tenancy_kinds import KINDS

from tests import builders
from tests.builders import STRONG_PASSWORD, org, user

ROOT = Scope.root(legal_representative=True)  # the embedded backend's rights: every rule but the token's
EXAMPLES = int(os.environ.get("TENANCY_DIFFERENTIAL_EXAMPLES", "200"))
OTHER_STRONG = "Zr5!kWq9#mTx2vLp"
WEAK = "Password123!"

WORLD: list[dict[str, Any]] = [org("acme"), user("acme", "boss", role="administrator")]


_ABSENT = object()  # a field left out


Spec = tuple[str, list[str], "str | None", dict[str, list[Any]], dict[str, list[Any]]]


def _spec(kind: str, names: list[str], organization: str | None, good: dict[str, list[Any]],
          bad: dict[str, list[Any]]) -> Spec:
    return (kind, names, organization, good, bad)


@st.composite
def _documents(
    draw: st.DrawFn,
    kind: str,
    names: list[str],
    organization: str | None,
    good: dict[str, list[Any]],
    bad: dict[str, list[Any]],
) -> dict[str, Any]:
    """A document of `kind`: every field drawn from values its rules accept, then none, one or two of them
    swapped for values some rule refuses (or left out)."""
    spec: dict[str, Any] = {}
    for field, values in good.items():
        value = draw(st.sampled_from(values))
        if value is not _ABSENT:
            spec[field] = value
    broken = draw(st.lists(st.sampled_from(sorted(bad)), max_size=2, unique=True))
    if draw(st.booleans()):
        broken = []  # about half the documents are meant to be valid (the world may still refuse them)
    for field in broken:
        value = draw(st.sampled_from(bad[field]))
        if value is _ABSENT:
            spec.pop(field, None)
        else:
            spec[field] = value
    return builders.document(kind, draw(st.sampled_from(names)), organization, spec)


def _organizations() -> Spec:
    good = {
        "displayName": ["Newco"],
        "type": [_ABSENT, "standard", "custom"],
        "charset": [_ABSENT, "UTF-8"],
        "parent": [_ABSENT, None, "acme"],
        "domains": [["newco.example"], ["NEWCO.example", "shop.example"], []],
        "plan": [_ABSENT, "free", "entry", "pro"],
    }
    bad = {
        "displayName": ["Acme", "", _ABSENT],
        "charset": ["ISO-8859-1"],
        "parent": ["newco", "ghost"],
        "domains": [["acme.example"], ["newco.example", "NEWCO.example"], ["bad..example"], "newco.example"],
        "plan": ["gold"],
        "colour": ["blue"],
    }
    return _spec("Organization", ["newco", "newco", "acme"], None, good, bad)


def _payable(document: dict[str, Any]) -> dict[str, Any]:
    """A paid organization with a domain of its own (its administrator lives there); else a free one."""
    spec = document["spec"]
    if KINDS[document["kind"]].scoped:
        return document
    domains = spec.get("domains")
    if not isinstance(domains, list) or not any(isinstance(d, str) and ".." not in d for d in domains):
        return {**document, "spec": {**spec, "plan": "free"}}
    return document


def _users() -> Spec:
    good = {
        "email": ["kim@acme.example", "KIM@Acme.example"],
        "displayName": ["Kim"],
        "role": [_ABSENT, "collaborator", "administrator", "legal-representative"],
        "subscription": [_ABSENT, "free", "entry", "pro"],
        "billingRights": [_ABSENT, True, False],
        "passwordVersion": [_ABSENT, 1, 2],
        "password": [_ABSENT, STRONG_PASSWORD],
    }
    bad = {
        "email": ["boss@acme.example", "BOSS@acme.example", "kim@elsewhere.example", "not-an-address", _ABSENT],
        "displayName": ["", _ABSENT],
        "role": ["owner"],
        "billingRights": ["yes"],
        "passwordVersion": [0, "1"],
        "password": [WEAK],
        "colour": ["blue"],
    }
    return _spec("User", ["kim", "kim", "boss"], "acme", good, bad)


def _teams() -> Spec:
    good = {
        "displayName": ["Sales"],
        "members": [[], ["boss"]],
        "leader": [_ABSENT, None],
        "shares": [_ABSENT, ["calendars"], ["documents", "calendars"]],
        "externalMembers": [_ABSENT, ["pat@partner.example"]],
        "description": [_ABSENT, "The sales team"],
    }
    bad = {
        "members": [["boss", "ghost"], ["boss", "boss"]],
        "leader": ["ghost", "kim"],
        "shares": [["printers"], ["calendars", "calendars"]],
        "externalMembers": [["nobody"]],
        "description": [7],
        "displayName": [_ABSENT],
    }
    return _spec("Team", ["sales"], "acme", good, bad)


def _quotas() -> Spec:
    good = {
        "domain": ["acme.example", "ACME.example"],
        "offer": [_ABSENT, "starter", "standard"],
        "maxAddresses": [5, 10],
    }
    bad = {"domain": ["other.example", _ABSENT], "offer": ["premium"], "maxAddresses": [0, 3, "5"], "colour": ["blue"]}
    return _spec("MailboxQuota", ["main"], "acme", good, bad)


def _aliases() -> Spec:
    good = {"address": ["info@acme.example", "INFO@acme.example"], "user": ["boss"]}
    bad = {"address": ["BOSS@acme.example", "info@elsewhere.example", _ABSENT], "user": ["ghost", _ABSENT]}
    return _spec("Alias", ["info"], "acme", good, bad)


def _subscriptions() -> Spec:
    good = {
        "product": ["signatures-microsoft-365", "signatures-google-workspace"],
        "customerName": ["Customer Ltd"],
        "users": [_ABSENT, 1, 25],
        "customerCanEditSignatures": [_ABSENT, False],
        "contact": [_ABSENT, {"name": "Pat", "email": "pat@customer.example"}],
        "signatureModes": [_ABSENT, ["server-side"], ["client-side", "server-side"]],
        "state": [_ABSENT, "active", "archived"],
    }
    bad = {
        "product": ["fax", _ABSENT],
        "customerName": [""],
        "users": [0],
        "customerCanEditSignatures": [True],
        "contact": [{"name": "Pat"}],
        "signatureModes": [["server-side", "exchange-on-premises"], ["server-side", "server-side"]],
    }
    return _spec("CustomerSubscription", ["sigs"], "acme", good, bad)


SPECS = [_organizations(), _users(), _teams(), _quotas(), _aliases(), _subscriptions()]
DOCUMENTS = st.one_of([_documents(*spec).map(_payable) for spec in SPECS])


def _sweep() -> list[dict[str, Any]]:
    """Every kind's plain document, and each bad value of each field alone in it: each rule met at least once,
    whatever the random draws do."""
    out = []
    for kind, names, organization, good, bad in SPECS:
        plain = {f: next(v for v in values if v is not _ABSENT) for f, values in good.items()}
        out.append(_payable(builders.document(kind, names[0], organization, dict(plain))))
        for field, values in bad.items():
            for value in values:
                spec = {k: v for k, v in plain.items() if k != field}
                if value is not _ABSENT:
                    spec[field] = value
                out.append(_payable(builders.document(kind, names[0], organization, spec)))
        for name in dict.fromkeys(names[1:]):
            out.append(_payable(builders.document(kind, name, organization, dict(plain))))
    return out


# --- the two judges -------------------------------------------------------------------------------------


def _admin_for(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A new paid organization declared in a manifest set needs its administrator there (a set rule the
    backend cannot have: it holds the organization before its users); the set gets one, on its domain."""
    spec = document["spec"]
    if (
        document["kind"] != "Organization"
        or spec.get("plan", "free") == "free"
        or document["metadata"]["name"] == "acme"
    ):
        return []
    domain = next(d for d in spec["domains"] if ".." not in d)
    return [
        builders.document(
            "User",
            "chief",
            document["metadata"]["name"],
            {"email": f"chief@{domain}", "displayName": "Chief", "role": "administrator"},
        )
    ]


def _offline(document: dict[str, Any], tmp_path: Path) -> set[str] | None:
    """The paths `tenancy validate` finds errors on in the document's own file; None when it accepts."""
    directory = tmp_path / "set"
    directory.mkdir(exist_ok=True)
    env = {}
    manifest = json.loads(json.dumps(document))
    password = manifest["spec"].get("password")
    if isinstance(password, str):
        manifest["spec"]["password"] = {"fromEnv": "NEW_PASSWORD"}
        env["NEW_PASSWORD"] = password
    (directory / "0-world.yaml").write_text("\n---\n".join(json.dumps(d) for d in WORLD + _admin_for(document)))
    (directory / "1-new.yaml").write_text(json.dumps(manifest))
    try:
        manifest_set = manifests.load([directory])
    except ManifestError as e:
        found = e.findings
    else:
        found = rules.check(manifest_set, env=env)
    errors = [f for f in found if f.severity is Severity.ERROR]
    assert all(f.file.endswith("1-new.yaml") for f in errors), "the world itself is valid:\n" + "\n".join(
        map(str, errors)
    )
    return {f.field for f in errors} or None


def _backend(service: Service, document: dict[str, Any]) -> set[str] | None:
    """The paths the service refuses the document on; None when it accepts it (and then it is removed)."""
    kind, meta = document["kind"], document.get("metadata") or {}
    organization = meta.get("organization")
    try:
        service.create(ROOT, kind, organization, json.loads(json.dumps(document)))
    except ServiceError as e:
        return {err["path"] for err in e.errors} or {""}
    return None


def _world(service: Service) -> None:
    for document in WORLD:
        meta = document["metadata"]
        service.create(ROOT, document["kind"], meta.get("organization"), json.loads(json.dumps(document)))


@pytest.fixture
def world_service(service: Service) -> Service:
    _world(service)
    return service


def test_the_offline_rules_and_the_backend_give_one_verdict(world_service: Service, tmp_path: Path) -> None:
    seen = {"accepted": 0, "refused": 0}

    for document in _sweep():
        _judge_alike(world_service, tmp_path, document, seen)

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow],
    )
    @hypothesis.given(DOCUMENTS)
    def judge_alike(document: dict[str, Any]) -> None:
        _judge_alike(world_service, tmp_path, document, seen)

    judge_alike()
    # Both verdicts must have been met often enough to mean something.
    assert seen["accepted"] >= EXAMPLES // 10 and seen["refused"] >= EXAMPLES // 3, seen


def _judge_alike(world_service: Service, tmp_path: Path, document: dict[str, Any], seen: dict[str, int]) -> None:
    """Both judges on one document: the same verdict, and a refusal on a common path."""
    offline = _offline(document, tmp_path)
    backend = _backend(world_service, document)
    if backend is None:  # accepted: take it away again, so that the next example meets the same world
        _remove(world_service, document)
    described = json.dumps(document, sort_keys=True)
    if offline is None or backend is None:
        assert offline is None and backend is None, (
            f"offline {'accepts' if offline is None else 'refuses at ' + str(sorted(offline))}, backend "
            f"{'accepts' if backend is None else 'refuses at ' + str(sorted(backend))}: {described}"
        )
        seen["accepted"] += 1
        return
    assert offline & backend, f"offline refuses at {sorted(offline)}, backend at {sorted(backend)}: {described}"
    seen["refused"] += 1


def _remove(service: Service, document: dict[str, Any]) -> None:
    meta = document["metadata"]
    kind = document["kind"]
    if KINDS[kind].archive is not None:  # deleting one archives it: the row itself goes with a reset
        from tests.support import reset_database

        reset_database(service.db_url)
        _world(service)
        return
    service.delete(ROOT, kind, meta.get("organization"), meta["name"])
