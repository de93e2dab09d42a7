"""A manifest directory as Pulumi resources: one set of YAML serves both the CLI and Pulumi.

The order and the dependencies are the CLI's: the manifests are planned as creations and
`provider.ordering.build` says which waits for which (parents before children, organizations before their
resources, quotas before the mailboxes they make room for, users before the teams and aliases naming
them); each resource `depends_on` exactly those. The set is judged as `tenancy validate` judges it
(`provider.rules`), and the passwords its rules read from their `fromEnv` / `fromFile` sources become
Pulumi secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi

from provider import manifests as manifest_files
from provider import rules
from provider.errors import ManifestError, Severity
from tenancy_kinds import ResourceKey, to_snake
from provider.ordering import build
from provider.diff import diff
from provider.operations import Operation
from provider.pulumi import properties as P
from provider.pulumi.resources import RESOURCES


def resource_name(key: ResourceKey) -> str:
    """A Pulumi resource name unique per type: `acme/alice` (slugs hold no `/`), `acme` for an Organization."""
    return f"{key.organization}/{key.name}" if key.organization else key.name


def _arguments(manifest: manifest_files.Manifest, resolved: Mapping[str, str]) -> dict[str, Any]:
    kind, doc = manifest.kind, manifest.document
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    args: dict[str, Any] = {"name": manifest.key.name}
    if kind.scoped:
        args["organization"] = manifest.key.organization
    if meta.get("labels"):
        args["labels"] = dict(meta["labels"])
    if "protected" in meta:
        args["protected"] = bool(meta["protected"])
    for field, value in spec.items():
        if field in kind.sensitive:
            value = pulumi.Output.secret(resolved[field])  # as the rules read it, once
        else:
            value = P.snake_keys(value)
        args[to_snake(field)] = value
    return args


def from_manifests(
    path: str | os.PathLike[str] | list[str | os.PathLike[str]],
    opts: pulumi.ResourceOptions | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> dict[ResourceKey, pulumi.CustomResource]:
    """The resources a manifest file or directory declares, keyed by `ResourceKey`.

    Raises `ManifestError` (every finding, `file:line:col`) for manifests `tenancy validate` refuses: the
    documents, the rules over the whole set (an administrator per paid organization, addresses on the
    organization's domains, unique values), password sources that cannot be read, weak or shared
    passwords. `opts` applies to every resource; `depends_on` is added to it.
    """
    paths = [Path(p) for p in path] if isinstance(path, list) else [Path(path)]
    loaded = manifest_files.load(paths)
    verdict = rules.judge(loaded, os.environ if env is None else env, True)
    if any(f.severity is Severity.ERROR for f in verdict.findings):
        raise ManifestError(verdict.findings)
    creations: list[Operation] = []
    for manifest in loaded.manifests:
        op = diff(manifest.kind, manifest.document, None)
        assert op is not None  # a creation always has changes
        creations.append(op)
    graph = build(creations)
    by_key = {m.key: m for m in loaded.manifests}
    made: dict[ResourceKey, pulumi.CustomResource] = {}
    for i in graph.order():
        key = creations[i].key
        depends = [made[creations[j].key] for j in sorted(graph.waits_for[i])]
        options = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=depends))
        args = _arguments(by_key[key], verdict.secrets.get(key, {}))
        resource_class: Any = RESOURCES[key.kind]  # a dynamic.Resource taking (name, opts, **inputs)
        made[key] = resource_class(resource_name(key), opts=options, **args)
    return {m.key: made[m.key] for m in loaded.manifests}
