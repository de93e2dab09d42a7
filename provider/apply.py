"""Executes a Plan: the only code that changes the world.

Changes run in the plan's order (its graph of units: `provider.ordering`), independent ones in parallel;
a unit of several steps (a replace and what must happen between its delete and its create) is one
changeset. Every PUT and DELETE
carries the live `resourceVersion` read at plan time as `If-Match`, so nothing is overwritten that moved
since. A failure stops the dependants of what failed (reported as skipped, naming the cause), everything
else finishes, and every change's outcome is reported. Running apply again converges.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from provider.client import Client, changeset_operation
from provider.diff import desired_labels
from provider.errors import TenancyError, TransportError, Unavailable
from provider.operations import Adopt, Create, Delete, Operation, Replace, Update
from provider.ordering import Graph, Part, Unit
from provider.plan import Plan
from provider.secrets import SecretValues
from tenancy_kinds import SERVER_METADATA



class Status(str, Enum):
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(slots=True)
class Outcome:
    op: Operation
    status: Status
    message: str = ""
    result: dict[str, Any] | None = None


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.status is Status.APPLIED for o in self.outcomes)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def summary(self) -> str:
        return (
            f"Apply {'complete' if self.ok else 'failed'}: {self.count(Status.APPLIED)} applied, "
            f"{self.count(Status.FAILED)} failed, {self.count(Status.SKIPPED)} skipped."
        )


def payload(op: Operation, stack: str | None, secrets: dict[str, str] | None = None) -> dict[str, Any]:
    """The document sent for a create or update: declared spec, stack label, secrets only when due."""
    assert op.desired is not None
    # New top-level, metadata and spec dicts (what is changed below); deeper values are shared, never changed.
    document = {k: v for k, v in op.desired.items() if k != "status"}
    metadata = document["metadata"] = dict(document.get("metadata") or {})
    for name in SERVER_METADATA:
        metadata.pop(name, None)
    metadata["labels"] = desired_labels(op.desired, stack, op.live)
    spec = document["spec"] = dict(document.get("spec") or {})
    for name in op.kind.sensitive:
        spec.pop(name, None)
        if op.sends_secret and secrets and name in secrets:
            spec[name] = secrets[name]
    return document


Secrets = dict[str, str] | None
Body = list[dict[str, Any]]


def _create_body(op: Operation, stack: str | None, secrets: Secrets) -> Body:
    return [changeset_operation("create", op.key, document=payload(op, stack, secrets))]


def _update_body(op: Operation, stack: str | None, secrets: Secrets) -> Body:
    return [changeset_operation("update", op.key, document=payload(op, stack, secrets), if_match=op.live_version)]


def _delete_body(op: Operation, stack: str | None, secrets: Secrets) -> Body:
    return [changeset_operation("delete", op.key, if_match=op.live_version)]


def _replace_body(op: Operation, stack: str | None, secrets: Secrets) -> Body:
    return _delete_body(op, stack, secrets) + _create_body(op, stack, secrets)


def _create(op: Operation, client: Client, stack: str | None, secrets: Secrets) -> dict[str, Any] | None:
    return client.create(payload(op, stack, secrets))


def _update(op: Operation, client: Client, stack: str | None, secrets: Secrets) -> dict[str, Any] | None:
    return client.update(payload(op, stack, secrets), if_match=op.live_version)


def _replace(op: Operation, client: Client, stack: str | None, secrets: Secrets) -> dict[str, Any] | None:
    # One changeset: the name and the references to it stay valid throughout.
    results = client.changeset(_replace_body(op, stack, secrets))
    return results[-1] if results else None


def _delete(op: Operation, client: Client, stack: str | None, secrets: Secrets) -> dict[str, Any] | None:
    return client.delete(op.key, if_match=op.live_version)


@dataclass(frozen=True)
class Executor:
    """How one type of operation is carried out: alone (one request), and as changeset operations (in a
    batch, or a unit of several steps)."""

    alone: Callable[[Operation, Client, str | None, Secrets], dict[str, Any] | None]
    body: Callable[[Operation, str | None, Secrets], Body]


EXECUTORS: dict[type[Operation], Executor] = {
    Create: Executor(_create, _create_body),
    Update: Executor(_update, _update_body),
    Adopt: Executor(_update, _update_body),
    Replace: Executor(_replace, _replace_body),
    Delete: Executor(_delete, _delete_body),
}
PARTS: dict[Part, Callable[[Operation, str | None, Secrets], Body]] = {
    Part.DELETE: _delete_body,  # a replace's two steps, when something must come between them
    Part.CREATE: _create_body,
}


def unit_body(graph: Graph, unit: Unit, stack: str | None, secrets: SecretValues) -> Body:
    """A unit's steps as changeset operations, in order."""
    body: Body = []
    for step in unit:
        op = graph.operations[step.op]
        build = EXECUTORS[type(op)].body if step.part is Part.WHOLE else PARTS[step.part]
        body.extend(build(op, stack, secrets.get(op.key)))
    return body


