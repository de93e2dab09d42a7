"""Desired documents + live documents → an ordered, immutable Plan of typed operations. Pure.

`plan()` diffs every declared resource (`provider.diff`), adds the deletions of what the stack owns and no
longer declares, refuses changes that must not happen (protected resources, reactivated archives, unique
values or quotas that resources the manifests do not declare would break), orders the operations
(`provider.ordering`) and prices them (`provider.costs`). Nothing touches a network or a disk; applying is
`provider.apply`'s job.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provider.costs import CostChange, Prices, balance_warnings, cost_changes
from provider.documents import by_key
from provider.diff import deletion_diffs, desired_labels, diff, labels_after, labels_of
from provider.errors import PlanError
from provider.operations import Action, Adopt, Delete, Operation, Replace, Update, key_id
from provider.ordering import Graph, build
from provider.targeting import Selection, known_resources, restrict
from tenancy_kinds import KINDS, STACK_LABEL, TENANT_KIND, ResourceKey, protected


@dataclass(frozen=True)
class Plan:
    """The operations in apply order, the graph that orders them, and what they cost; never changed once made."""

    operations: tuple[Operation, ...]
    stack: str | None
    graph: Graph = field(repr=False, compare=False)
    costs: tuple[CostChange, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # The labels of each organization an operation touches, as they will be (policies judge by them).
    organization_labels: dict[str, dict[str, str]] = field(default_factory=dict, compare=False)
    selection: Selection | None = None  # a targeted plan: what it is restricted to
    not_planned: int = 0  # a targeted plan: the changes of the whole plan it leaves out
    live_revision: int | None = None  # the backend's revision the live state was read at (None: not said)

    def count(self, *actions: Action) -> int:
        return sum(1 for op in self.operations if op.action in actions)

    @property
    def summary(self) -> str:
        return (
            f"Plan: {self.count(Action.CREATE)} to create, "
            f"{self.count(Action.UPDATE, Action.ADOPT)} to update, "
            f"{self.count(Action.REPLACE)} to replace, "
            f"{self.count(Action.DELETE)} to delete."
        )

    @property
    def targeted(self) -> str | None:
        """The line a targeted plan says itself with; None for a whole plan."""
        if self.selection is None:
            return None
        return f"Targeted plan: {self.not_planned} changes outside the selection are not planned."

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    @property
    def deletions(self) -> int:
        """Deletions as the deletion guard counts them: replacements delete too."""
        return self.count(Action.DELETE, Action.REPLACE)

    def labels(self, op: Operation) -> dict[str, str]:
        """The labels the resource carries after this change; for a delete, those it carries now."""
        return labels_after(op, self.stack)

    def versions(self) -> dict[str, str | None]:
        """Every touched resource's live resourceVersion (None: it must still not exist)."""
        return {key_id(op.key): op.live_version for op in self.operations}


