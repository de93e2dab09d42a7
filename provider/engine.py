"""The workflows behind `plan`, `apply`, `destroy`: manifests + backend → an ordered Plan, saved plans.

Deciding stays in `plan.py` and doing in `apply.py`; this module only gathers their inputs (manifests,
rules, the live state, prices, secrets) and checks saved plans for staleness.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from provider import manifests, memo, policy, rules
from provider.aside import Aside
from provider.client import Client
from provider.costs import Prices
from provider.errors import ConfigError, ManifestError, PolicyFailed, Severity, StalePlanError
from provider.documents import by_key
from provider.live import LiveState, read_live
from provider.operations import KEY_ID_PATTERN
from provider.ordering import build
from provider.plan import Plan, plan
from provider.targeting import Selection
from provider.render import as_json
from provider.secrets import SecretValues
from tenancy_kinds import SLUG_PATTERN, ResourceKey

SAVED_PLAN_FORMAT = "tenancy-saved-plan/1"


@dataclass
class Prepared:
    """Everything `apply` needs, gathered by `prepare`."""

    plan: Plan
    manifest_set: manifests.ManifestSet
    paths: list[str]
    backend: str
    live: Sequence[dict[str, Any]] = field(default_factory=list, repr=False)  # what the backend held
    secrets: SecretValues = field(default_factory=dict, repr=False)  # resolved once, while validating
    policy_report: policy.PolicyReport | None = None  # None: no policy given
    planned: memo.Planned | None = None  # what the plan was computed from, to remember it (provider.memo)
    recalled: bool = False  # answered from the plan memo: the manifests were not read

    @functools.cached_property
    def digest(self) -> str:
        """The manifests' fingerprint, for saved plans only (0.3 s at 100,000 resources: not paid otherwise)."""
        return digest(self.manifest_set)


def resolve_stack(option: str | None, manifest_set: manifests.ManifestSet | None) -> str | None:
    stack = option or os.environ.get("TENANCY_STACK") or (manifest_set.stack if manifest_set else None)
    if stack and not re.match(SLUG_PATTERN, stack):
        raise ConfigError(f"stack name {stack!r} is not a valid name (lowercase letters, digits and '-')")
    return stack or None


JUDGED_ASIDE = 20_000  # manifests: from here the rules judge them in a forked child while the plan is made


def _judged(judging: Aside[rules.Verdict]) -> rules.Verdict:
    """The rules' verdict; raises ManifestError on any error."""
    verdict = judging.result()
    if any(f.severity is Severity.ERROR for f in verdict.findings):
        raise ManifestError(verdict.findings)
    return verdict


def digest(manifest_set: manifests.ManifestSet) -> str:
    """A fingerprint of the declared documents (secret *sources*, never values)."""
    documents = sorted(orjson.dumps(m.document, option=orjson.OPT_SORT_KEYS) for m in manifest_set.manifests)
    return hashlib.sha256(b"\n".join(documents)).hexdigest()


def live_state(client: Client) -> LiveState:
    """One bulk read of what the backend holds (the plan picks what concerns it), as of one revision: the
    export cached by the last plan completed with what changed since, where the backend allows it."""
    return read_live(client)


