"""Live → manifests: `tenancy import` writes what exists so that planning it back shows no changes.

Server-managed fields (uid, resourceVersion, timestamps, status) and write-only fields (passwords) are
left out, fields equal to their defaults too (a username equal to the email among them); the stack label
becomes `stack:` in `tenancy.yaml` when the stack holds nothing else: planning a part of a stack as that
stack would delete the rest, so then `tenancy.yaml` says so instead, and names no stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from provider.client import Client
from provider.errors import ConfigError, NotFound
from tenancy_kinds import API_VERSION, KINDS, ORGANIZATION, STACK_LABEL, ResourceKey

HEADER = "# yaml-language-server: $schema={schema}\n# Imported by `tenancy import`; edit freely.\n"


def manifest_document(live: dict[str, Any]) -> dict[str, Any]:
    """A live document as a manifest would declare it."""
    kind = KINDS[live["kind"]]
    meta = live.get("metadata") or {}
    metadata: dict[str, Any] = {"name": meta["name"]}
    if kind.scoped:
        metadata["organization"] = meta["organization"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != STACK_LABEL}
    if labels:
        metadata["labels"] = labels
    if meta.get("protected"):
        metadata["protected"] = True
    defaults = kind.essence({})
    live_spec = live.get("spec") or {}
    derived = kind.derived_defaults  # a username equal to the email is left out: that is its default
    spec = {
        k: v
        for k, v in live_spec.items()
        if v is not None
        and k not in kind.sensitive
        and not (k in defaults and kind.essence({k: v}) == defaults)
        and not (k in derived and live_spec.get(derived[k]) == v)
    }
    return {"apiVersion": API_VERSION, "kind": kind.name, "metadata": metadata, "spec": spec}


def collect(client: Client, organization: str) -> list[dict[str, Any]]:
    """The organization, its sub-organizations and everything they hold."""
    if client.get(ResourceKey(ORGANIZATION.name, "", organization)) is None:
        raise NotFound(f"organization {organization!r} does not exist (or this token cannot see it)")
    return client.export(organization=organization)


def shared_stack(documents: list[dict[str, Any]]) -> str | None:
    """The stack every document carries, if they all carry one and the same."""
    stacks = {((d.get("metadata") or {}).get("labels") or {}).get(STACK_LABEL) for d in documents}
    return next(iter(stacks)) if len(stacks) == 1 and None not in stacks else None


def held_elsewhere(client: Client, stack: str, documents: list[dict[str, Any]]) -> int:
    """How many resources the stack holds (that the token sees) beside these documents."""
    imported = {ResourceKey.of(d) for d in documents}
    return sum(ResourceKey.of(d) not in imported for d in client.export(label_selector=f"{STACK_LABEL}={stack}"))


def write(
    documents: list[dict[str, Any]], out_dir: str, schema_ref: str = "", elsewhere: int = 0, organization: str = ""
) -> list[Path]:
    """One file per organization (the organization first, then its resources by kind); tenancy.yaml naming
    their stack, unless it holds `elsewhere` resources more (outside `organization`)."""
    root = Path(out_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create {out_dir}: {e.strerror}") from e
    rank = {name: i for i, name in enumerate(KINDS)}
    by_org: dict[str, list[dict[str, Any]]] = {}
    for live in documents:
        key = ResourceKey.of(live)
        by_org.setdefault(key.organization or key.name, []).append(live)
    written = []
    for org, docs in sorted(by_org.items()):
        docs.sort(key=lambda d: (rank[d["kind"]], d["metadata"]["name"]))
        text = HEADER.format(schema=schema_ref or "https://tenancy.invalid/schemas/manifest.schema.json")
        text += "---\n".join(yaml.safe_dump(manifest_document(d), sort_keys=False, allow_unicode=True) for d in docs)
        path = root / f"{org}.yaml"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    stack = shared_stack(documents)
    if stack is not None:
        config = root / "tenancy.yaml"
        config.write_text(
            _partial_stack(stack, elsewhere, organization) if elsewhere else f"stack: {stack}\n", encoding="utf-8"
        )
        written.append(config)
    return written


def partial_stack_note(stack: str, elsewhere: int, organization: str) -> str:
    """Why `tenancy.yaml` names no stack: the stack holds more than was imported."""
    more = f"{elsewhere} resource{'s' if elsewhere != 1 else ''}"
    return (
        f"stack {stack} also holds {more} outside {organization}: planning these manifests as stack {stack} "
        "would delete them, so tenancy.yaml names no stack (nothing is deleted); name it once these manifests "
        "declare all of the stack"
    )


def _partial_stack(stack: str, elsewhere: int, organization: str) -> str:
    return f"# {partial_stack_note(stack, elsewhere, organization)}.\n# stack: {stack}\n"


__all__ = ["collect", "held_elsewhere", "manifest_document", "partial_stack_note", "shared_stack", "write"]
