"""Desired documents + live documents → a Plan of typed operations. Pure: no network, no disk.

The comparison is on each resource's *essence* (`Kind.essence`): server-managed fields stripped, defaults
applied to both sides, unordered lists sorted, sensitive fields never compared by value. A password is
sent on create and whenever `passwordVersion` changes; the plan shows it as `(sensitive)`.

Pulumi's `diff()` and the CLI's `plan` both call `diff()` below, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar

from provider.errors import PlanError
from provider.kinds import KINDS, STACK_LABEL, Kind, ResourceKey, mail_domain

Path = tuple[str, ...]
SENSITIVE = "(sensitive)"


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    ADOPT = "adopt"


@dataclass(frozen=True)
class FieldDiff:
    """One changed field: `path` is a tuple such as ("spec", "billingAddress", "city")."""

    path: Path
    before: Any
    after: Any
    sensitive: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Operation:
    """One change to one resource. Subclasses say which; renderers and the applier dispatch on the type."""

    action: ClassVar[Action]
    symbol: ClassVar[str]

    key: ResourceKey
    desired: dict[str, Any] | None  # the manifest document (secret sources unresolved)
    live: dict[str, Any] | None  # the backend's document, as read
    diffs: tuple[FieldDiff, ...] = ()
    sends_secret: bool = False  # a write-only secret is sent with this change
    notes: tuple[str, ...] = ()

    @property
    def kind(self) -> Kind:
        return KINDS[self.key.kind]

    @property
    def live_version(self) -> str | None:
        if self.live is None:
            return None
        return (self.live.get("metadata") or {}).get("resourceVersion")


@dataclass(frozen=True)
class Create(Operation):
    action = Action.CREATE
    symbol = "+"


@dataclass(frozen=True)
class Update(Operation):
    action = Action.UPDATE
    symbol = "~"


@dataclass(frozen=True)
class Adopt(Operation):
    """An existing resource without a stack label, declared in this stack: it is labelled and updated."""

    action = Action.ADOPT
    symbol = "="


@dataclass(frozen=True)
class Replace(Operation):
    """An immutable field changed: the resource is deleted and created again, in one changeset."""

    action = Action.REPLACE
    symbol = "-/+"
    immutable: tuple[str, ...] = ()


@dataclass(frozen=True)
class Delete(Operation):
    action = Action.DELETE
    symbol = "-"


@dataclass(frozen=True)
class Prices:
    """Monthly price per user subscription, as the backend reports it."""

    subscriptions: dict[str, Decimal]
    currency: str = "EUR"

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Prices:
        return cls({k: Decimal(str(v)) for k, v in data["subscriptions"].items()}, data.get("currency", "EUR"))

    @classmethod
    def default(cls) -> Prices:
        return cls({"free": Decimal("0.00"), "entry": Decimal("3.50"), "pro": Decimal("7.50")})


@dataclass(frozen=True)
class CostChange:
    organization: str
    before: Decimal
    after: Decimal
    currency: str
    balance: Decimal | None

    @property
    def delta(self) -> Decimal:
        return self.after - self.before


LOW_BALANCE = Decimal("20.00")


@dataclass
class Plan:
    operations: list[Operation]
    stack: str | None
    costs: list[CostChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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
    def has_changes(self) -> bool:
        return bool(self.operations)

    @property
    def deletions(self) -> int:
        """Deletions as the deletion guard counts them: replacements delete too."""
        return self.count(Action.DELETE, Action.REPLACE)

    def versions(self) -> dict[str, str | None]:
        """Every touched resource's live resourceVersion (None: it must still not exist)."""
        return {_key_id(op.key): op.live_version for op in self.operations}


def _key_id(key: ResourceKey) -> str:
    return f"{key.kind}/{key.organization}/{key.name}"


# --- comparing one resource -----------------------------------------------------------------------


def _flatten(value: Any, prefix: Path) -> dict[Path, Any]:
    """Nested dicts to {path: leaf}; lists and scalars are leaves; an empty dict has no leaves."""
    if isinstance(value, dict):
        out: dict[Path, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, prefix + (k,)))
        return out
    return {prefix: value}


def _field_diffs(before: dict[str, Any], after: dict[str, Any], prefix: Path) -> list[FieldDiff]:
    old, new = _flatten(before, prefix), _flatten(after, prefix)
    diffs = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            diffs.append(FieldDiff(path, old.get(path), new.get(path)))
    return diffs


def _labels(document: dict[str, Any]) -> dict[str, str]:
    return dict((document.get("metadata") or {}).get("labels") or {})


