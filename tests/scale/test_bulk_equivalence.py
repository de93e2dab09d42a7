"""The bulk paths decide exactly what the per-resource paths decide, on random manifests.

- live state: one `export()` versus per-kind paginated `items()` calls → the same plan;
- apply: ready changes batched into changesets versus one change at a time → the same backend state
  and the same (empty) next plan, for a first apply and for an edit that updates and deletes.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider import manifests
from provider.apply import apply
from provider.client import Client
from provider.connect import connect
from tenancy_kinds import KINDS
from provider.costs import Prices
from provider.plan import Plan, plan
from provider.render import as_json
from tests.builders import document

STACK = "prop"
SERVER_SET = ("uid", "resourceVersion", "createdAt", "updatedAt")
_databases = itertools.count()


@st.composite
def organizations(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    org, domain = f"org{index}", f"org{index}.example"
    users = draw(st.integers(1, 6))
    docs: list[dict[str, Any]] = [
        document("Organization", org, None, displayName=f"Org {index} {draw(st.sampled_from(['a', 'b']))}",
             plan=draw(st.sampled_from(["entry", "pro"])), domains=[domain]),
        document("MailboxQuota", "main", org, domain=domain, maxAddresses=draw(st.integers(users + 5, users + 8))),
    ]
    names = [f"user{u}" for u in range(users)]
    for u, name in enumerate(names):
        docs.append(document("User", name, org, email=f"{name}@{domain}", displayName=draw(st.sampled_from(["A", "B"])),
                         role="administrator" if u == 0 else draw(st.sampled_from(["collaborator", "external"])),
                         subscription=draw(st.sampled_from(["free", "entry", "pro"]))))
    for t in range(draw(st.integers(0, 2))):
        members = draw(st.lists(st.sampled_from(names), min_size=1, max_size=users, unique=True))
        docs.append(document("Team", f"team{t}", org, displayName=f"Team {t}", members=members,
                         leader=draw(st.sampled_from(members))))
    for a in range(draw(st.integers(0, 2))):
        docs.append(document("Alias", f"alias{a}", org, address=f"alias{a}@{domain}",
                                 user=draw(st.sampled_from(names))))
    if draw(st.booleans()):
        docs.append(document("CustomerSubscription", "sub", org, product="signatures-google-workspace",
                         customerName="Customer", users=draw(st.integers(1, 50))))
    return docs


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A first manifest set and an edit of it (organizations dropped or redrawn)."""
    count = draw(st.integers(1, 3))
    first = [draw(organizations(i)) for i in range(count)]
    second = [docs if draw(st.booleans()) else draw(organizations(i)) for i, docs in enumerate(first)]
    kept = [docs for docs in second if draw(st.integers(0, 4)) > 0] or second[:1]
    return [d for docs in first for d in docs], [d for docs in kept for d in docs]


def _desired(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents as the loader gives them (validated, normalised)."""
    text = yaml.safe_dump_all(documents, sort_keys=False)
    return [m.document for m in manifests.load_text(text).manifests]


def _per_resource_live(client: Client) -> list[dict[str, Any]]:
    """What a per-resource provider reads: every kind's paginated list, organization by organization."""
    organizations = list(client.items("Organization"))
    live = list(organizations)
    for org in organizations:
        for kind in KINDS.values():
            if kind.scoped:
                live += client.items(kind.name, org["metadata"]["name"])
    return live


def _plan(desired: list[dict[str, Any]], live: list[dict[str, Any]]) -> Plan:
    return plan(desired, live, stack=STACK, prices=Prices.of())  # in apply order


def _state(client: Client) -> list[Any]:
    """The backend's resources without what differs by construction (ids, versions, dates)."""
    out = []
    for doc in client.export():
        meta = {k: v for k, v in doc["metadata"].items() if k not in SERVER_SET}
        status = {k: v for k, v in (doc.get("status") or {}).items() if k not in ("subscriptionId", "trialEndsAt")}
        out.append({**doc, "metadata": meta, "status": status})
    return sorted(out, key=lambda d: (d["kind"], d["metadata"].get("organization", ""), d["metadata"]["name"]))


def _converge(client: Client, desired: list[dict[str, Any]], batch_size: int) -> None:
    result = _plan(desired, client.export())
    report = apply(result, client, parallelism=1 if batch_size == 1 else 4, batch_size=batch_size)
    assert report.ok, report.summary


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fleet=fleets())
def test_bulk_paths_equal_per_resource_paths(
    tmp_path: Path, fleet: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    first, second = (_desired(docs) for docs in fleet)
    n = next(_databases)
    batched = connect(f"sqlite:///{tmp_path / f'batched-{n}.db'}")
    single = connect(f"sqlite:///{tmp_path / f'single-{n}.db'}")
    try:
        for desired in (first, second):
            assert as_json(_plan(desired, batched.export())) == as_json(_plan(desired, _per_resource_live(batched)))
            _converge(batched, desired, batch_size=50)
            _converge(single, desired, batch_size=1)
            assert _state(batched) == _state(single)
            for client in (batched, single):
                assert not _plan(desired, client.export()).has_changes
                assert not _plan(desired, _per_resource_live(client)).has_changes
    finally:
        batched.close()
        single.close()
