"""The apply order of a plan: a dependency graph from references, deletes in reverse, and the quota rule.

Pure: operations in, a graph out. The rules, each chosen so that every intermediate state is valid on the
backend:

1. A change that declares a reference (an organization, a parent, a team member, an alias's user) waits
   for the creation or update of what it names.
2. The deletion of a resource waits for every change to a resource that names it today (teams and
   aliases let go of a user before the user goes; children go before their organization).
3. A change that takes a unique address or domain waits for the change that gives it up.
4. Quotas: raising (or creating) a domain's quota comes before the mailboxes it makes room for; lowering
   it comes after the mailboxes that leave the domain.
5. An organization that drops domains or falls back to the free plan waits for the deletions that make
   that possible.

A replace runs as one changeset on the backend (delete and create together), so the references to its
name stay valid throughout and need no ordering of their own.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from provider.errors import PlanError
from provider.kinds import KINDS, ORGANIZATION, PAID_PLANS, ResourceKey, mail_domain
from provider.plan import Adopt, Create, Delete, Operation, Replace, Update

CONSTRUCTIVE = (Create, Update, Adopt, Replace)


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
        scope = "" if ref.kind == ORGANIZATION.name else organization
        found.update(ResourceKey(ref.kind, scope, str(n)) for n in names if n)
    return found


def claims(document: dict[str, Any] | None) -> set[tuple[str, str]]:
    """The backend-wide unique values a document holds (addresses, domains), from the table of kinds."""
    if not document:
        return set()
    kind = KINDS[document["kind"]]
    spec = document.get("spec") or {}
    found = set()
    for field, namespace in kind.unique:
        value = spec.get(field)
        if value is None and field in kind.derived_defaults:
            value = spec.get(kind.derived_defaults[field])  # a username left out is the email
        for item in value if isinstance(value, list) else [value]:
            if item:
                found.add((namespace, str(item).lower()))
    return found


def _mail_domain(document: dict[str, Any] | None) -> str | None:
    """The domain on which a User consumes a mailbox address (external users consume none)."""
    if not document or document.get("kind") != "User":
        return None
    spec = document.get("spec") or {}
    if spec.get("role") == "external" or "@" not in str(spec.get("email", "")):
        return None
    return mail_domain(str(spec["email"]))


def _quota(document: dict[str, Any] | None) -> tuple[str, int] | None:
    if not document or document.get("kind") != "MailboxQuota":
        return None
    spec = document.get("spec") or {}
    return str(spec.get("domain", "")).lower(), int(spec.get("maxAddresses") or 0)


def _owned_domains(document: dict[str, Any] | None) -> set[str]:
    """The domains a scoped document lives on (a user's email, an alias's address, a quota's domain)."""
    if not document:
        return set()
    spec = document.get("spec") or {}
    found = set()
    for field in ("email", "address"):
        if "@" in str(spec.get(field, "")):
            found.add(mail_domain(str(spec[field])))
    if document.get("kind") == "MailboxQuota" and spec.get("domain"):
        found.add(str(spec["domain"]).lower())
    return found


@dataclass
class Graph:
    """`waits_for[i]` holds the indexes of the operations that must finish before operation i starts."""

    operations: list[Operation]
    waits_for: list[set[int]]

    def dependants(self) -> list[set[int]]:
        out: list[set[int]] = [set() for _ in self.operations]
        for i, deps in enumerate(self.waits_for):
            for d in deps:
                out[d].add(i)
        return out

    def order(self) -> list[int]:
        """A deterministic topological order: constructive changes by rank, deletions in reverse."""
        remaining = [len(d) for d in self.waits_for]
        dependants = self.dependants()
        ready = [(_sort_key(self.operations[i]), i) for i, n in enumerate(remaining) if n == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            _, i = heapq.heappop(ready)
            out.append(i)
            for j in dependants[i]:
                remaining[j] -= 1
                if remaining[j] == 0:
                    heapq.heappush(ready, (_sort_key(self.operations[j]), j))
        if len(out) != len(self.operations):
            raise PlanError([f"dependency cycle: {' → '.join(str(self.operations[i].key) for i in self._cycle())}"])
        return out

    def _cycle(self) -> list[int]:
        state = [0] * len(self.operations)  # 0 new, 1 on the stack, 2 done
        stack: list[int] = []

        def visit(i: int) -> list[int] | None:
            state[i] = 1
            stack.append(i)
            for j in sorted(self.waits_for[i]):
                if state[j] == 1:
                    return stack[stack.index(j) :] + [j]
                if state[j] == 0 and (found := visit(j)):
                    return found
            stack.pop()
            state[i] = 2
            return None

        for i in range(len(self.operations)):
            if state[i] == 0 and (found := visit(i)):
                return found
        return []


def _sort_key(op: Operation) -> tuple[int, int, str, str]:
    rank = op.kind.rank
    if isinstance(op, Delete):
        return (1, -rank, op.key.organization, op.key.name)
    return (0, rank, op.key.organization, op.key.name)


def build(operations: list[Operation]) -> Graph:
    """The dependency graph of a plan's operations."""
    index = {op.key: i for i, op in enumerate(operations)}
    waits: list[set[int]] = [set() for _ in operations]

    def edge(later: int, earlier: int) -> None:
        if later != earlier:
            waits[later].add(earlier)

    named_by: dict[ResourceKey, list[int]] = {}  # who names a resource today (their live documents)
    for j, other in enumerate(operations):
        for ref in references(other.live):
            named_by.setdefault(ref, []).append(j)

    for i, op in enumerate(operations):
        if isinstance(op, CONSTRUCTIVE):
            for ref in references(op.desired):
                target = index.get(ref)
                if target is not None and isinstance(operations[target], CONSTRUCTIVE):
                    edge(i, target)
        if isinstance(op, Delete):
            for j in named_by.get(op.key, ()):
                edge(i, j)
    _claim_edges(operations, edge)
    _quota_edges(operations, edge)
    _narrowing_edges(operations, edge)
    _make_room_first(operations, waits)
    return Graph(operations, waits)


def _make_room_first(operations: list[Operation], waits: list[set[int]]) -> None:
    """On a domain whose quota does not move, mailboxes that leave go before those that arrive.

    The quota may be full: a newcomer must not land before the address it replaces is freed. Added only
    where it creates no cycle (a team swapping members already orders these through its own update).
    """
    arriving: dict[str, list[int]] = {}
    leaving: dict[str, list[int]] = {}
    for i, op in enumerate(operations):
        consumes = None if isinstance(op, Delete) else _mail_domain(op.desired)
        frees = _mail_domain(op.live)
        if consumes == frees and not isinstance(op, Replace):
            continue
        if consumes:
            arriving.setdefault(consumes, []).append(i)
        if frees:
            leaving.setdefault(frees, []).append(i)
    for q, op in enumerate(operations):
        created = _quota(op.desired) if isinstance(op, Create) else None
        for i in leaving.get(created[0], ()) if created else ():
            if not _waits_on(waits, i, q):
                waits[q].add(i)  # a new quota counts what is there: let the leavers go first
    for domain, newcomers in arriving.items():
        for j in newcomers:
            for i in leaving.get(domain, ()):
                if i != j and not _waits_on(waits, i, j):
                    waits[j].add(i)


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


def _claim_edges(operations: list[Operation], edge: Any) -> None:
    """A change that takes an address or a domain waits for the change that gives it up."""
    released: dict[tuple[str, str], list[int]] = {}
    for i, op in enumerate(operations):
        kept = set() if isinstance(op, Delete) else claims(op.desired)
        for claim in claims(op.live) - kept:
            released.setdefault(claim, []).append(i)
    if not released:
        return
    for j, op in enumerate(operations):
        if isinstance(op, Delete):
            continue
        for claim in claims(op.desired) - claims(op.live):
            for i in released.get(claim, ()):
                edge(j, i)


def _quota_edges(operations: list[Operation], edge: Any) -> None:
    quotas: dict[str, tuple[int, int | None]] = {}  # domain: (operation, its change of maxAddresses; None: new)
    for i, op in enumerate(operations):
        new, old = _quota(op.desired), _quota(op.live)
        if isinstance(op, Delete) and old is not None:
            quotas[old[0]] = (i, 1)  # no quota is no limit: deleting one makes room
            continue
        if isinstance(op, Delete) or new is None:
            continue
        quotas[new[0]] = (i, new[1] - (old[1] if old else 0) if old else None)
    for j, op in enumerate(operations):
        consumes, frees = _mail_domain(op.desired), _mail_domain(op.live)
        if isinstance(op, Delete):
            consumes = None
        if consumes == frees and not isinstance(op, Replace):
            continue
        if consumes in quotas:
            i, growth = quotas[consumes]
            if growth is None or growth > 0:
                edge(j, i)  # room first, then the mailbox
        if frees in quotas:
            i, growth = quotas[frees]
            if growth is not None and growth < 0:
                edge(i, j)  # the mailbox leaves, then the quota shrinks


def _narrowing_edges(operations: list[Operation], edge: Any) -> None:
    for i, op in enumerate(operations):
        if op.key.kind != ORGANIZATION.name or not isinstance(op, (Update, Adopt)) or not op.live:
            continue
        old_spec, new_spec = op.live.get("spec") or {}, (op.desired or {}).get("spec") or {}
        dropped = {d.lower() for d in old_spec.get("domains") or []} - {d.lower() for d in new_spec.get("domains") or []}
        downgraded = old_spec.get("plan") in PAID_PLANS and new_spec.get("plan", "free") not in PAID_PLANS
        if not dropped and not downgraded:
            continue
        for j, other in enumerate(operations):
            if not isinstance(other, (Delete, Replace)) or other.key.organization != op.key.name:
                continue
            if downgraded or _owned_domains(other.live) & dropped:
                edge(i, j)


def ordered(operations: list[Operation]) -> list[Operation]:
    graph = build(operations)
    return [operations[i] for i in graph.order()]
