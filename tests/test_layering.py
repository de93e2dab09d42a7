"""Layers only point down (docs/architecture.md, STYLE principle 9), checked over the source with `ast`.

Every import is counted, also those inside functions or under TYPE_CHECKING: a dependency is a
dependency. A module that does not exist (yet) is simply not checked; a module no layer names is not
checked either (add it to a layer when it settles).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("provider", "tenancy_backend", "tenancy_kinds")

# Top to bottom. A module may import modules of lower layers and of its own layer (peers within one layer
# may not form a cycle of import at module level anyway: Python would refuse).
PROVIDER_LAYERS: list[tuple[str, ...]] = [
    ("provider.cli",),
    ("provider.pulumi",),
    ("provider.engine",),
    ("provider.aside",),
    ("provider.memo",),
    ("provider.importer",),
    ("provider.apply",),
    ("provider.connect",),
    ("provider.client",),
    ("provider.embedded",),
    ("provider.live",),
    ("provider.render",),
    ("provider.policy",),
    ("provider.plan",),
    ("provider.targeting",),
    ("provider.ordering",),
    ("provider.costs", "provider.diff"),
    ("provider.operations",),
    ("provider.documents",),
    ("provider.rules",),
    ("provider.schemas",),
    # provider.manifests: the package's public surface on top, then each module by its job, top down
    ("provider.manifests",),
    # provider.blueprints: Tenants expanded in one place, called by the manifests' public surface
    ("provider.blueprints", "provider.blueprints.output"),
    ("provider.blueprints.expand",),
    ("provider.blueprints.model",),
    ("provider.blueprints.parameters", "provider.blueprints.expressions"),
    ("provider.blueprints.errors",),
    ("provider.manifests.parallel",),
    ("provider.manifests.read",),
    ("provider.manifests.cache",),
    ("provider.manifests.validate", "provider.manifests.config", "provider.manifests.positions"),
    ("provider.manifests.yaml_fast", "provider.manifests.yaml_plain", "provider.manifests.yaml_full"),
    ("provider.manifests.yaml_events",),
    ("provider.manifests.manifest", "provider.manifests.text", "provider.manifests.syntax"),
    (
        "provider.manifests.limits",
        "provider.manifests.discover",
        "provider.manifests.core_schema",
    ),
    ("provider.blueprints.documents",),  # the two documents' shapes: the readers and the schemas read them
    ("provider.secrets",),
    ("provider.errors",),
]
BACKEND_LAYERS: list[tuple[str, ...]] = [
    ("tenancy_backend.api", "tenancy_backend.openapi", "tenancy_backend.methods"),
    ("tenancy_backend.scim", "tenancy_backend.scim.routes"),
    ("tenancy_backend.scim.provisioning", "tenancy_backend.scim.queries"),
    ("tenancy_backend.scim.mapping",),
    ("tenancy_backend.scim.models", "tenancy_backend.scim.errors"),
    ("tenancy_backend.service",),
    # the write path behind the façade, each module by its job, top down
    (
        "tenancy_backend.reads",
        "tenancy_backend.changesets",
        "tenancy_backend.idempotency",
        "tenancy_backend.statistics",
        "tenancy_backend.tokens",
        "tenancy_backend.changes",
    ),
    ("tenancy_backend.writes", "tenancy_backend.integrity"),
    (
        "tenancy_backend.checks",
        "tenancy_backend.claims",
        "tenancy_backend.references",
        "tenancy_backend.rows",
    ),
    ("tenancy_backend.bulk", "tenancy_backend.parsing"),
    ("tenancy_backend.transaction",),
    (
        "tenancy_backend.documents",
        "tenancy_backend.selectors",
        "tenancy_backend.passwords",
        "tenancy_backend.scope",
    ),
    ("tenancy_backend.db",),
    ("tenancy_backend.errors",),
]

# The table of kinds, beneath both halves: it imports neither of them.
KINDS_LAYERS: list[tuple[str, ...]] = [
    ("tenancy_kinds",),
    ("tenancy_kinds.messages",),
    ("tenancy_kinds.table",),
    ("tenancy_kinds.checks",),
    (
        "tenancy_kinds.facts",
        "tenancy_kinds.specs",
        "tenancy_kinds.passwords",
        "tenancy_kinds.selectors",
        "tenancy_kinds.billing",
        "tenancy_kinds.defaults",
        "tenancy_kinds.framing",
    ),
]

SHARED = "tenancy_kinds"  # what both halves may import
LAYERS = {"provider": PROVIDER_LAYERS, "tenancy_backend": BACKEND_LAYERS, SHARED: KINDS_LAYERS}

# What may cross from the IaC side to the backend (the backend never imports provider).
PROVIDER_BRIDGES = {
    "provider.embedded": ("tenancy_backend",),
    "provider.cli.backend": ("tenancy_backend",),
    # schemas/openapi.json is rendered from the backend's app, imported lazily and only when installed
    "provider.schemas": ("tenancy_backend.openapi",),
}

# Edges that contradict docs/architecture.md, kept visible here until the document or the code changes.
KNOWN_DEVIATIONS: set[tuple[str, str]] = set()


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(module: str, layers: list[tuple[str, ...]]) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, layer in enumerate(layers):
        for prefix in layer:
            if _within(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(module: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules `source` imports (relative imports resolved, `from pkg import mod` as pkg.mod)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            found.update(submodules or {base})
    return {m for m in found if m.split(".")[0] in PACKAGES}


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Every import that points up or across the allowed bridges. `sources`: module → (source, is_package)."""
    known = set(sources)
    problems: list[str] = []
    for module, (source, is_package) in sorted(sources.items()):
        top = module.split(".")[0]
        layers = LAYERS[top]
        here = layer_of(module, layers)
        for target in sorted(imports(module, source, is_package, known)):
            problem = _check_edge(module, target, top, layers, here)
            if problem:
                problems.append(problem)
    return problems


