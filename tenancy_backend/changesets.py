"""Changesets: a list of operations parsed as a whole (every error of every operation at once), then
written in order inside one transaction, runs of consecutive creates in bulk (`writes.create_many`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tenancy_kinds import ResourceKey
from tenancy_backend.errors import Invalid, ServiceError
from tenancy_backend.parsing import Parsed, kind_named, parse_document
from tenancy_backend.transaction import Tx, is_slug
from tenancy_backend.writes import create, create_many, remove, update

MAX_OPERATIONS = 10_000
OPERATIONS = ("create", "update", "delete")

Results = list[dict[str, Any] | None]


@dataclass(frozen=True)
class Step:
    op: str
    key: ResourceKey
    parsed: Parsed | None
    if_match: str | None


def parse_operations(operations: Any, pepper: int | None) -> list[Step]:
    if not isinstance(operations, list) or not operations:
        message = "operations must be a non-empty list of {op, kind, organization, name, document, ifMatch}"
        raise Invalid(message, [{"path": "operations", "message": message}])
    if len(operations) > MAX_OPERATIONS:
        message = f"a changeset holds at most {MAX_OPERATIONS} operations (got {len(operations)}); split it"
        raise Invalid(message, [{"path": "operations", "message": message}])
    steps: list[Step] = []
    errors: list[dict[str, str]] = []
    for index, raw in enumerate(operations):
        try:
            steps.append(_parse_step(raw, pepper))
        except ServiceError as e:
            prefix = f"operations[{index}]"
            errors.extend(
                {"path": f"{prefix}.{err['path']}" if err["path"] else prefix, "message": err["message"]}
                for err in (e.errors or [{"path": "", "message": e.detail}])
            )
    if errors:
        raise Invalid(f"invalid changeset: {errors[0]['path']}: {errors[0]['message']}", errors)
    return steps


def _parse_step(raw: Any, pepper: int | None) -> Step:
    if not isinstance(raw, dict):
        raise Invalid("an operation must be an object", [{"path": "", "message": "expected an object"}])
    unknown = sorted(set(raw) - {"op", "kind", "organization", "name", "document", "ifMatch"})
    if unknown:
        raise Invalid("unknown fields", [{"path": u, "message": "unknown field: remove it"} for u in unknown])
    op = raw.get("op")
    if op not in OPERATIONS:
        raise Invalid("bad op", [{"path": "op", "message": f"op must be one of {', '.join(OPERATIONS)}"}])
    kind = kind_named(raw.get("kind"))
    organization = raw.get("organization") if kind.scoped else None
    if kind.scoped and not is_slug(organization):
        raise Invalid("bad organization", [{"path": "organization", "message": "the owning organization's name"}])
    name = raw.get("name")
    if_match = raw.get("ifMatch")
    if if_match is not None and not isinstance(if_match, str | int):
        raise Invalid("bad ifMatch", [{"path": "ifMatch", "message": "a resourceVersion string"}])
    if op == "delete":
        if not is_slug(name):
            raise Invalid("bad name", [{"path": "name", "message": "the name of the resource to delete"}])
        key = ResourceKey(kind.name, organization or "", str(name))
        return Step(op, key, None, None if if_match is None else str(if_match))
    if name is not None and not isinstance(name, str):
        raise Invalid("bad name", [{"path": "name", "message": "a resource name"}])
    p = _prefixed("document", lambda: parse_document(kind, organization, raw.get("document"), name=name, pepper=pepper))
    return Step(op, p.key, p, None if if_match is None else str(if_match))


def _prefixed(prefix: str, call: Callable[[], Parsed]) -> Parsed:
    try:
        return call()
    except ServiceError as e:
        e.errors = [
            {"path": f"{prefix}.{x['path']}" if x["path"] else prefix, "message": x["message"]} for x in e.errors
        ]
        raise


def write(tx: Tx, steps: list[Step]) -> Results:
    """Every step written in order: runs of creates in bulk when they can be, the rest one by one (the
    rows a run of updates rewrites read beforehand in a few queries)."""
    results: Results = []
    for start, run in _runs(steps):
        if len(run) > 1 and run[0].op == "create":
            created = create_many(tx, [s.parsed for s in run])  # type: ignore[misc]
            if created is not None:
                results.extend(created)
                continue
        elif len(run) > 1:
            tx.prefetch([s.key for s in run])
        for index, step in enumerate(run, start):
            results.append(_run_step(tx, index, step))
    return results


def _runs(steps: list[Step]) -> Iterator[tuple[int, list[Step]]]:
    """The steps cut into runs of consecutive creates (bulk candidates), runs of consecutive updates and
    single deletions, with the index of each run's first step."""
    start = 0
    while start < len(steps):
        end = start + 1
        if steps[start].op != "delete":
            while end < len(steps) and steps[end].op == steps[start].op:
                end += 1
        yield start, steps[start:end]
        start = end


def _run_step(tx: Tx, index: int, step: Step) -> dict[str, Any] | None:
    try:
        if step.op == "create":
            assert step.parsed is not None
            return create(tx, step.parsed)
        if step.op == "update":
            assert step.parsed is not None
            return update(tx, step.parsed, step.if_match)
        return remove(tx, kind_named(step.key.kind), step.key.organization, step.key.name, step.if_match)
    except ServiceError as e:
        prefix = f"operations[{index}]"
        e.errors = [
            {"path": f"{prefix}.{x['path']}" if x["path"] else prefix, "message": x["message"]} for x in e.errors
        ] or [{"path": prefix, "message": e.detail}]
        e.detail = f"operation {index} ({step.op} {step.key}): {e.detail}"
        raise


__all__ = ["MAX_OPERATIONS", "OPERATIONS", "Results", "Step", "parse_operations", "write"]