def apply(
    plan: Plan,
    client: Client,
    *,
    secrets: SecretValues | None = None,
    parallelism: int = 10,
    batch_size: int = 1,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Report:
    """Run every operation of the plan, in its order; never raises for a failed change, reports it instead.

    With `batch_size` > 1, units whose dependencies are met are sent together as changesets of up to that
    many (one request and one transaction each); a batch the backend refuses is retried unit by unit, so
    that every change still gets its own outcome.
    """
    runner = _Runner(plan, client, secrets or {}, on_outcome)
    runner.run(max(1, parallelism), max(1, batch_size))
    return Report([runner.outcomes[id(op)] for op in plan.operations])


def apply_atomically(plan: Plan, client: Client, *, secrets: SecretValues | None = None) -> Report:
    """The whole plan as one changeset: everything applies, or nothing does."""
    graph = plan.graph
    body = [item for u in graph.order() for item in unit_body(graph, graph.units[u], plan.stack, secrets or {})]
    try:
        client.changeset(body)
    except TenancyError as e:
        return Report([Outcome(op, Status.FAILED, f"atomic apply rolled back: {e}") for op in plan.operations])
    return Report([Outcome(op, Status.APPLIED) for op in plan.operations])


class _Runner:
    """Runs a plan's units as their dependencies finish: independent ones in parallel, ready ones batched."""

    def __init__(
        self, plan: Plan, client: Client, secrets: SecretValues, on_outcome: Callable[[Outcome], None] | None
    ) -> None:
        self.plan, self.graph, self.client, self.secrets = plan, plan.graph, client, secrets
        self.on_outcome = on_outcome
        self.outcomes: dict[int, Outcome] = {}  # by id() of the operation
        self.done: set[int] = set()  # units with an outcome
        self.dependants = self.graph.dependants()
        self.remaining = [len(w) for w in self.graph.waits_for]
        # Set once the backend could not be reached through every retry: nothing more is started, or each
        # remaining change would wait out the client's whole retry budget in turn (minutes, for nothing).
        self.unreachable: TransportError | None = None

    def _operations(self, u: int) -> list[Operation]:
        return self.graph.unit_operations(u)

    def _each(self, u: int, status: Status, message: str = "", result: dict[str, Any] | None = None) -> list[Outcome]:
        return [Outcome(op, status, message, result) for op in self._operations(u)]

    def _not_attempted(self, u: int) -> list[Outcome]:
        return self._each(u, Status.SKIPPED, f"not attempted: {self.unreachable}; run apply again once it answers")

    def _execute(self, u: int) -> list[Outcome]:
        if self.unreachable is not None:
            return self._not_attempted(u)
        ops = self._operations(u)
        try:
            if len(ops) == 1:
                op = ops[0]
                result = EXECUTORS[type(op)].alone(op, self.client, self.plan.stack, self.secrets.get(op.key))
            else:  # a replace with what must happen between its delete and its create: one changeset
                self.client.changeset(unit_body(self.graph, self.graph.units[u], self.plan.stack, self.secrets))
                result = None
        except TransportError as e:
            self.unreachable = e
            return self._each(u, Status.FAILED, str(e))
        except TenancyError as e:
            return self._each(u, Status.FAILED, str(e))
        return self._each(u, Status.APPLIED, result=result)

    def _execute_batch(self, batch: list[int]) -> list[tuple[int, list[Outcome]]]:
        if len(batch) == 1:
            return [(batch[0], self._execute(batch[0]))]
        if self.unreachable is not None:
            return [(u, self._not_attempted(u)) for u in batch]
        units = self.graph.units
        body = [item for u in batch for item in unit_body(self.graph, units[u], self.plan.stack, self.secrets)]
        try:
            self.client.changeset(body)
        except Unavailable as e:
            # Still unavailable after every retry: unit by unit would only wait as long again, per unit.
            if isinstance(e, TransportError):
                self.unreachable = e
            return [(u, self._each(u, Status.FAILED, str(e))) for u in batch]
        except TenancyError:
            # The batch rolled back as a whole: retry each unit alone, so each gets its own outcome.
            return [(u, self._execute(u)) for u in batch]
        return [(u, self._each(u, Status.APPLIED)) for u in batch]

    def _record(self, u: int, outcomes: list[Outcome]) -> None:
        self.done.add(u)
        for outcome in outcomes:
            self.outcomes[id(outcome.op)] = outcome
            if self.on_outcome:
                self.on_outcome(outcome)

    def _skip_dependants(self, failed: int) -> None:
        cause = ", ".join(str(op.key) for op in self._operations(failed))
        stack = [failed]
        while stack:
            for j in sorted(self.dependants[stack.pop()]):
                if j not in self.done:
                    self._record(j, self._each(j, Status.SKIPPED, f"skipped because {cause} failed"))
                    stack.append(j)

    def run(self, parallelism: int, batch_size: int) -> None:
        order = self.graph.order()
        self.position = {u: n for n, u in enumerate(order)}
        # What is ready, as a heap in apply order (re-sorting a list after every batch is quadratic).
        ready = [(self.position[u], u) for u, n in enumerate(self.remaining) if n == 0]
        heapq.heapify(ready)
        with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="apply") as pool:
            running: set[Future[list[tuple[int, list[Outcome]]]]] = set()
            while ready or running:
                while ready and len(running) < parallelism:
                    # Spread what is ready over the free workers, at most batch_size units each.
                    size = max(1, min(batch_size, -(-len(ready) // (parallelism - len(running)))))
                    taken = [heapq.heappop(ready)[1] for _ in range(min(size, len(ready)))]
                    batch = [u for u in taken if u not in self.done]
                    if batch:
                        running.add(pool.submit(self._execute_batch, batch))
                if not running:
                    continue
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    for u, outcomes in future.result():
                        self._finish(u, outcomes, ready)

    def _finish(self, u: int, outcomes: list[Outcome], ready: list[tuple[int, int]]) -> None:
        self._record(u, outcomes)
        if any(o.status is not Status.APPLIED for o in outcomes):
            self._skip_dependants(u)
            return
        for j in self.dependants[u]:
            self.remaining[j] -= 1
            if self.remaining[j] == 0 and j not in self.done:
                heapq.heappush(ready, (self.position[j], j))
