"""The tenant tree the security tests attack, and the tokens that look at it.

    mx-p                      (top level)
    ├── mx-t   ← the target   (child of mx-p)
    │   └── mx-c              (child of mx-t)
    └── mx-s                  (sibling of mx-t)
    mx-o                      (another top-level tenant)

Each organization holds one resource of every kind, and its documents carry marker strings (display
names, a customer name, a description) that must never reach a token outside its subtree.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from tenancy_kinds import KINDS
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service
from tests.builders import STRONG_PASSWORD, document

PARENTS = {"mx-p": None, "mx-t": "mx-p", "mx-c": "mx-t", "mx-s": "mx-p", "mx-o": None}
TARGET = "mx-t"
STRONG = STRONG_PASSWORD

# How each token relates to the target, and which organization it is scoped to.
SCOPE_ORG = {"own": "mx-t", "parent": "mx-p", "sibling": "mx-s", "child": "mx-c", "other": "mx-o", "root": None}
ALLOWED = ("own", "parent", "root")
HIDDEN = ("sibling", "child", "other")
UNAUTHENTICATED = ("revoked", "expired", "garbage", "missing", "malformed")
SCOPES = ALLOWED + HIDDEN + UNAUTHENTICATED


def contents(o: str, marker: str, extra_domains: list[str]) -> list[dict[str, Any]]:
    domain = f"{o}.example"
    return [
        document("Organization", o, None, displayName=f"Org {marker}", parent=PARENTS.get(o), plan="pro",
            domains=[domain, *extra_domains]),
        document("User", "u1", o, email=f"u1@{domain}", displayName=f"Person {marker}", role="administrator",
            password=STRONG + o[-1]),
        document("Team", "t1", o, displayName=f"Team {marker}", description=f"about {marker}", members=["u1"]),
        document("MailboxQuota", "q1", o, domain=domain, maxAddresses=50),
        document("Alias", "a1", o, address=f"a1@{domain}", user="u1"),
        document("CustomerSubscription", "s1", o, product="signatures-microsoft-365",
                 customerName=f"Customer {marker}"),
    ]


def fresh(kind: str, name: str, scope: str) -> dict[str, Any]:
    """A new resource of `kind` in the target, unique to `scope` (for creates and deletes)."""
    t = TARGET
    by_kind = {
        "Organization": document("Organization", f"{name}-{scope}", None, displayName=f"{name} {scope}", parent=t,
                            domains=[]),
        "User": document("User", f"{name}-{scope}", t, email=f"{name}-{scope}@{t}.example",
                         displayName=f"{name} {scope}"),
        "Team": document("Team", f"{name}-{scope}", t, displayName=f"{name} {scope}", members=["u1"]),
        "MailboxQuota": document("MailboxQuota", f"{name}-{scope}", t, domain=f"{name}-{scope}.{t}.example",
                            maxAddresses=5),
        "Alias": document("Alias", f"{name}-{scope}", t, address=f"{name}-{scope}-alias@{t}.example", user="u1"),
        "CustomerSubscription": document("CustomerSubscription", f"{name}-{scope}", t,
                                    product="signatures-google-workspace", customerName=f"{name} {scope}"),
    }
    return by_kind[kind]


def quota_domains() -> list[str]:
    return [f"{name}-{scope}.{TARGET}.example" for name in ("new", "del", "cs") for scope in SCOPES]


@dataclass
class World:
    service: Service
    tokens: dict[str, str | None]
    markers: dict[str, str]
    documents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def secrets_of(self, organization: str) -> list[str]:
        out = [self.markers[organization]]
        for d in self.documents[organization]:
            out.append(d["metadata"]["uid"])
            if d["kind"] == "CustomerSubscription":
                out.append(d["status"]["subscriptionId"])
            if d["kind"] == "User":
                out.append(d["spec"]["email"])
        return out


def build(service: Service) -> World:
    root = Scope.root()
    markers = {o: f"secret-{o}-{secrets.token_hex(6)}" for o in PARENTS}
    operations = []
    for o in PARENTS:
        extra = quota_domains() if o == TARGET else []
        for d in contents(o, markers[o], extra):
            meta = d["metadata"]
            operations.append({"op": "create", "kind": d["kind"], "organization": meta.get("organization"),
                               "name": meta["name"], "document": d})
    for scope in SCOPES:  # what each scope will try to delete
        for kind in KINDS:
            d = fresh(kind, "del", scope)
            meta = d["metadata"]
            operations.append({"op": "create", "kind": kind, "organization": meta.get("organization"),
                               "name": meta["name"], "document": d})
    service.changeset(root, operations)
    tokens: dict[str, str | None] = {s: service.create_token(o) for s, o in SCOPE_ORG.items()}
    tokens["root"] = service.create_token(None, legal_representative=True)
    revoked = service.create_token(TARGET)
    service.revoke_token(revoked)
    tokens["revoked"] = revoked
    tokens["expired"] = service.create_token(TARGET, expires_in=1)
    tokens["garbage"] = "tnc_" + secrets.token_urlsafe(32)
    tokens["missing"] = None
    tokens["malformed"] = None
    world = World(service, tokens, markers)
    for o in PARENTS:
        world.documents[o] = [d for d in service.export(root, organization=o) if _owner(d) == o]
    time.sleep(max(0.0, 1.1))  # the expired token's second passes
    return world


def _owner(d: dict[str, Any]) -> str:
    return str(d["metadata"]["name"] if d["kind"] == "Organization" else d["metadata"]["organization"])


def headers_for(world: World, scope: str) -> dict[str, str]:
    if scope == "missing":
        return {}
    if scope == "malformed":
        return {"Authorization": "Basic dXNlcjpwYXNz"}
    return {"Authorization": f"Bearer {world.tokens[scope]}"}


def subtree(organization: str | None, parents: dict[str, str | None]) -> set[str]:
    """`organization` and every organization below it (all, for None)."""
    if organization is None:
        return set(parents)
    out = {organization}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in out and child not in out:
                out.add(child)
                changed = True
    return out
