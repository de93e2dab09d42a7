"""Convergence: random valid manifest sets and random edits to them → apply → the next plan is empty."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider import engine
from provider.apply import apply
from provider.embedded import EmbeddedClient
from tests.builders import document

ORGS = ["north", "south"]


@st.composite
def tenant_set(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for org in ORGS[: draw(st.integers(1, len(ORGS)))]:
        domain = f"{org}.example"
        docs.append(document("Organization", org, None, displayName=org.title(),
                         plan=draw(st.sampled_from(["entry", "pro"])), domains=[domain]))
        names = [f"u{i}" for i in range(draw(st.integers(1, 6)))]
        for i, name in enumerate(names):
            external = i > 0 and draw(st.booleans()) and draw(st.booleans())
            suffix = draw(st.sampled_from(['', '.x']))
            email = f"{name}.{org}{suffix}@partner.example" if external else f"{name}{suffix}@{domain}"
            role = (
                "administrator"
                if i == 0
                else "external"
                if external
                else draw(st.sampled_from(["collaborator", "administrator"]))
            )
            docs.append(
                document(
                    "User",
                    name,
                    org,
                    email=email,
                    displayName=name.upper(),
                    role=role,
                    subscription=draw(st.sampled_from(["free", "entry", "pro"])),
                )
            )
        for t in range(draw(st.integers(0, 2))):
            members = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
            leader = draw(st.sampled_from(members)) if members and draw(st.booleans()) else None
            docs.append(
                document(
                    "Team",
                    f"team{t}",
                    org,
                    displayName=f"Team {t}",
                    members=members,
                    **({} if leader is None else {"leader": leader}),
                    shares=draw(st.lists(st.sampled_from(["calendars", "documents"]), unique=True)),
                )
            )
        for a in range(draw(st.integers(0, 2))):
            docs.append(
                document("Alias", f"alias{a}", org, address=f"alias{a}@{domain}", user=draw(st.sampled_from(names)))
            )
        if draw(st.booleans()):
            used = sum(
                1
                for d in docs
                if d["kind"] == "User" and d["metadata"]["organization"] == org and d["spec"]["role"] != "external"
            )
            docs.append(
                document(
                    "MailboxQuota", "quota", org, domain=domain, maxAddresses=max(5, used + draw(st.integers(0, 3)))
                )
            )
    return docs


def _write(directory: Path, docs: list[dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tenants.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    (directory / "tenancy.yaml").write_text("stack: prop\n")


def _converge(client: EmbeddedClient, directory: Path) -> None:
    prepared = engine.prepare([str(directory)], client, "embedded", stack_option=None)
    report = apply(prepared.plan, client, parallelism=4)
    failures = [f"{o.op.key}: {o.message}" for o in report.outcomes if o.status.value != "applied"]
    assert report.ok, failures
    again = engine.prepare([str(directory)], client, "embedded", stack_option=None)
    assert not again.plan.has_changes, [str(op.key) + " " + str(op.diffs) for op in again.plan.operations]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=tenant_set(), second=tenant_set())
def test_apply_then_edit_then_apply_converges(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client = EmbeddedClient(f"sqlite:///{tmp}/tenancy.db")
        try:
            _write(Path(tmp) / "m", first)
            _converge(client, Path(tmp) / "m")
            _write(Path(tmp) / "m", second)
            _converge(client, Path(tmp) / "m")
        finally:
            client.close()


# --- unique values changing hands ----------------------------------------------------------------------
#
# Every kind that holds a claim (an organization's domains and its display name among siblings, a user's
# or an alias's address, a quota's domain) hands a value to another resource: one apply must do it (the
# order reads the claims of the table of kinds), and the next plan is empty.

MOVES = ("display-name", "domain", "user-to-alias", "alias-to-user", "across-organizations", "replace-takes-alias")


def _world(moved: frozenset[str], after: bool) -> list[dict[str, Any]]:
    def org(name: str, display: str, domains: list[str]) -> dict[str, Any]:
        return document("Organization", name, None, displayName=display, plan="entry", domains=domains)

    north_domains = ["north.example"] + ([] if after and "domain" in moved else ["shared.example"])
    south_domains = ["south.example"] + (["shared.example"] if after and "domain" in moved else [])
    north_name = "Northwind" if after and "display-name" in moved else "North"
    south_name = "North" if after and "display-name" in moved else "South"
    docs = [
        org("north", north_name, north_domains),
        org("south", south_name, south_domains),
        document("User", "boss", "north", email="boss@north.example", displayName="Boss", role="administrator"),
        document("User", "chief", "south", email="chief@south.example", displayName="Chief", role="administrator"),
    ]
    shared_owner = "south" if after and "domain" in moved else "north"
    docs.append(
        document(
            "Alias",
            "sales",
            shared_owner,
            address="sales@shared.example",
            user="boss" if shared_owner == "north" else "chief",
        )
    )
    docs.append(document("MailboxQuota", "shared", shared_owner, domain="shared.example", maxAddresses=5))
    # an address from a user to an alias, and from an alias to a user, in one organization
    if after and "user-to-alias" in moved:
        docs.append(document("Alias", "help", "north", address="help@north.example", user="boss"))
    else:
        docs.append(document("User", "help", "north", email="help@north.example", displayName="Help"))
    if after and "alias-to-user" in moved:
        docs.append(document("User", "desk", "north", email="desk@north.example", displayName="Desk"))
    else:
        docs.append(document("Alias", "desk", "north", address="desk@north.example", user="boss"))
    # an external address moving to the other organization
    holder = "south" if after and "across-organizations" in moved else "north"
    docs.append(document("User", "pat", holder, email="pat@partner.example", displayName="Pat", role="external"))
    # a user replaced onto the address an alias gives up
    if after and "replace-takes-alias" in moved:
        docs.append(document("User", "lee", "south", email="office@south.example", displayName="Lee"))
    else:
        docs.append(document("User", "lee", "south", email="lee@south.example", displayName="Lee"))
        docs.append(document("Alias", "office", "south", address="office@south.example", user="chief"))
    return docs


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moved=st.frozensets(st.sampled_from(MOVES), min_size=1))
def test_unique_values_change_hands_in_one_apply(moved: frozenset[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client = EmbeddedClient(f"sqlite:///{tmp}/tenancy.db")
        try:
            _write(Path(tmp) / "m", _world(moved, after=False))
            _converge(client, Path(tmp) / "m")
            _write(Path(tmp) / "m", _world(moved, after=True))
            _converge(client, Path(tmp) / "m")
        finally:
            client.close()
