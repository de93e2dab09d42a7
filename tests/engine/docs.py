"""Small document builders for plain-data engine tests."""

from __future__ import annotations

from typing import Any


def org(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("displayName", name.title())
    spec.setdefault("plan", "entry")
    spec.setdefault("domains", [f"{name}.example"])
    return {"apiVersion": "tenancy/v1", "kind": "Organization", "metadata": {"name": name}, "spec": spec}


def scoped(kind: str, organization: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tenancy/v1",
        "kind": kind,
        "metadata": {"name": name, "organization": organization},
        "spec": spec,
    }


def user(organization: str, name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("email", f"{name}@{organization}.example")
    spec.setdefault("displayName", name.title())
    return scoped("User", organization, name, **spec)


def live(document: dict[str, Any], *, stack: str | None = None, version: int = 1, **meta: Any) -> dict[str, Any]:
    """The document as the backend would return it: server metadata, labels, defaults kept as given."""
    out = {**document, "metadata": {**document["metadata"], **meta}}
    labels = dict(out["metadata"].get("labels") or {})
    if stack:
        labels["tenancy/stack"] = stack
    out["metadata"]["labels"] = labels
    out["metadata"].setdefault("uid", f"uid-{out['metadata']['name']}")
    out["metadata"]["resourceVersion"] = str(version)
    out["spec"] = {k: v for k, v in out["spec"].items() if k != "password"}
    out["status"] = {}
    return out