def _check_edge(module: str, target: str, top: str, layers: list[tuple[str, ...]], here: int | None) -> str | None:
    target_top = target.split(".")[0]
    if target_top != top:
        if target_top == SHARED:
            return None  # both halves ask the table of kinds
        if top == SHARED:
            return f"{module} imports {target}: the table of kinds imports neither half"
        if top == "tenancy_backend":
            return f"{module} imports {target}: the backend imports nothing of provider (only {SHARED})"
        bridge = next((v for k, v in PROVIDER_BRIDGES.items() if _within(module, k)), ())
        allowed = any(_within(target, b) for b in bridge)
        bridges = ", ".join(PROVIDER_BRIDGES)
        return None if allowed else f"{module} imports {target}: only {bridges} may reach the backend"
    there = layer_of(target, layers)
    if here is None or there is None or there >= here:
        return None
    owner = next(p for p in layers[here] if _within(module, p))
    target_owner = next(p for p in layers[there] if _within(target, p))
    if (owner, target_owner) in KNOWN_DEVIATIONS:
        return None
    return f"{module} imports {target}, which is a higher layer ({target_owner} is above {owner})"


def project_sources() -> dict[str, tuple[str, bool]]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            out[module_name(path)] = (path.read_text(encoding="utf-8"), path.name == "__init__.py")
    return out


def test_layers_only_point_down() -> None:
    problems = violations(project_sources())
    assert not problems, "\n".join(problems)