class _Background:
    """A call running in a daemon thread (an abandoned one never holds the process up); `result()` joins it
    and returns its value or raises its exception."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, *args), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self._value = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller of result()
            self._error = e

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def prepare(
    paths: list[str],
    client: Client,
    backend: str,
    *,
    stack_option: str | None,
    destroy: bool = False,
    allow_outside: bool = False,
    policy_paths: Sequence[str] = (),
    selection: Selection | None = None,
    recall: bool = True,
) -> Prepared:
    """Load, check, read the backend, plan (restricted to `selection`, if any), judge the policies; or, with
    `recall`, answer from the plan memo when nothing the last plan was computed from changed."""
    paths_seen = [str(Path(p).resolve()) for p in paths]
    print_ = None if destroy or not recall else _fingerprint(client, paths_seen, stack_option, selection, allow_outside)
    prices_document = client.prices()
    if print_ is not None:
        remembered = memo.recall(print_, client, prices_document, os.environ)
        if remembered is not None:
            planned = memo.recalled_planned(print_, remembered, prices_document)
            return _recalled(remembered, planned, selection, policy_paths, paths_seen, backend)
    with memo.without_cyclic_gc():
        return _prepare(
            paths, client, backend, destroy=destroy, allow_outside=allow_outside, policy_paths=policy_paths,
            selection=selection, print_=print_, prices_document=prices_document, paths_seen=paths_seen,
            stack_option=stack_option,
        )


def _prepare(
    paths: list[str],
    client: Client,
    backend: str,
    *,
    destroy: bool,
    allow_outside: bool,
    policy_paths: Sequence[str],
    selection: Selection | None,
    print_: memo.Fingerprint | None,
    prices_document: dict[str, Any],
    paths_seen: list[str],
    stack_option: str | None,
) -> Prepared:
    """`prepare` in full: nothing remembered answers."""
    reading = _Background(live_state, client)  # the backend answers while the manifests load
    manifest_set = manifests.load(paths)
    # Many manifests are judged in a child while the plan is made here (the rules need no live state); the
    # manifests' errors still come first, before any other error and instead of any plan.
    large = len(manifest_set.manifests) >= JUDGED_ASIDE
    judging = Aside(rules.judge, manifest_set, os.environ, True, allow_outside, fork=large)
    verdict = None if judging.forked else _judged(judging)
    try:
        policies = load_policies(policy_paths, manifest_set)  # a bad policy is reported before any plan
        stack = resolve_stack(stack_option, manifest_set)
        if destroy and not stack:
            raise ConfigError("destroy needs a stack name (--stack, TENANCY_STACK, or `stack:` in tenancy.yaml)")
        state: LiveState = reading.result()
        live = state.documents
        prices = Prices.from_api(prices_document)
        documents = [m.document for m in manifest_set.manifests]
        result = plan(documents, live, stack=stack, prices=prices, destroy=destroy, selection=selection)
    except Exception:
        if verdict is None:
            _judged(judging)
        raise
    if verdict is None:
        verdict = _judged(judging)
    warnings = [f"{w.file}:{w.line}: {w.message}" for w in verdict.findings]
    result = dataclasses.replace(result, warnings=(*warnings, *result.warnings), live_revision=state.revision)
    planned = None
    if print_ is not None:
        planned = memo.Planned(
            print_, stack, tuple(str(p) for p in manifest_set.policies), tuple(warnings), verdict.inputs,
            memo.prices_digest(prices_document), prices, state.database, state.revision,
            memo.files_read(print_, manifest_set.text_keys),
        )
        memo.remember(planned, result, os.environ)
    # Last, on the finished (targeted) plan: `input` is exactly what `plan --json` prints.
    report = policy.evaluate(policies, as_json(result)) if policies else None
    return Prepared(result, manifest_set, paths_seen, backend, live, verdict.secrets, report, planned)


def _fingerprint(
    client: Client, paths: list[str], stack_option: str | None, selection: Selection | None, allow_outside: bool
) -> memo.Fingerprint | None:
    """The manifests' key for the plan memo, from their stats; None without a memo (no cache, a client
    that cannot say what changed, a tenancy.yaml changed within the last second)."""
    identity = getattr(client, "cache_identity", None)
    if not isinstance(identity, str):
        return None
    header = memo.Header(identity, tuple(paths), stack_option, selection, allow_outside)
    return memo.fingerprint(header, time.time_ns())


def _recalled(
    remembered: memo.Remembered,
    planned: memo.Planned,
    selection: Selection | None,
    policy_paths: Sequence[str],
    paths: list[str],
    backend: str,
) -> Prepared:
    """The remembered plan, its policies judged again (they are not part of the memo). It sends no secret
    (provider.memo.rememberable): none is resolved."""
    result = memo.recalled_plan(remembered, selection)
    manifest_set = manifests.ManifestSet([], remembered.stack, policies=[Path(p) for p in remembered.policies])
    policies = load_policies(policy_paths, manifest_set)
    report = policy.evaluate(policies, as_json(result)) if policies else None
    return Prepared(result, manifest_set, paths, backend, policy_report=report, planned=planned, recalled=True)


def remember_applied(prepared: Prepared, client: Client) -> None:
    """After an apply that applied every change of a whole plan: remember the no-op plan that follows
    (provider.memo.after_apply), so that the next plan of the same manifests answers at once.

    `prepared` is spent by then: what the read-back does not need (the manifests, the apply order, the live
    state read before the plan) is let go first, for after a cold apply the read-back holds the changes of
    the whole fleet (tracemalloc at 100,000 resources: 48 MiB for the graph and the manifests alone)."""
    if prepared.planned is None or prepared.plan.selection is not None:
        return
    prepared.manifest_set = dataclasses.replace(prepared.manifest_set, manifests=[])
    prepared.live = []
    prepared.plan = dataclasses.replace(prepared.plan, graph=build([]))
    memo.after_apply(prepared.planned, prepared.plan, client, os.environ)


def load_policies(options: Sequence[str], manifest_set: manifests.ManifestSet) -> policy.PolicySet | None:
    """The policies of `--policy` and of tenancy.yaml's `policy:`, each file once; None when there are none."""
    paths = [*options, *(str(p) for p in manifest_set.policies)]
    return policy.load(paths) if paths else None


def require_policies_pass(prepared: Prepared) -> None:
    """Raise PolicyFailed when a `deny` or `violation` rule gave a message (warnings never fail)."""
    report = prepared.policy_report
    if report is not None and not report.ok:
        raise PolicyFailed([str(r) for r in report.failures])


def secrets_to_send(prepared: Prepared) -> SecretValues:
    """The clear secrets the plan must send: those of the operations that send one, as resolved while the
    manifests were validated."""
    return {
        op.key: prepared.secrets[op.key]
        for op in prepared.plan.operations
        if op.sends_secret and op.key in prepared.secrets
    }


# --- saved plans ----------------------------------------------------------------------------------


