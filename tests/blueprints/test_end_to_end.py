"""Tenants end to end: the real `tenancy` against `tenancy serve` on loopback and embedded, one backend per
module and kind: onboard, plan empty, change the blueprint, roll it out tenant by tenant, render, offboard."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Backend, running_backend, write

from .data import BLUEPRINT, tenant


@pytest.fixture(scope="module", params=["embedded", "http"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    env = {"TENANCY_NO_CACHE": "1"} if request.param == "embedded" else {}
    with running_backend(request.param, tmp_path_factory.mktemp(f"tenants-{request.param}"), **env) as running:
        yield running


def plan_json(backend: Backend, *args: str) -> dict[str, Any]:
    result = backend.tenancy("plan", *args, "--json")
    assert result.rc == 0, result.both
    document: dict[str, Any] = json.loads(result.out)
    return document


def changes(document: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return sorted((o["action"], f"{o['kind']}/{o['organization'] or ''}/{o['name']}", o["tenant"])
                  for o in document["operations"])


def empty(backend: Backend, path: Path) -> bool:
    result = backend.tenancy("plan", str(path), "--detailed-exitcode")
    assert result.rc in (0, 2), result.both
    return result.rc == 0


def test_tenants_are_onboarded_changed_tenant_by_tenant_rendered_and_offboarded(backend: Backend) -> None:
    root = backend.cwd / "manifests"
    write(root, {"tenancy.yaml": "stack: prod\n", "blueprints/mail.yaml": BLUEPRINT,
                 "tenants/acme.yaml": tenant("acme", extra="    shared: true\n"),
                 "tenants/beta.yaml": tenant("beta", staff="[{name: max, displayName: Max}, {name: noa, "
                                                           "displayName: Noa}, {name: oli, displayName: Oli}, "
                                                           "{name: pia, displayName: Pia}]")})

    # onboarding: every change names its tenant, in JSON, text and Markdown
    first = plan_json(backend, str(root))
    assert first["format_version"] == "1.3"
    assert {o["tenant"] for o in first["operations"]} == {"acme", "beta"} and len(first["operations"]) == 15
    assert ("create", "Team/acme/shared", "acme") in changes(first)
    text = backend.tenancy("plan", str(root)).out
    assert "  + User acme/bob (tenant acme)\n" in text and "  + Organization beta (tenant beta)\n" in text
    markdown = backend.tenancy("plan", str(root), "--format", "markdown").out
    assert "+ User beta/max (tenant beta)\n" in markdown
    applied = backend.tenancy("apply", str(root), "--yes")
    assert applied.rc == 0, applied.both
    assert empty(backend, root)

    # a blueprint change changes every tenant; --target Tenant/NAME rolls it out one at a time
    (root / "blueprints/mail.yaml").write_text(BLUEPRINT.replace(
        "spec: {email: \"${each.name}@${params.domain}\", displayName: \"${each.displayName}\", subscription: entry}",
        "spec: {email: \"${each.name}@${params.domain}\", displayName: \"${each.displayName}\", subscription: pro}"))
    changed = plan_json(backend, str(root))
    assert {(a, t) for a, _, t in changes(changed)} == {("update", "acme"), ("update", "beta")}
    assert len(changed["operations"]) == 8
    acme = backend.tenancy("apply", str(root), "--target", "Tenant/acme", "--yes")
    assert acme.rc == 0 and "Targeted plan: 4 changes outside the selection are not planned." in acme.out, acme.both
    assert {t for _, _, t in changes(plan_json(backend, str(root)))} == {"beta"}
    assert backend.tenancy("apply", str(root), "--target", "Tenant/beta", "--yes").rc == 0
    assert empty(backend, root)

    # render: what it prints validates and plans exactly like its input
    rendered = backend.tenancy("render", str(root))
    assert rendered.rc == 0, rendered.both
    assert "# Tenant acme (" in rendered.out and "tenancy/tenant: acme" in rendered.out
    flat = write(backend.cwd / "rendered", {"all.yaml": rendered.out, "tenancy.yaml": "stack: prod\n"})
    assert backend.tenancy("validate", str(flat)).rc == 0
    assert empty(backend, flat)
    assert changes(plan_json(backend, str(flat))) == []
    only = backend.tenancy("render", str(root), "--tenant", "beta").out
    assert "tenancy/tenant: beta" in only and "tenancy/tenant: acme" not in only
    assert backend.tenancy("render", str(root), "--tenant", "gamma").rc == 1

    # offboarding: a Tenant removed deletes what it made (the plan names it from the live labels)
    (root / "tenants/beta.yaml").unlink()
    gone = plan_json(backend, str(root))
    assert {(a, t) for a, _, t in changes(gone)} == {("delete", "beta")} and len(gone["operations"]) == 7
    assert backend.tenancy("apply", str(root), "--yes").rc == 0
    assert empty(backend, root)

    # import of what a tenant made plans empty too (its expansion labels come back as the pair)
    imported = backend.tenancy("import", "--organization", "acme", "--out", str(backend.cwd / "imported"))
    assert imported.rc == 0, imported.both
    assert empty(backend, backend.cwd / "imported")

    # destroy, one tenant at a time
    destroyed = backend.tenancy("destroy", str(root), "--target", "Tenant/acme", "--yes")
    assert destroyed.rc == 0, destroyed.both
    assert backend.client().export() == []
    shutil.rmtree(backend.cwd / "imported")
