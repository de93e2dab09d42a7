"""The apply order of a plan: a dependency graph over its steps, contracted into units of one request each.

Pure: operations in, a graph out. Every operation is one step, except a Replace: its delete and its create
are two steps, so that what must happen between them can (a customer moving to a new domain: its users'
old addresses go, the organization swaps its domains, the users come back on the new domain, and the old
domain passes to another organization, all in one apply). The rules, each chosen so that every
intermediate state is valid on the backend, read the facts of the table of kinds:

1. A step that makes a resource exist or changes it waits for the step that makes what it names exist
   (an organization, a parent, a team member, an alias's user).
2. The deletion of a resource waits for every change to a resource that names it today (teams and
   aliases let go of a user before the user goes; children go before their organization).
3. A step that takes a unique value (an address, a domain, a display name among siblings, a quota's
   domain) waits for the step that gives it up.
4. Limits: raising a domain's quota comes before the mailboxes it makes room for; lowering it comes after
   the mailboxes that leave the domain. A new quota comes after the mailboxes that leave its domain, then
   before those that arrive, each where that makes no cycle (without a quota a domain has no limit: a
   newcomer that a leaver waits for goes first, the quota last).
5. An organization that drops domains, or falls back to a plan that cannot hold users, waits for the
   steps that take its resources off those domains or away.
6. On a domain whose quota does not move, mailboxes that leave go before those that arrive (where that
   makes no cycle).
7. A replace's create waits for its delete.

Units: a replace's delete, its create and every step that must come between them form one unit, sent as
one changeset (all or nothing), so that the references to the replaced resource stay valid throughout;
every other step is a unit of its own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from provider.errors import PlanError
from provider.operations import Delete, Operation, Replace
from tenancy_kinds import KINDS, ORGANIZATION, ResourceKey, plan_allows_gated


class Part(str, Enum):
    WHOLE = "whole"  # the operation as one step
    DELETE = "delete"  # a replace's first step
    CREATE = "create"  # a replace's second step


@dataclass(frozen=True, slots=True)
class Step:
    op: int  # the operation's index in the plan's list
    part: Part


Unit = tuple[Step, ...]


def references(document: dict[str, Any] | None) -> set[ResourceKey]:
    """Every resource a document names, read from the table of kinds."""
    if not document:
        return set()
    kind = KINDS[document["kind"]]
    meta = document.get("metadata") or {}
    spec = document.get("spec") or {}
    organization = str(meta.get("organization") or "")
    found: set[ResourceKey] = set()
    if kind.scoped and organization:
        found.add(ResourceKey(ORGANIZATION.name, "", organization))
    for ref in kind.references:
        value = spec.get(ref.field)
        names = value if ref.many and isinstance(value, list) else [value]
        scope = "" if not KINDS[ref.kind].scoped else organization
        found.update(ResourceKey(ref.kind, scope, str(n)) for n in names if n)
    return found


def claims(document: dict[str, Any] | None) -> set[tuple[str, str]]:
    """The unique values a document holds (addresses, domains, display names...), from the table of kinds."""
    return set(_Facts(document).claims)


_UNREAD: Any = object()


class _Facts:
    """What the table of kinds says about one document (None: absent), each fact read at most once: the
    edges below ask several of them of every step, and a plan of 100,000 resources has 100,000 steps. The
    effective spec each fact is read from is not kept (a plan's worth of them is tens of MiB), nor are the
    references (each document's are read once, where its edges are drawn: 45 MiB at 100,000 resources)."""

    __slots__ = ("document", "kind", "_claims", "_mailbox", "_limit", "_owned")

    def __init__(self, document: dict[str, Any] | None) -> None:
        self.document = document or None
        self.kind = KINDS[document["kind"]] if document else None
        self._claims = self._mailbox = self._limit = self._owned = _UNREAD

    @property
    def effective(self) -> dict[str, Any] | None:
        if self.kind is None or self.document is None:
            return None
        return self.kind.effective(self.document.get("spec") or {})

    @property
    def claims(self) -> frozenset[tuple[str, str]]:
        if self._claims is _UNREAD:
            kind = self.kind
            self._claims = frozenset(kind.claim_keys(self.effective or {})) if kind and kind.claims else frozenset()
        return self._claims  # type: ignore[no-any-return]

    @property
    def mailbox(self) -> str | None:
        if self._mailbox is _UNREAD:
            kind = self.kind
            self._mailbox = kind.mailbox_domain(self.effective or {}) if kind and kind.mailbox else None
        return self._mailbox  # type: ignore[no-any-return]

    @property
    def limit(self) -> tuple[str, int] | None:
        if self._limit is _UNREAD:
            kind = self.kind
            self._limit = kind.limit_of(self.effective or {}) if kind and kind.limit else None
        return self._limit  # type: ignore[no-any-return]

    @property
    def owned(self) -> str | None:
        if self._owned is _UNREAD:
            kind = self.kind
            self._owned = kind.owned_domain(self.effective or {}) if kind and kind.on_own_domain else None
        return self._owned  # type: ignore[no-any-return]


@dataclass
class Graph:
    """`waits_for[u]` holds the units that must finish before unit `u` starts; each unit is a sequence of
    steps of `operations`, sent as one request (one step) or one changeset (several)."""

    operations: list[Operation]
    units: list[Unit]
    waits_for: list[tuple[int, ...]]  # tuples, not the sets they are built in: a million empty sets are 216 MB
    # The order, computed once (a plan asks it, and apply again): a graph is not changed once built.
    _order: list[int] | None = field(default=None, init=False, repr=False, compare=False)

    def dependants(self) -> list[set[int]]:
        out: list[set[int]] = [set() for _ in self.units]
        for u, deps in enumerate(self.waits_for):
            for d in deps:
                out[d].add(u)
        return out

    def order(self) -> list[int]:
        """The units in a deterministic topological order: constructive changes by rank, deletions last,
        in reverse rank."""
        if self._order is None:
            self._order = self._ordered()
        return list(self._order)

    def _ordered(self) -> list[int]:
        # Each unit's rank among all by (sort key, index), sorted once: the heap then compares integers.
        by_key = sorted(range(len(self.units)), key=lambda u: (self._sort_key(u), u))
        rank = [0] * len(self.units)
        for n, u in enumerate(by_key):
            rank[u] = n
        remaining = [len(d) for d in self.waits_for]
        dependants = self.dependants()
        ready = [rank[u] for u, n in enumerate(remaining) if n == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            u = by_key[heapq.heappop(ready)]
            out.append(u)
            for j in dependants[u]:
                remaining[j] -= 1
                if remaining[j] == 0:
                    heapq.heappush(ready, rank[j])
        assert len(out) == len(self.units), "units are acyclic once the steps are"
        return out

    def operations_in_order(self) -> Iterator[Operation]:
        """Each operation once, where its first step comes in the apply order."""
        seen: set[int] = set()
        for u in self.order():
            for step in self.units[u]:
                if step.op not in seen:
                    seen.add(step.op)
                    yield self.operations[step.op]

    def unit_operations(self, u: int) -> list[Operation]:
        return [self.operations[i] for i in dict.fromkeys(step.op for step in self.units[u])]

    def with_what_they_wait_for(self, units: set[int]) -> set[int]:
        """These units and every unit they wait for, directly or not."""
        return _reach(units, self.waits_for)

    def with_what_waits_for_them(self, units: set[int]) -> set[int]:
        """These units and every unit that waits for them, directly or not."""
        return _reach(units, self.dependants())

    def restricted(self, kept: set[int]) -> Graph:
        """The graph of the kept units alone: their operations (renumbered, in their order here), their steps,
        and the waits among them. `kept` must hold whatever its units wait for, or their order would lose a
        dependency."""
        units = sorted(kept)
        assert all(kept.issuperset(self.waits_for[u]) for u in units), "a restriction keeps what its units wait for"
        ops = sorted({step.op for u in units for step in self.units[u]})
        renumbered = {old: new for new, old in enumerate(ops)}
        position = {old: new for new, old in enumerate(units)}
        return Graph(
            [self.operations[i] for i in ops],
            [tuple(Step(renumbered[step.op], step.part) for step in self.units[u]) for u in units],
            [tuple(position[d] for d in self.waits_for[u]) for u in units],
        )

    def _sort_key(self, u: int) -> tuple[int, int, str, str]:
        return _sort_key(self.operations[self.units[u][0].op])


def _sort_key(op: Operation) -> tuple[int, int, str, str]:
    rank = op.kind.rank
    if isinstance(op, Delete):
        return (1, -rank, op.key.organization, op.key.name)
    return (0, rank, op.key.organization, op.key.name)


# --- steps ----------------------------------------------------------------------------------------


_ABSENT = _Facts(None)


class _StepView:
    """A step with the resource's document before and after it (None: absent), and their facts."""

    __slots__ = ("step", "op", "before", "after", "was", "will")

    def __init__(self, step: Step, op: Operation, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        self.step, self.op, self.before, self.after = step, op, before, after
        self.was = _Facts(before) if before else _ABSENT
        self.will = _Facts(after) if after else _ABSENT


def _steps(operations: list[Operation]) -> list[_StepView]:
    views = []
    for i, op in enumerate(operations):
        if isinstance(op, Replace):
            views.append(_StepView(Step(i, Part.DELETE), op, op.live, None))
            views.append(_StepView(Step(i, Part.CREATE), op, None, op.desired))
        else:
            views.append(_StepView(Step(i, Part.WHOLE), op, op.live, None if isinstance(op, Delete) else op.desired))
    return views


Edge = Callable[[int, int], None]


def build(operations: list[Operation]) -> Graph:
    """The dependency graph of a plan's operations, as units of steps."""
    steps = _steps(operations)
    waits: list[set[int]] = [set() for _ in steps]

    def edge(later: int, earlier: int) -> None:
        if later != earlier:
            waits[later].add(earlier)

    _reference_edges(steps, edge)
    _claim_edges(steps, edge)
    _limit_edges(steps, edge)
    _narrowing_edges(steps, edge)
    for s, view in enumerate(steps):
        if view.step.part is Part.CREATE:
            edge(s, s - 1)  # a replace's create follows its delete
    _make_room_first(steps, waits)
    order = _topological(steps, waits)
    return _contracted(operations, steps, waits, order)


def _reference_edges(steps: list[_StepView], edge: Edge) -> None:
    makes = {view.op.key: s for s, view in enumerate(steps) if view.after is not None}
    named_by: dict[ResourceKey, list[int]] = {}  # who names a resource today (their live documents)
    for s, view in enumerate(steps):
        if view.before is not None and view.step.part is not Part.CREATE:
            for ref in references(view.before):
                named_by.setdefault(ref, []).append(s)
    for s, view in enumerate(steps):
        if view.after is not None:
            for ref in references(view.after):
                target = makes.get(ref)
                if target is not None:
                    edge(s, target)
        elif view.step.part is Part.WHOLE:  # a deletion; a replace's delete keeps its name's references valid
            for j in named_by.get(view.op.key, ()):
                edge(s, j)


def _claim_edges(steps: list[_StepView], edge: Edge) -> None:
    """A step that takes a unique value waits for the step that gives it up."""
    released: dict[tuple[str, str], list[int]] = {}
    for s, view in enumerate(steps):
        if view.was.claims:  # only what a resource holds today can be released
            for claim in view.was.claims - view.will.claims:
                released.setdefault(claim, []).append(s)
    if not released:
        return
    for s, view in enumerate(steps):
        for claim in view.will.claims - view.was.claims:
            for giver in released.get(claim, ()):
                edge(s, giver)


def _limit_edges(steps: list[_StepView], edge: Edge) -> None:
    limits: dict[str, tuple[int, int | None]] = {}  # domain: (step, its change of the maximum; None: new)
    for s, view in enumerate(steps):
        new, old = view.will.limit, view.was.limit
        if new is None and old is not None:
            limits[old[0]] = (s, 1)  # no quota is no limit: removing one makes room
        elif new is not None:
            limits[new[0]] = (s, new[1] - old[1] if old is not None and old[0] == new[0] else None)
    if not limits:
        return
    for s, view in enumerate(steps):
        consumes, frees = view.will.mailbox, view.was.mailbox
        if consumes == frees:
            continue
        if consumes in limits:
            i, growth = limits[consumes]
            if growth is not None and growth > 0:
                edge(s, i)  # room first, then the mailbox (a new quota: `_make_room_first`)
        if frees in limits:
            i, growth = limits[frees]
            if growth is not None and growth < 0:
                edge(i, s)  # the mailbox leaves, then the quota shrinks


def _narrowing_edges(steps: list[_StepView], edge: Edge) -> None:
    """An organization dropping domains or its paid plan waits for what leaves those domains or goes."""
    for s, view in enumerate(steps):
        if view.op.kind.scoped or view.before is None or view.after is None:
            continue
        old, new = view.was.effective or {}, view.will.effective or {}
        dropped = {d.lower() for d in old.get("domains") or []} - {d.lower() for d in new.get("domains") or []}
        downgraded = plan_allows_gated(old) and not plan_allows_gated(new)
        if not dropped and not downgraded:
            continue
        organization = view.op.key.name
        for j, other in enumerate(steps):
            if other.op.key.organization != organization or other.before is None:
                continue
            gone = other.after is None
            if (downgraded and gone and other.op.kind.plan_gated) or (
                other.was.owned in dropped and other.will.owned not in dropped
            ):
                edge(s, j)


def _make_room_first(steps: list[_StepView], waits: list[set[int]]) -> None:
    """On a domain whose quota does not move, mailboxes that leave go before those that arrive; a new
    quota comes after the leavers of its domain, then before its newcomers.

    The quota may be full: a newcomer must not land before the address it replaces is freed. Added only
    where it creates no cycle (a team swapping members already orders these through its own update; a
    newcomer a leaver waits for then comes before the new quota, which was no limit).
    """
    arriving: dict[str, list[int]] = {}
    leaving: dict[str, list[int]] = {}
    for s, view in enumerate(steps):
        consumes, frees = view.will.mailbox, view.was.mailbox
        if consumes == frees:
            continue
        if consumes:
            arriving.setdefault(consumes, []).append(s)
        if frees:
            leaving.setdefault(frees, []).append(s)
    created = [(q, view.will.limit[0]) for q, view in enumerate(steps) if view.before is None and view.will.limit]
    for q, domain in created:
        for s in leaving.get(domain, ()):
            if not _waits_on(waits, s, q):
                waits[q].add(s)  # a new quota counts what is there: let the leavers go first
    for q, domain in created:
        for j in arriving.get(domain, ()):
            if not _waits_on(waits, q, j):
                waits[j].add(q)  # then the quota, then the newcomers (unless a leaver waits for one)
    if not leaving:
        return
    for domain, newcomers in arriving.items():
        for j in newcomers:
            for s in leaving.get(domain, ()):
                if s != j and not _waits_on(waits, s, j):
                    waits[j].add(s)


def _waits_on(waits: list[set[int]], start: int, target: int) -> bool:
    """Whether `start` already waits, directly or not, for `target`."""
    seen, stack = {start}, [start]
    while stack:
        for k in waits[stack.pop()]:
            if k == target:
                return True
            if k not in seen:
                seen.add(k)
                stack.append(k)
    return False


# --- order and units ------------------------------------------------------------------------------


def _topological(steps: list[_StepView], waits: list[set[int]]) -> list[int]:
    """A topological order of the steps, or PlanError naming a cycle."""
    remaining = [len(w) for w in waits]
    dependants: list[list[int]] = [[] for _ in steps]
    for s, deps in enumerate(waits):
        for d in deps:
            dependants[d].append(s)
    ready = [s for s, n in enumerate(remaining) if n == 0]
    out = []
    while ready:
        s = ready.pop()
        out.append(s)
        for j in dependants[s]:
            remaining[j] -= 1
            if remaining[j] == 0:
                ready.append(j)
    if len(out) != len(steps):
        cycle = _cycle(waits)
        raise PlanError([f"dependency cycle: {' → '.join(str(steps[s].op.key) for s in cycle)}"])
    return out


def _cycle(waits: list[set[int]]) -> list[int]:
    state = [0] * len(waits)  # 0 new, 1 on the stack, 2 done
    stack: list[int] = []

    def visit(i: int) -> list[int] | None:
        state[i] = 1
        stack.append(i)
        for j in sorted(waits[i]):
            if state[j] == 1:
                return stack[stack.index(j) :] + [j]
            if state[j] == 0 and (found := visit(j)):
                return found
        stack.pop()
        state[i] = 2
        return None

    for i in range(len(waits)):
        if state[i] == 0 and (found := visit(i)):
            return found
    return []


def _contracted(operations: list[Operation], steps: list[_StepView], waits: list[set[int]], order: list[int]) -> Graph:
    """Group each replace's steps, with whatever must come between them, into one unit; groups that would
    wait for each other (two users swapping addresses by replace) become one unit too."""
    if not any(view.step.part is Part.CREATE for view in steps):
        # No replace: every step is a unit of its own, numbered as its operation, and the steps are acyclic.
        return Graph(operations, [(view.step,) for view in steps], _frozen(waits))
    groups = _Groups(len(steps))
    dependants: list[set[int]] = [set() for _ in steps]
    for s, deps in enumerate(waits):
        for d in deps:
            dependants[d].add(s)
    for s, view in enumerate(steps):
        if view.step.part is Part.CREATE:
            groups.join({s - 1, s} if waits[s] == {s - 1} else _between({s - 1}, {s}, waits, dependants))
    position = {s: n for n, s in enumerate(order)}
    while True:
        members = groups.members()
        roots = sorted(members)  # a unit's index follows its first step: plain operations keep their index
        unit_of = {s: u for u, root in enumerate(roots) for s in members[root]}
        unit_waits: list[set[int]] = [set() for _ in roots]
        for s, deps in enumerate(waits):
            for d in deps:
                if unit_of[d] != unit_of[s]:
                    unit_waits[unit_of[s]].add(unit_of[d])
        tangled = [c for c in _components(unit_waits) if len(c) > 1]
        if not tangled:
            units = [tuple(steps[s].step for s in sorted(members[root], key=position.__getitem__)) for root in roots]
            return Graph(operations, units, _frozen(unit_waits))
        for component in tangled:
            held = {s for u in component for s in members[roots[u]]}
            groups.join(_between(held, held, waits, dependants))


def _frozen(waits: list[set[int]]) -> list[tuple[int, ...]]:
    return [tuple(w) for w in waits]


class _Groups:
    """Disjoint groups of steps (union-find)."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def join(self, members: set[int]) -> None:
        roots = sorted({self.find(m) for m in members})
        for r in roots[1:]:
            self.parent[r] = roots[0]

    def members(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for s in range(len(self.parent)):
            out.setdefault(self.find(s), set()).add(s)
        return out


def _components(waits: list[set[int]]) -> list[list[int]]:
    """The strongly connected components of a graph (Tarjan's algorithm, without recursion)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for start in range(len(waits)):
        if start in index:
            continue
        work = [(start, iter(sorted(waits[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    out.append(component)
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(waits[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return out


def _between(sources: set[int], sinks: set[int], waits: list[set[int]], dependants: list[set[int]]) -> set[int]:
    """Every step on a path from a source to a sink, both included."""
    after = _reach(sources, dependants)
    before = _reach(sinks, waits)
    return (after & before) | sources | sinks


def _reach(starts: set[int], edges: Sequence[Iterable[int]]) -> set[int]:
    seen = set(starts)
    stack = list(starts)
    while stack:
        for k in edges[stack.pop()]:
            if k not in seen:
                seen.add(k)
                stack.append(k)
    return seen


def ordered(operations: list[Operation]) -> list[Operation]:
    """The operations in apply order (each once)."""
    return list(build(operations).operations_in_order())


__all__ = ["Graph", "Part", "Step", "Unit", "build", "claims", "ordered", "references"]
