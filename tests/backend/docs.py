"""Document builders for the backend tests: the smallest valid documents, overridable field by field."""

from __future__ import annotations

from typing import Any

STRONG_PASSWORD = "Vq8#rLm2!xTz9pKw"  # passes provider.secrets.weakness


def _doc(kind: str, name: str, organization: str | None, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **meta}
    if organization is not None:
        metadata["organization"] = organization
    return {"apiVersion": "tenancy/v1", "kind": kind, "metadata": metadata, "spec": spec}


def org(name: str, *, plan: str = "entry", domains: list[str] | None = None, meta: dict[str, Any] | None = None,
        **spec: Any) -> dict[str, Any]:
    body = {"displayName": spec.pop("displayName", name.title()), "plan": plan,
            "domains": [f"{name}.example"] if domains is None else domains, **spec}
    return _doc("Organization", name, None, body, **(meta or {}))


def user(organization: str, name: str, *, email: str | None = None, meta: dict[str, Any] | None = None,
         **spec: Any) -> dict[str, Any]:
    body = {"email": email or f"{name}@{organization}.example", "displayName": name.title(), **spec}
    return _doc("User", name, organization, body, **(meta or {}))


def team(organization: str, name: str, members: list[str] | None = None, *, meta: dict[str, Any] | None = None,
         **spec: Any) -> dict[str, Any]:
    body = {"displayName": name.title(), "members": members or [], **spec}
    return _doc("Team", name, organization, body, **(meta or {}))


def quota(organization: str, name: str, domain: str | None = None, max_addresses: int = 5, *,
          meta: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"domain": domain or f"{organization}.example", "maxAddresses": max_addresses, **spec}
    return _doc("MailboxQuota", name, organization, body, **(meta or {}))


def alias(organization: str, name: str, user_name: str, *, address: str | None = None,
          meta: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"address": address or f"{name}@{organization}.example", "user": user_name, **spec}
    return _doc("Alias", name, organization, body, **(meta or {}))


def subscription(organization: str, name: str, product: str = "signatures-microsoft-365", *,
                 meta: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    body = {"product": product, "customerName": name.title(), **spec}
    return _doc("CustomerSubscription", name, organization, body, **(meta or {}))


def op(action: str, document: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A changeset operation; kind/organization/name default to the document's."""
    out: dict[str, Any] = {"op": action}
    if document is not None:
        meta = document["metadata"]
        out.update(kind=document["kind"], name=meta["name"])
        if "organization" in meta:
            out["organization"] = meta["organization"]
        if action != "delete":
            out["document"] = document
    out.update(fields)
    return out