def plan(
    desired: list[dict[str, Any]],
    live: Iterable[dict[str, Any]],
    *,
    stack: str | None,
    prices: Prices | None = None,
    destroy: bool = False,
    selection: Selection | None = None,
) -> Plan:
    """Compare the declaration with the backend. Raises PlanError for changes that must not happen.

    `live` may hold more than the declared resources (a whole export); only declared resources and, with a
    stack name, the stack's own resources are considered. `destroy` plans the deletion of everything the
    stack owns (the manifests' own warnings are the engine's to put first). A `selection`
    (`provider.targeting`) keeps only the changes it selects, with what they need, chosen on the graph of
    the whole plan; the whole plan's refusals still hold (a part of a plan is never looser than the plan).
    `live` kept compact (`provider.documents`) is decoded a document at a time, where one is compared.
    """
    live_by_key = by_key(live)
    problems: list[str] = []
    operations: list[Operation] = []
    declared = set()
    for document in [] if destroy else desired:
        key = ResourceKey.of(document)
        declared.add(key)
        current = live_by_key.get(key)
        owner = labels_of(current).get(STACK_LABEL) if current else None
        if current is not None and stack and owner and owner != stack:
            problems.append(
                f"{key} is owned by stack '{owner}', not '{stack}': remove it from these manifests, "
                f"or delete its `{STACK_LABEL}` label to let this stack adopt it"
            )
            continue
        op = diff(KINDS[key.kind], document, current, stack, key)
        if op is not None:
            operations.append(op)

    notes: list[str] = []
    if stack:
        for key in live_by_key:
            if key in declared:
                continue
            current = live_by_key[key]
            if labels_of(current).get(STACK_LABEL) != stack or _is_archived(current):
                continue
            operations.append(Delete(key, None, current, deletion_diffs(current)))
    else:
        notes.append(
            "No stack name: nothing will be deleted. Name a stack (--stack, TENANCY_STACK, or `stack:` in "
            "tenancy.yaml) to let this plan delete what vanished from the manifests."
        )

    problems.extend(refusals(operations))
    problems.extend(_problems_with_the_undeclared(operations, desired, live_by_key, declared))
    if problems:
        raise PlanError(problems)

    graph = build(operations)
    if selection:
        graph = restrict(graph, selection, stack, known_resources(itertools.chain(desired, live_by_key.values())))
    ordered = tuple(graph.operations_in_order())
    costs = tuple(cost_changes(graph.operations, live_by_key, prices)) if prices is not None else ()
    return Plan(
        operations=ordered,
        stack=stack,
        graph=graph,
        costs=costs,
        warnings=(*_replace_warnings(ordered), *balance_warnings(list(costs))),
        notes=tuple(notes),
        organization_labels=_organization_labels(ordered, stack, desired, live_by_key),
        selection=selection or None,
        not_planned=len(operations) - len(ordered),
    )


def _organization_labels(
    operations: tuple[Operation, ...],
    stack: str | None,
    desired: list[dict[str, Any]],
    live_by_key: Mapping[ResourceKey, dict[str, Any]],
) -> dict[str, dict[str, str]]:
    """Each touched organization's labels after the plan: as declared, else as the backend holds them."""
    touched = {op.key.organization if op.kind.scoped else op.key.name for op in operations}
    if not touched:  # a plan with nothing to do (the common case at scale) looks at no document
        return {}
    planned = {op.key: op for op in operations}
    declared = {ResourceKey.of(d): d for d in desired if not KINDS[d["kind"]].scoped}
    out = {}
    for name in sorted(touched):
        key = ResourceKey(TENANT_KIND, "", name)
        op = planned.get(key)
        if op is not None:
            out[name] = labels_after(op, stack)
        elif key in declared:
            out[name] = desired_labels(declared[key], stack, live_by_key.get(key))
        elif key in live_by_key:
            out[name] = labels_of(live_by_key[key])
    return out


def _is_archived(live: dict[str, Any]) -> bool:
    kind = KINDS[live["kind"]]
    return kind.archived(kind.effective(live.get("spec") or {}))


def refusals(operations: list[Operation]) -> list[str]:
    """What changes refuse each on its own, whatever else a plan holds: a protected resource deleted or
    replaced, an archived one declared active again. Pulumi's `diff()` asks this too, so that a preview
    refuses what the CLI's plan refuses."""
    return _protection_problems(operations) + _reactivation_problems(operations)


def _protection_problems(operations: list[Operation]) -> list[str]:
    problems = []
    for op in operations:
        if not isinstance(op, (Delete, Replace)):
            continue
        if protected(op.live) or protected(op.desired):
            verb = "deleted" if isinstance(op, Delete) else f"replaced (immutable {', '.join(op.immutable)} changed)"
            problems.append(
                f"{op.key} is protected and would be {verb}: set `metadata.protected: false` first "
                "(an update), or keep it in the manifests unchanged"
            )
    return problems


def _reactivation_problems(operations: list[Operation]) -> list[str]:
    """An archived resource declared active again: the backend refuses it (archived is final), so the plan
    does, before anything is applied."""
    problems = []
    for op in operations:
        archive = op.kind.archive
        if archive is None or not isinstance(op, (Update, Adopt)) or op.live is None or op.desired is None:
            continue
        before, after = (op.kind.effective(d.get("spec") or {}) for d in (op.live, op.desired))
        if archive.reactivates(before, after):
            problems.append(archive.refusal(op.key))
    return problems