def test_the_checker_catches_upward_and_cross_imports() -> None:
    sources = {
        "provider.secrets": ("from provider.manifests import load\n", False),
        "provider.manifests": ("from . import secrets\nfrom .rules import check\n", False),
        "provider.rules": ("def f():\n    from tenancy_backend import service\n", False),
        "provider.cli.validate": ("from provider import manifests, rules\nfrom provider.cli import run\n", False),
        "provider.cli": ("", True),
        "tenancy_backend.db": (
            "from tenancy_backend.service import Service\nfrom provider.errors import Finding\n",
            False,
        ),
        "tenancy_backend.service": (
            "from tenancy_kinds import KINDS\nfrom tenancy_kinds.passwords import weakness\n",
            False,
        ),
        "tenancy_kinds.specs": ("from tenancy_kinds.table import KINDS\n", False),
        "tenancy_kinds.table": ("from provider.errors import Finding\n", False),
        "provider.ordering": ("from provider.plan import plan\n", False),
    }
    problems = violations(sources)
    assert problems == [
        "provider.manifests imports provider.rules, which is a higher layer "
        "(provider.rules is above provider.manifests)",
        "provider.ordering imports provider.plan, which is a higher layer (provider.plan is above provider.ordering)",
        "provider.rules imports tenancy_backend.service: only provider.embedded, provider.cli.backend, "
        "provider.schemas may reach the backend",
        "provider.secrets imports provider.manifests, which is a higher layer "
        "(provider.manifests is above provider.secrets)",
        "tenancy_backend.db imports provider.errors: the backend imports nothing of provider (only tenancy_kinds)",
        "tenancy_backend.db imports tenancy_backend.service, which is a higher layer (tenancy_backend.service is "
        "above tenancy_backend.db)",
        "tenancy_kinds.specs imports tenancy_kinds.table, which is a higher layer (tenancy_kinds.table is above "
        "tenancy_kinds.specs)",
        "tenancy_kinds.table imports provider.errors: the table of kinds imports neither half",
    ]


def test_within_a_package_lower_jobs_do_not_import_higher_ones() -> None:
    """provider.manifests' modules are layered too: the event parser may not reach the cache, nothing
    inside the package may import its public surface (the package itself)."""
    sources = {
        "provider.manifests": ("from provider.manifests.read import parse_manifests\n", True),
        "provider.manifests.read": ("from . import cache\nfrom .yaml_full import values\n", False),
        "provider.manifests.yaml_events": ("from provider.manifests.cache import cached\n", False),
        "provider.manifests.limits": ("def f():\n    from provider.manifests import load\n", False),
        "provider.manifests.cache": ("", False),
        "provider.manifests.yaml_full": ("", False),
    }
    assert violations(sources) == [
        (
            "provider.manifests.limits imports provider.manifests, which is a higher layer (provider.manifests is "
            "above provider.manifests.limits)"
        ),
        (
            "provider.manifests.yaml_events imports provider.manifests.cache, which is a higher layer "
            "(provider.manifests.cache is above provider.manifests.yaml_events)"
        ),
    ]


def test_every_documented_layer_is_listed() -> None:
    """The layers of docs/architecture.md all appear above, in the same order."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("## Layers", 1)[1].split("```", 2)[1]  # the fenced list under "## Layers"
    documented = [
        line.split()[0].removesuffix(".*")
        for line in block.splitlines()
        if line.startswith(("provider.", "tenancy_backend.", "tenancy_kinds"))
    ]
    assert len(documented) >= 15
    listed = [p for layer in PROVIDER_LAYERS + BACKEND_LAYERS + KINDS_LAYERS for p in layer]
    assert set(documented) <= set(listed), set(documented) - set(listed)
    positions = [listed.index(d) for d in documented]
    swapped: set[tuple[str, str]] = set()  # KNOWN_DEVIATIONS, seen from the document's side
    pairs = [(documented[i], documented[i + 1]) for i in range(len(documented) - 1) if positions[i] > positions[i + 1]]
    assert set(pairs) <= swapped, pairs


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in a layer, or it would escape the check above."""
    unplaced = [
        module
        for module in project_sources()
        if module not in PACKAGES
        and not module.startswith("tenancy_backend.migrations")
        and layer_of(module, LAYERS[module.split(".")[0]]) is None
    ]
    assert not unplaced, f"place these modules in a layer: {unplaced}"