def desired_labels(desired: dict[str, Any], stack: str | None, live: dict[str, Any] | None) -> dict[str, str]:
    """The labels a resource should carry: the declared ones plus the stack label.

    With no stack name the stack label is not ours to change: whatever the live resource has is kept.
    """
    labels = {k: v for k, v in _labels(desired).items() if k != STACK_LABEL}
    if stack:
        labels[STACK_LABEL] = stack
    elif live is not None and STACK_LABEL in _labels(live):
        labels[STACK_LABEL] = _labels(live)[STACK_LABEL]
    return labels


def _metadata_view(document: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {"labels": labels, "protected": bool((document.get("metadata") or {}).get("protected", False))}


def _secret_rotation(kind: Kind, desired: dict[str, Any], live: dict[str, Any] | None) -> list[FieldDiff]:
    """Sensitive fields sent with this change: on create when declared, later when their version moves."""
    spec = desired.get("spec") or {}
    diffs = []
    for secret, version in kind.rotation.items():
        if spec.get(secret) is None:
            continue
        defaults = kind.defaults()
        wanted = spec.get(version, defaults.get(version))
        current = None if live is None else (live.get("spec") or {}).get(version, defaults.get(version))
        if live is None or wanted != current:
            diffs.append(FieldDiff(("spec", secret), SENSITIVE if live else None, SENSITIVE, sensitive=True))
    return diffs


def diff(
    kind: Kind,
    desired: dict[str, Any],
    live: dict[str, Any] | None,
    stack: str | None = None,
    key: ResourceKey | None = None,
) -> Operation | None:
    """The one operation that makes `live` match `desired`, or None when they already agree."""
    key = key or ResourceKey.of(desired)
    secrets = _secret_rotation(kind, desired, live)
    if live is None:
        after = {
            "metadata": _metadata_view(desired, desired_labels(desired, stack, None)),
            "spec": kind.essence(desired.get("spec") or {}),
        }
        diffs = tuple(_field_diffs({}, after, ()) + secrets)
        return Create(key, desired, None, diffs, sends_secret=bool(secrets))

    before = {"metadata": _metadata_view(live, _labels(live)), "spec": kind.essence(live.get("spec") or {})}
    after = {
        "metadata": _metadata_view(desired, desired_labels(desired, stack, live)),
        "spec": kind.essence(desired.get("spec") or {}),
    }
    if before == after and not secrets:
        return None  # the common case at scale: skip the field-by-field walk
    diffs = tuple(_field_diffs(before, after, ()) + secrets)
    if not diffs:
        return None
    immutable = tuple(sorted(d.path[1] for d in diffs if d.path[:1] == ("spec",) and d.path[1] in kind.immutable))
    if immutable:
        notes = (kind.replace_note,) if kind.replace_note else ()
        sends = any((desired.get("spec") or {}).get(name) is not None for name in kind.sensitive)
        return Replace(key, desired, live, diffs, sends_secret=sends, notes=notes, immutable=immutable)
    if stack and STACK_LABEL not in _labels(live):
        return Adopt(key, desired, live, diffs, sends_secret=bool(secrets))
    return Update(key, desired, live, diffs, sends_secret=bool(secrets))


# --- the whole plan -------------------------------------------------------------------------------


def _is_archived(live: dict[str, Any]) -> bool:
    kind = KINDS[live["kind"]]
    return kind.delete_archives and (live.get("spec") or {}).get("state") == "archived"


def plan(
    desired: list[dict[str, Any]],
    live: list[dict[str, Any]],
    *,
    stack: str | None,
    prices: Prices | None = None,
    destroy: bool = False,
) -> Plan:
    """Compare the declaration with the backend. Raises PlanError for changes that must not happen.

    `live` may hold more than the declared resources (a whole export); only declared resources and, with a
    stack name, the stack's own resources are considered. `destroy` plans the deletion of everything the
    stack owns.
    """
    live_by_key = {ResourceKey.of(d): d for d in live}
    problems: list[str] = []
    operations: list[Operation] = []
    declared = set()
    for document in [] if destroy else desired:
        key = ResourceKey.of(document)
        declared.add(key)
        current = live_by_key.get(key)
        owner = _labels(current).get(STACK_LABEL) if current else None
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
        for key, current in live_by_key.items():
            if key in declared or _labels(current).get(STACK_LABEL) != stack or _is_archived(current):
                continue
            operations.append(Delete(key, None, current, _deletion_diffs(current)))
    else:
        notes.append(
            "No stack name: nothing will be deleted. Name a stack (--stack, TENANCY_STACK, or `stack:` in "
            "tenancy.yaml) to let this plan delete what vanished from the manifests."
        )

    problems.extend(_protection_problems(operations))
    problems.extend(_reactivation_problems(operations))
    problems.extend(_problems_with_the_undeclared(operations, desired, live_by_key, declared))
    if problems:
        raise PlanError(problems)

    result = Plan(operations=operations, stack=stack, notes=notes)
    result.warnings.extend(_replace_warnings(operations))
    if prices is not None:
        result.costs = cost_changes(operations, live, prices, live_by_key)
        result.warnings.extend(_balance_warnings(result.costs))
    return result


def _deletion_diffs(live: dict[str, Any]) -> tuple[FieldDiff, ...]:
    kind = KINDS[live["kind"]]
    return tuple(_field_diffs({"spec": kind.essence(live.get("spec") or {})}, {}, ()))


def _protection_problems(operations: list[Operation]) -> list[str]:
    problems = []
    for op in operations:
        if not isinstance(op, (Delete, Replace)):
            continue
        protected = any(bool((d.get("metadata") or {}).get("protected")) for d in (op.live, op.desired) if d)
        if protected:
            verb = "deleted" if isinstance(op, Delete) else f"replaced (immutable {', '.join(op.immutable)} changed)"
            problems.append(
                f"{op.key} is protected and would be {verb}: set `metadata.protected: false` first "
                "(an update), or keep it in the manifests unchanged"
            )
    return problems


def _reactivation_problems(operations: list[Operation]) -> list[str]:
    """An archived subscription declared active again: the backend refuses it (archived is final), so the
    plan does, before anything is applied."""
    return [
        f"{op.key} is archived, and archived is final: it cannot be reactivated. Keep `state: archived` in "
        "the manifests (or remove it from them), and declare a new subscription under another name"
        for op in operations
        if isinstance(op, (Update, Adopt)) and op.live is not None and _is_archived(op.live)
        and (op.desired or {}).get("spec", {}).get("state", "active") != "archived"
    ]


# --- rules the backend judges on everything it holds ------------------------------------------------
#
# The manifests' own rules (provider.rules) see only what is declared. Resources the backend holds that
# these manifests do not declare, and that this plan does not delete, still take unique values and still
# have mailboxes; judged here, the plan fails where apply would, before anything is applied.


def _claims(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(namespace, value, wording) of what a resource holds that must be unique (as the backend's claims)."""
    kind, spec = document["kind"], document.get("spec") or {}
    if kind == "Organization":
        parent, name = spec.get("parent"), spec.get("displayName")
        where = f"under {parent!r}" if parent else "at the top level"
        return [("domain", d.lower(), f"domain {d!r}") for d in spec.get("domains") or []] + [
            ("org-display-name", f"{parent or ''}/{name}", f"displayName {name!r} {where}")
        ]
    if kind in ("User", "Alias"):
        address = spec.get("email" if kind == "User" else "address")
        if not isinstance(address, str):
            return []
        held = [("address", address.lower(), f"address {address!r}")]
        if kind == "User":
            username = KINDS[kind].essence(spec).get("username")
            if isinstance(username, str):
                held.append(("username", username.lower(), f"username {username!r}"))
        return held
    if kind == "MailboxQuota" and isinstance(spec.get("domain"), str):
        return [("quota-domain", spec["domain"].lower(), f"a mailbox quota for domain {spec['domain']!r}")]
    return []


def _mailbox(document: dict[str, Any]) -> tuple[str, str] | None:
    """(organization, mail domain) of a user with a mailbox (not external)."""
    spec = document.get("spec") or {}
    email = spec.get("email")
    if document["kind"] != "User" or spec.get("role") == "external" or not isinstance(email, str):
        return None
    return (document["metadata"].get("organization", ""), mail_domain(email))


def _problems_with_the_undeclared(
    operations: list[Operation],
    desired: list[dict[str, Any]],
    live_by_key: dict[ResourceKey, dict[str, Any]],
    declared: set[ResourceKey],
) -> list[str]:
    changing = [op for op in operations if not isinstance(op, Delete) and op.desired is not None]
    if not changing:
        return []
    deleted = {op.key for op in operations if isinstance(op, Delete)}
    kept = [d for key, d in live_by_key.items() if key not in declared and key not in deleted]
    if not kept:
        return []  # the common case: the manifests declare everything there is
    problems = []
    held = {(namespace, value): ResourceKey.of(d) for d in kept for namespace, value, _ in _claims(d)}
    for op in changing:
        for namespace, value, wording in _claims(op.desired or {}):
            holder = held.get((namespace, value))
            if holder is not None:
                problems.append(
                    f"{op.key}: {wording} is already used by {holder}, which these manifests do not declare; "
                    f"choose another, or change or delete {holder} first"
                )
    kept_mailboxes: dict[tuple[str, str], int] = {}
    for document in kept:
        box = _mailbox(document)
        if box is not None:
            kept_mailboxes[box] = kept_mailboxes.get(box, 0) + 1
    if kept_mailboxes:
        problems.extend(_quota_problems(operations, desired, kept_mailboxes))
    return problems


def _quota_problems(
    operations: list[Operation], desired: list[dict[str, Any]], kept_mailboxes: dict[tuple[str, str], int]
) -> list[str]:
    """A declared quota that the mailboxes after this plan would overflow: the declared users on its domain
    plus those of undeclared users this plan keeps."""
    organizations = {op.key.organization for op in operations}
    declared_mailboxes: dict[tuple[str, str], int] = {}
    quotas = []
    for document in desired:
        if document["metadata"].get("organization", "") not in organizations:
            continue
        box = _mailbox(document)
        if box is not None:
            declared_mailboxes[box] = declared_mailboxes.get(box, 0) + 1
        elif document["kind"] == "MailboxQuota":
            quotas.append(document)
    problems = []
    for quota in quotas:
        spec = quota.get("spec") or {}
        box = (quota["metadata"].get("organization", ""), str(spec.get("domain", "")).lower())
        kept, declared = kept_mailboxes.get(box, 0), declared_mailboxes.get(box, 0)
        limit = spec.get("maxAddresses")
        if kept and isinstance(limit, int) and kept + declared > limit:
            problems.append(
                f"{ResourceKey.of(quota)}: maxAddresses {limit} is below the {kept + declared} addresses that "
                f"would be in use on {box[1]} ({declared} declared here, {kept} of users these manifests do not "
                "declare and this plan keeps); raise maxAddresses, or delete users"
            )
    return problems


def _replace_warnings(operations: list[Operation]) -> list[str]:
    return [f"{op.key}: {note}" for op in operations if isinstance(op, Replace) for note in op.notes]


# --- money ----------------------------------------------------------------------------------------


def _user_costs(documents: dict[ResourceKey, dict[str, Any]], prices: Prices) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for key, document in documents.items():
        if key.kind != "User":
            continue
        tier = (document.get("spec") or {}).get("subscription") or "free"
        totals[key.organization] = totals.get(key.organization, Decimal("0")) + prices.subscriptions.get(
            tier, Decimal("0")
        )
    return totals


def cost_changes(
    operations: list[Operation],
    live: list[dict[str, Any]],
    prices: Prices,
    live_by_key: dict[ResourceKey, dict[str, Any]] | None = None,
) -> list[CostChange]:
    """Monthly cost per organization before and after the plan, for organizations whose cost moves (only
    those with a User operation can: the others are not summed at all)."""
    touched = {op.key.organization for op in operations if op.key.kind == "User" and _may_cost(op)}
    if not touched:
        return []
    if live_by_key is None:
        live_by_key = {ResourceKey.of(d): d for d in live}
    before_docs = {k: d for k, d in live_by_key.items() if k.kind == "User" and k.organization in touched}
    after_docs = dict(before_docs)
    for op in operations:
        if op.key.kind != "User":
            continue
        if isinstance(op, Delete):
            after_docs.pop(op.key, None)
        elif op.desired is not None:
            after_docs[op.key] = op.desired
    before, after = _user_costs(before_docs, prices), _user_costs(after_docs, prices)
    balances = {
        k.name: _money((d.get("status") or {}).get("balance"))
        for k, d in live_by_key.items()
        if k.kind == "Organization" and k.name in touched
    }
    changes = []
    for org in sorted(set(before) | set(after)):
        old, new = before.get(org, Decimal("0")), after.get(org, Decimal("0"))
        if old != new:
            changes.append(CostChange(org, old, new, prices.currency, balances.get(org)))
    return changes


def _may_cost(op: Operation) -> bool:
    """Whether a User operation can move its organization's cost: a user arrives, leaves, or changes tier."""
    if op.live is None or op.desired is None:
        return True
    tier = lambda d: (d.get("spec") or {}).get("subscription") or "free"  # noqa: E731
    return bool(tier(op.live) != tier(op.desired))


def _money(value: Any) -> Decimal | None:
    if isinstance(value, dict) and value.get("amount") is not None:
        return Decimal(str(value["amount"]))
    return None


def _balance_warnings(costs: list[CostChange]) -> list[str]:
    warnings = []
    for cost in costs:
        if cost.after <= 0:
            continue
        balance = cost.balance or Decimal("0.00")
        if balance < LOW_BALANCE or balance < cost.after:
            warnings.append(
                f"organization {cost.organization}: prepaid balance {balance:.2f} {cost.currency} is below "
                f"{max(LOW_BALANCE, cost.after):.2f} {cost.currency} (20.00, or one month of the planned "
                f"{cost.after:.2f}); add a deposit: tenancy billing deposit --organization {cost.organization} "
                "--amount 50"
            )
    return warnings

