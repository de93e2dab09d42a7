"""Synthetic tenants for benchmarks and smoke tests: ~100 resources per organization, all valid."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

USERS_PER_ORG = 85
TEAMS_PER_ORG = 8
ALIASES_PER_ORG = 4
SUBSCRIPTIONS_PER_ORG = 1
PER_ORG = 1 + 1 + USERS_PER_ORG + TEAMS_PER_ORG + ALIASES_PER_ORG + SUBSCRIPTIONS_PER_ORG  # = 100


def organization_documents(i: int, edited: bool = False) -> list[dict[str, Any]]:
    org, domain = f"org{i:05d}", f"org{i:05d}.example"
    docs: list[dict[str, Any]] = [
        _doc("Organization", None, org, displayName=f"Organization {i}", plan="pro", domains=[domain]),
        _doc("MailboxQuota", org, "main", domain=domain, offer="standard", maxAddresses=USERS_PER_ORG + 15),
    ]
    for u in range(USERS_PER_ORG):
        name = f"user{u:03d}"
        display = f"User {u} of {i}" + (" (edited)" if edited and u == 0 else "")
        docs.append(_doc("User", org, name, email=f"{name}@{domain}", displayName=display,
                         role="administrator" if u < 3 else "collaborator",
                         subscription=("free", "entry", "pro")[u % 3]))
    for t in range(TEAMS_PER_ORG):
        members = [f"user{u:03d}" for u in range(t * 10, t * 10 + 10)]
        docs.append(_doc("Team", org, f"team{t}", displayName=f"Team {t}", members=members, leader=members[0],
                         shares=["calendars", "documents"]))
    for a in range(ALIASES_PER_ORG):
        docs.append(_doc("Alias", org, f"alias{a}", address=f"alias{a}@{domain}", user=f"user{a:03d}"))
    for s in range(SUBSCRIPTIONS_PER_ORG):
        docs.append(_doc("CustomerSubscription", org, f"sub{s}", product="signatures-microsoft-365",
                         customerName=f"Customer {i}-{s}", users=25))
    return docs


def _doc(kind: str, organization: str | None, name: str, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if organization:
        metadata["organization"] = organization
    return {"apiVersion": "tenancy/v1", "kind": kind, "metadata": metadata, "spec": spec}


def write_manifests(directory: Path, organizations: int, edit_every: int = 0) -> None:
    """One file per organization; with edit_every=k, every k-th organization has one user edited."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / "tenancy.yaml").write_text("stack: bench\n")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for i in range(organizations):
        edited = bool(edit_every) and i % edit_every == 0
        text = yaml.dump_all(organization_documents(i, edited), Dumper=dumper, sort_keys=False)
        (directory / f"org{i:05d}.yaml").write_text(text)
