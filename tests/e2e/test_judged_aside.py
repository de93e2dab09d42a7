"""Large manifest sets are judged in a forked child while the plan is made (provider.engine, JUDGED_ASIDE):
every plan, warning and error is the one the same manifests get when they are judged here first, and the
manifests' errors still come before any other error."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider import engine
from provider.apply import apply
from provider.embedded import EmbeddedClient
from provider.errors import ManifestError, TenancyError
from provider.render import as_json
from tests.builders import team, user
from tests.e2e.test_cache_equivalence import _environment
from tests.e2e.test_convergence import tenant_set

# What can be wrong with a set: nothing, an error of one resource, an error of the set, a loader warning.
troubles = st.sampled_from(["none", "stray member", "shared email", "status", "destroy without a stack"])


def _troubled(docs: list[dict[str, Any]], trouble: str) -> list[dict[str, Any]]:
    docs = copy.deepcopy(docs)
    organization = next(d for d in docs if d["kind"] == "Organization")["metadata"]["name"]
    if trouble == "stray member":  # a team of someone not declared: a reference that does not resolve
        docs.append(team(organization, "strays", ["nobody"]))
    elif trouble == "shared email":  # two users of one address: a clash only the whole set shows
        first = next(d for d in docs if d["kind"] == "User")
        docs.append(user(organization, "twin", email=first["spec"]["email"], role="collaborator"))
    elif trouble == "status":  # reported by the backend, ignored in manifests: a warning
        docs[0]["status"] = {"phase": "Ready"}
    return docs


def _outcome(directory: Path, client: EmbeddedClient, aside_from: int, destroy: bool) -> Any:
    """The plan's JSON, or the error's words, with sets of `aside_from` manifests and more judged aside."""
    saved = engine.JUDGED_ASIDE
    engine.JUDGED_ASIDE = aside_from
    try:
        with _environment(TENANCY_NO_CACHE="1", TENANCY_STACK=None):
            prepared = engine.prepare([str(directory)], client, "embedded", stack_option=None, destroy=destroy)
        return as_json(prepared.plan)
    except TenancyError as e:
        return f"{type(e).__name__}: {e}"
    finally:
        engine.JUDGED_ASIDE = saved


def _write(directory: Path, docs: list[dict[str, Any]], stack: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tenants.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    (directory / "tenancy.yaml").write_text("stack: aside\n" if stack else "{}\n")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(applied=tenant_set(), planned=tenant_set(), trouble=troubles)
def test_a_set_judged_aside_gets_the_plan_and_the_findings_it_gets_judged_first(
    applied: list[dict[str, Any]], planned: list[dict[str, Any]], trouble: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "m"
        client = EmbeddedClient(f"sqlite:///{tmp}/tenancy.db")
        try:
            _write(directory, applied, stack=True)
            with _environment(TENANCY_NO_CACHE="1", TENANCY_STACK=None):
                apply(engine.prepare([str(directory)], client, "embedded", stack_option=None).plan, client)
            destroy = trouble == "destroy without a stack"
            _write(directory, _troubled(planned, trouble), stack=not destroy)
            here = _outcome(directory, client, aside_from=10**9, destroy=destroy)
            aside = _outcome(directory, client, aside_from=1, destroy=destroy)
            assert aside == here
            if trouble in ("stray member", "shared email"):
                assert isinstance(here, str) and here.startswith("ManifestError"), here
        finally:
            client.close()


def test_the_manifests_errors_come_before_the_plans_when_judged_aside(tmp_path: Path) -> None:
    """A set with an error whose plan would also fail (destroy without a stack name): the manifests' error
    is the one reported, as when they are judged before the plan."""
    directory = tmp_path / "m"
    docs = [
        {"apiVersion": "tenancy/v1", "kind": "Organization", "metadata": {"name": "acme"},
         "spec": {"displayName": "Acme", "plan": "pro", "domains": ["acme.example"]}},
        user("acme", "ann", role="administrator"),
        team("acme", "devs", ["nobody"]),
    ]
    _write(directory, docs, stack=False)
    client = EmbeddedClient(f"sqlite:///{tmp_path}/tenancy.db")
    try:
        saved = engine.JUDGED_ASIDE
        engine.JUDGED_ASIDE = 1
        try:
            with _environment(TENANCY_NO_CACHE="1", TENANCY_STACK=None):
                with pytest.raises(ManifestError, match="nobody"):
                    engine.prepare([str(directory)], client, "embedded", stack_option=None, destroy=True)
        finally:
            engine.JUDGED_ASIDE = saved
    finally:
        client.close()