# --- rules the backend judges on everything it holds ------------------------------------------------
#
# The manifests' own rules (provider.rules) see only what is declared. Resources the backend holds that
# these manifests do not declare, and that this plan does not delete, still take unique values and still
# have mailboxes; judged here with the same facts of the table of kinds, the plan fails where apply
# would, before anything is applied.


def _effective(document: dict[str, Any]) -> dict[str, Any]:
    return KINDS[document["kind"]].effective(document.get("spec") or {})


def _problems_with_the_undeclared(
    operations: list[Operation],
    desired: list[dict[str, Any]],
    live_by_key: Mapping[ResourceKey, dict[str, Any]],
    declared: set[ResourceKey],
) -> list[str]:
    changing = [op for op in operations if not isinstance(op, Delete) and op.desired is not None]
    if not changing:
        return []
    deleted = {op.key for op in operations if isinstance(op, Delete)}
    kept = [live_by_key[key] for key in live_by_key if key not in declared and key not in deleted]
    if not kept:
        return []  # the common case: the manifests declare everything there is
    problems = []
    held = {
        (c.namespace, c.key): ResourceKey.of(d) for d in kept for c in KINDS[d["kind"]].claim_values(_effective(d))
    }
    for op in changing:
        assert op.desired is not None
        for claim in op.kind.claim_values(_effective(op.desired)):
            holder = held.get((claim.namespace, claim.key))
            if holder is not None:
                problems.append(
                    f"{op.key}: {claim.what} is already used by {holder}, which these manifests do not declare; "
                    f"choose another, or change or delete {holder} first"
                )
    kept_mailboxes: dict[tuple[str, str], int] = {}
    for document in kept:
        box = _mailbox(document)
        if box is not None:
            kept_mailboxes[box] = kept_mailboxes.get(box, 0) + 1
    if kept_mailboxes:
        problems.extend(_limit_problems(operations, desired, kept_mailboxes))
    return problems


def _mailbox(document: dict[str, Any]) -> tuple[str, str] | None:
    """(organization, mail domain) of a resource that consumes a mailbox, from the table of kinds."""
    domain = KINDS[document["kind"]].mailbox_domain(_effective(document))
    return None if domain is None else (ResourceKey.of(document).organization, domain)


def _limit_problems(
    operations: list[Operation], desired: list[dict[str, Any]], kept_mailboxes: dict[tuple[str, str], int]
) -> list[str]:
    """A declared quota that the mailboxes after this plan would overflow: the declared mailboxes on its
    domain plus those of undeclared resources this plan keeps."""
    organizations = {op.key.organization for op in operations}
    declared_mailboxes: dict[tuple[str, str], int] = {}
    limits = []
    for document in desired:
        key = ResourceKey.of(document)
        if key.organization not in organizations:
            continue
        box = _mailbox(document)
        if box is not None:
            declared_mailboxes[box] = declared_mailboxes.get(box, 0) + 1
        limit = KINDS[key.kind].limit_of(_effective(document))
        if limit is not None:
            limits.append((key, limit))
    problems = []
    for key, (domain, maximum) in limits:
        box = (key.organization, domain)
        kept, declared = kept_mailboxes.get(box, 0), declared_mailboxes.get(box, 0)
        if kept and kept + declared > maximum:
            problems.append(
                f"{key}: maxAddresses {maximum} is below the {kept + declared} addresses that would be in use on "
                f"{domain} ({declared} declared here, {kept} of users these manifests do not declare and this "
                "plan keeps); raise maxAddresses, or delete users"
            )
    return problems


def _replace_warnings(operations: Iterable[Operation]) -> list[str]:
    return [f"{op.key}: {note}" for op in operations if isinstance(op, Replace) for note in op.notes]


__all__ = ["Plan", "Selection", "labels_after", "plan", "refusals"]
