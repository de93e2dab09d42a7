"""The test suite's one set of document builders: the smallest valid documents, overridable field by field.

    document("Team", "devs", "acme", members=["ann"])            # any kind: kind, name, organization, spec
    document("User", "p", "acme", {"email": ...}, meta={"protected": True})
    org("acme", plan="pro"), user("acme", "ann", role="administrator"), team("acme", "devs", ["ann"])
    quota("acme", "q"), alias("acme", "info", "ann"), subscription("acme", "sig")
    live(doc, stack="prod")                                       # as the backend returns it
    op("create", doc)                                             # a changeset operation

Defaults derive from the names (`ann` → `ann@acme.example`, "Ann"), so that two builders never collide by
accident; every field can be given, and extra keywords become spec fields.
"""

from __future__ import annotations

from typing import Any

API_VERSION = "tenancy/v1"
STRONG_PASSWORD = "Vq8#rLm2!xTz9pKw"  # passes provider.secrets.weakness


def document(kind: str, name: str, organization: str | None = None, spec: dict[str, Any] | None = None, /, *,
             meta: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A document of any kind: `spec` and the keyword fields make its spec; `meta`, more metadata."""
    metadata: dict[str, Any] = {"name": name, **(meta or {})}
    if organization is not None:
        metadata["organization"] = organization
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": {**(spec or {}), **fields}}


def org(name: str, *, plan: str = "entry", domains: list[str] | None = None, meta: dict[str, Any] | None = None,
        **spec: Any) -> dict[str, Any]:
    body = {"displayName": spec.pop("displayName", name.title()), "plan": plan,
            "domains": [f"{name}.example"] if domains is None else domains, **spec}
    return document("Organization", name, None, body, meta=meta)


def user(organization: str, name: str, *, email: str | None = None, meta: dict[str, Any] | None = None,
         **spec: Any) -> dict[str, Any]:
    body = {"email": email or f"{name}@{organization}.example", "displayName": spec.pop("displayName", name.title()),
            **spec}
    return document("User", name, organization, body, meta=meta)


def team(organization: str, name: str, members: list[str] | None = None, *, meta: dict[str, Any] | None = None,
         **spec: Any) -> dict[str, Any]:
    body = {"displayName": spec.pop("displayName", name.title()), "members": members or [], **spec}
    return document("Team", name, organization, body, meta=meta)


def quota(organization: str, name: str, domain: str | None = None, max_addresses: int = 5, *,
          meta: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"domain": domain or f"{organization}.example", "maxAddresses": max_addresses, **spec}
    return document("MailboxQuota", name, organization, body, meta=meta)


def alias(organization: str, name: str, user_name: str, *, address: str | None = None,
          meta: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"address": address or f"{name}@{organization}.example", "user": user_name, **spec}
    return document("Alias", name, organization, body, meta=meta)


def subscription(organization: str, name: str, product: str = "signatures-microsoft-365", *,
                 meta: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"product": product, "customerName": spec.pop("customerName", name.title()), **spec}
    return document("CustomerSubscription", name, organization, body, meta=meta)


def live(doc: dict[str, Any], *, stack: str | None = None, version: int = 1, **meta: Any) -> dict[str, Any]:
    """The document as the backend would return it: server metadata, labels, defaults kept as given."""
    out = {**doc, "metadata": {**doc["metadata"], **meta}}
    labels = dict(out["metadata"].get("labels") or {})
    if stack:
        labels["tenancy/stack"] = stack
    out["metadata"]["labels"] = labels
    out["metadata"].setdefault("uid", f"uid-{out['metadata']['name']}")
    out["metadata"]["resourceVersion"] = str(version)
    out["spec"] = {k: v for k, v in out["spec"].items() if k != "password"}
    out["status"] = {}
    return out


def op(action: str, doc: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A changeset operation; kind/organization/name default to the document's (no organization key for an
    unscoped one)."""
    out: dict[str, Any] = {"op": action}
    if doc is not None:
        meta = doc["metadata"]
        out.update(kind=doc["kind"], name=meta["name"])
        if "organization" in meta:
            out["organization"] = meta["organization"]
        if action != "delete":
            out["document"] = doc
    out.update(fields)
    return out