def save(prepared: Prepared, path: str) -> None:
    """Write a saved plan: no secret inside, only sources, versions and a digest of the manifests."""
    document = {
        "format": SAVED_PLAN_FORMAT,
        "backend": prepared.backend,
        "stack": prepared.plan.stack,
        "paths": prepared.paths,
        "manifest_digest": prepared.digest,
        "versions": prepared.plan.versions(),
        # `apply --plan` re-plans with the same selection, so that it applies the part that was planned.
        "selection": (prepared.plan.selection or Selection()).as_json(),
        "plan": as_json(prepared.plan),
    }
    try:
        Path(path).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write the plan to {path}: {e.strerror}") from e


def load_saved(path: str) -> dict[str, Any]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read the saved plan {path}: {e.strerror}") from e
    except ValueError as e:
        raise ConfigError(f"{path} is not a saved plan (invalid JSON: {e})") from e
    if not isinstance(document, dict) or document.get("format") != SAVED_PLAN_FORMAT:
        raise ConfigError(f"{path} is not a saved plan written by `tenancy plan --out`")
    import jsonschema  # type: ignore[import-untyped]  # here: 0.15 s that no plan without --plan pays

    errors = list(jsonschema.Draft202012Validator(_SAVED_PLAN_SCHEMA).iter_errors(document))
    deepest = max((len(e.path) for e in errors), default=0)  # the most precise field is the one named
    problem = jsonschema.exceptions.best_match(e for e in errors if len(e.path) == deepest)
    if problem is not None:
        field_name = ".".join(str(p) for p in problem.absolute_path) or "the document"
        raise ConfigError(
            f"{path} is not a saved plan as `tenancy plan --out` writes it ({field_name}: {problem.message}); "
            f"make it again with `tenancy plan PATH... --out {path}`"
        )
    return document


# What `prepare_saved` reads of a saved plan (`save` writes it): a plan edited by hand is refused whole.
_STRINGS = {"type": "array", "items": {"type": "string"}}
_SAVED_PLAN_SCHEMA = {
    "type": "object",
    "required": ["backend", "stack", "paths", "manifest_digest", "versions"],
    "properties": {
        "backend": {"type": "string"},
        "stack": {"type": ["string", "null"]},
        "paths": _STRINGS,
        "manifest_digest": {"type": "string"},
        "versions": {
            "type": "object",
            "propertyNames": {"pattern": KEY_ID_PATTERN},
            "additionalProperties": {"type": ["string", "null"]},
        },
        "selection": {
            "type": "object",
            "required": ["targets", "excludes", "selector"],
            "properties": {"targets": _STRINGS, "excludes": _STRINGS, "selector": {"type": ["string", "null"]}},
        },
    },
}


def prepare_saved(
    saved: dict[str, Any], client: Client, backend: str, allow_outside: bool = False, policy_paths: Sequence[str] = ()
) -> Prepared:
    """Re-plan a saved plan and refuse, changing nothing, if anything moved since it was made."""
    if saved["backend"] != backend:
        raise ConfigError(
            f"the saved plan was made against {saved['backend']}, not {backend}; pass --backend to match"
        )
    selection = Selection.from_json(saved.get("selection"))
    try:
        prepared = prepare(saved["paths"], client, backend, stack_option=saved["stack"], allow_outside=allow_outside,
                           policy_paths=policy_paths, selection=selection or None, recall=False)
    except ManifestError as e:
        raise StalePlanError(["the manifests no longer validate:\n" + str(e)]) from e
    moved = []
    if prepared.digest != saved["manifest_digest"]:
        moved.append("the manifests changed since the plan was made")
    was = saved["versions"]
    live = _live_versions(prepared.live, set(was))
    for key_id in sorted(was):
        if was[key_id] != live.get(key_id):
            moved.append(_moved(key_id, was[key_id], live.get(key_id)))
    for key_id in sorted(set(prepared.plan.versions()) - set(was)):
        moved.append(f"{_describe(key_id)}: now needs a change the saved plan does not hold")
    if moved:
        raise StalePlanError(moved)
    return prepared


def _live_versions(live: Sequence[dict[str, Any]], wanted: set[str]) -> dict[str, str | None]:
    """The backend's resourceVersion now of each wanted resource (absent ones left out)."""
    found = by_key(live)
    out = {}
    for key_id in wanted:
        document = found.get(ResourceKey(*key_id.split("/", 2)))
        if document is not None:
            out[key_id] = (document.get("metadata") or {}).get("resourceVersion")
    return out


def _moved(key_id: str, was: str | None, now: str | None) -> str:
    what = "created since" if was is None else "deleted since" if now is None else "changed since"
    return f"{_describe(key_id)}: {what} (resourceVersion {_version(was)} → {_version(now)})"


def _describe(key_id: str) -> str:
    kind, organization, name = key_id.split("/", 2)
    return str(ResourceKey(kind, organization, name))


def _version(value: Any) -> str:
    return "absent" if value is None else str(value)


__all__ = [
    "Prepared",
    "load_policies",
    "load_saved",
    "prepare",
    "prepare_saved",
    "remember_applied",
    "secrets_to_send",
    "require_policies_pass",
    "resolve_stack",
    "save",
]
