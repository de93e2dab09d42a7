"""Manifests, every Tenant expanded → multi-document YAML, each document after a comment naming its origin
(`tenancy render`: what `kustomize build` is to kustomize).

The output reads back as its input: the same documents, the expansion's two labels written as a pair
(which a hand-written document may carry only so), and every string that YAML would read as something
else (`"5"`, `"true"`, `"0o17"`, `"null"`) quoted.
"""

from __future__ import annotations

from typing import Any

import yaml

from provider.errors import ConfigError
from provider.manifests.core_schema import core_value
from provider.manifests.manifest import Manifest, ManifestSet

HEADER = "# Rendered by `tenancy render`: the manifests with every Tenant expanded.\n"


class _Dumper(yaml.SafeDumper):
    """Quotes a string whenever the YAML 1.2 core schema would read its plain form as another value."""


def _string(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    plain = core_value(text)
    style = '"' if not (isinstance(plain, str) and plain == text) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _string)


def origin_comment(m: Manifest) -> str:
    """`# Tenant acme (tenants/acme.yaml:3:1), blueprint mail-business (blueprints/mail.yaml:24)` or
    `# people.yaml:5:1`."""
    e = m.expansion
    if e is None:
        return f"# {m.origin}"
    at = e.resource_origin
    return f"# Tenant {e.tenant} ({e.tenant_origin}), blueprint {e.blueprint} ({at.file}:{at.line})"


def rendered(manifest_set: ManifestSet, tenant: str | None = None) -> str:
    """The documents as YAML; with `tenant`, only what that Tenant expands to."""
    chosen = list(manifest_set.manifests)
    if tenant is not None:
        tenants = manifest_set.tenants()
        if tenant not in tenants:
            known = ", ".join(tenants) or "none"
            raise ConfigError(f"--tenant {tenant}: no Tenant of that name expands to anything here (Tenants: {known})")
        chosen = [m for m in chosen if m.expansion is not None and m.expansion.tenant == tenant]
    parts = [f"{origin_comment(m)}\n{_dump(m.document)}" for m in chosen]
    return HEADER + "---\n".join(parts)


def _dump(document: dict[str, Any]) -> str:
    text: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                          width=120)
    return text


__all__ = ["origin_comment", "rendered"]
