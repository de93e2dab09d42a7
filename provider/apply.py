"""Executes a Plan: the only code that changes the world.

Changes run in dependency order (`ordering.build`), independent ones in parallel. Every PUT and DELETE
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
from provider.errors import TenancyError, TransportError, Unavailable
from tenancy_kinds import SERVER_METADATA, ResourceKey
from provider.ordering import Graph, build
from provider.plan import Adopt, Create, Delete, Operation, Plan, Replace, Update, desired_labels

SecretValues = dict[ResourceKey, dict[str, str]]


class Status(str, Enum):
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
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


def _create(op: Operation, client: Client, stack: str | None, secrets: dict[str, str] | None) -> dict[str, Any] | None:
    return client.create(payload(op, stack, secrets))


def _update(op: Operation, client: Client, stack: str | None, secrets: dict[str, str] | None) -> dict[str, Any] | None:
    return client.update(payload(op, stack, secrets), if_match=op.live_version)


def _replace(op: Operation, client: Client, stack: str | None, secrets: dict[str, str] | None) -> dict[str, Any] | None:
    # One changeset: the name and the references to it stay valid throughout.
    results = client.changeset(
        [
            changeset_operation("delete", op.key, if_match=op.live_version),
            changeset_operation("create", op.key, document=payload(op, stack, secrets)),
        ]
    )
    return results[-1] if results else None


def _delete(op: Operation, client: Client, stack: str | None, secrets: dict[str, str] | None) -> dict[str, Any] | None:
    return client.delete(op.key, if_match=op.live_version)


EXECUTORS: dict[type[Operation], Callable[[Operation, Client, str | None, dict[str, str] | None], dict[str, Any] | None]] = {
    Create: _create,
    Update: _update,
    Adopt: _update,
    Replace: _replace,
    Delete: _delete,
}


def changeset_operations(op: Operation, stack: str | None, secrets: dict[str, str] | None) -> list[dict[str, Any]]:
    """The same change as the executors above, as changeset operations (for batches)."""
    if isinstance(op, Create):
        return [changeset_operation("create", op.key, document=payload(op, stack, secrets))]
    if isinstance(op, (Update, Adopt)):
        return [changeset_operation("update", op.key, document=payload(op, stack, secrets), if_match=op.live_version)]
    if isinstance(op, Replace):
        return [
            changeset_operation("delete", op.key, if_match=op.live_version),
            changeset_operation("create", op.key, document=payload(op, stack, secrets)),
        ]
    return [changeset_operation("delete", op.key, if_match=op.live_version)]


def apply(
    plan: Plan,
    client: Client,
    *,
    secrets: SecretValues | None = None,
    parallelism: int = 10,
    batch_size: int = 1,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Report:
    """Run every operation of the plan; never raises for a failed change, reports it instead.

    With `batch_size` > 1, changes whose dependencies are met are sent together as changesets of up to
    that many (one request and one transaction each); a batch the backend refuses is retried change by
    change, so that every change still gets its own outcome.
    """
    graph = build(plan.operations)
    order = graph.order()
    runner = _Runner(plan, graph, client, secrets or {}, on_outcome)
    runner.run(order, max(1, parallelism), max(1, batch_size))
    return Report([runner.outcomes[i] for i in order])


def apply_atomically(plan: Plan, client: Client, *, secrets: SecretValues | None = None) -> Report:
    """The whole plan as one changeset: everything applies, or nothing does."""
    ordered_ops = [plan.operations[i] for i in build(plan.operations).order()]
    operations = [
        item for op in ordered_ops for item in changeset_operations(op, plan.stack, (secrets or {}).get(op.key))
    ]
    try:
        client.changeset(operations)
    except TenancyError as e:
        return Report([Outcome(op, Status.FAILED, f"atomic apply rolled back: {e}") for op in ordered_ops])
    return Report([Outcome(op, Status.APPLIED) for op in ordered_ops])


class _Runner:
    def __init__(
        self,
        plan: Plan,
        graph: Graph,
        client: Client,
        secrets: SecretValues,
        on_outcome: Callable[[Outcome], None] | None,
    ) -> None:
        self.plan, self.graph, self.client, self.secrets = plan, graph, client, secrets
        self.on_outcome = on_outcome
        self.outcomes: dict[int, Outcome] = {}
        self.dependants = graph.dependants()
        self.remaining = [len(w) for w in graph.waits_for]
        # Set once the backend could not be reached through every retry: nothing more is started, or each
        # remaining change would wait out the client's whole retry budget in turn (minutes, for nothing).
        self.unreachable: TransportError | None = None

    def _not_attempted(self, op: Operation) -> Outcome:
        return Outcome(op, Status.SKIPPED, f"not attempted: {self.unreachable}; run apply again once it answers")

    def _execute(self, i: int) -> Outcome:
        op = self.graph.operations[i]
        if self.unreachable is not None:
            return self._not_attempted(op)
        try:
            result = EXECUTORS[type(op)](op, self.client, self.plan.stack, self.secrets.get(op.key))
        except TransportError as e:
            self.unreachable = e
            return Outcome(op, Status.FAILED, str(e))
        except TenancyError as e:
            return Outcome(op, Status.FAILED, str(e))
        return Outcome(op, Status.APPLIED, result=result)

    def _execute_batch(self, batch: list[int]) -> list[tuple[int, Outcome]]:
        if len(batch) == 1:
            return [(batch[0], self._execute(batch[0]))]
        ops = [self.graph.operations[i] for i in batch]
        if self.unreachable is not None:
            return [(i, self._not_attempted(op)) for i, op in zip(batch, ops)]
        body = [item for op in ops for item in changeset_operations(op, self.plan.stack, self.secrets.get(op.key))]
        try:
            self.client.changeset(body)
        except Unavailable as e:
            # Still unavailable after every retry: change by change would only wait as long again, per change.
            if isinstance(e, TransportError):
                self.unreachable = e
            return [(i, Outcome(op, Status.FAILED, str(e))) for i, op in zip(batch, ops)]
        except TenancyError:
            # The batch rolled back as a whole: retry each change alone, so each gets its own outcome.
            return [(i, self._execute(i)) for i in batch]
        return [(i, Outcome(op, Status.APPLIED)) for i, op in zip(batch, ops)]

    def _record(self, i: int, outcome: Outcome) -> None:
        self.outcomes[i] = outcome
        if self.on_outcome:
            self.on_outcome(outcome)

    def _skip_dependants(self, failed: int) -> None:
        cause = self.graph.operations[failed].key
        stack = [failed]
        while stack:
            for j in sorted(self.dependants[stack.pop()]):
                if j not in self.outcomes:
                    reason = f"skipped because {cause} failed"
                    self._record(j, Outcome(self.graph.operations[j], Status.SKIPPED, reason))
                    stack.append(j)

    def run(self, order: list[int], parallelism: int, batch_size: int) -> None:
        self.position = {i: n for n, i in enumerate(order)}
        # What is ready, as a heap in apply order (re-sorting a list after every batch is quadratic).
        ready = [(self.position[i], i) for i, n in enumerate(self.remaining) if n == 0]
        heapq.heapify(ready)
        with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="apply") as pool:
            running: set[Future[list[tuple[int, Outcome]]]] = set()
            while ready or running:
                while ready and len(running) < parallelism:
                    # Spread what is ready over the free workers, at most batch_size changes each.
                    size = max(1, min(batch_size, -(-len(ready) // (parallelism - len(running)))))
                    taken = [heapq.heappop(ready)[1] for _ in range(min(size, len(ready)))]
                    batch = [i for i in taken if i not in self.outcomes]
                    if batch:
                        running.add(pool.submit(self._execute_batch, batch))
                if not running:
                    continue
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    for i, outcome in future.result():
                        self._finish(i, outcome, ready)

    def _finish(self, i: int, outcome: Outcome, ready: list[tuple[int, int]]) -> None:
        self._record(i, outcome)
        if outcome.status is not Status.APPLIED:
            self._skip_dependants(i)
            return
        for j in self.dependants[i]:
            self.remaining[j] -= 1
            if self.remaining[j] == 0 and j not in self.outcomes:
                heapq.heappush(ready, (self.position[j], j))
