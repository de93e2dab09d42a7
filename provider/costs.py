"""What a plan costs: monthly prices per subscription, the change of each organization's monthly cost, and
the warnings of a low prepaid balance. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from provider.operations import Delete, Operation
from tenancy_kinds import KINDS, ResourceKey
from tenancy_kinds.billing import Prices


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


def _tier(document: dict[str, Any]) -> str | None:
    """The subscription tier a resource bills to its organization (users), or None for kinds not billed."""
    kind = KINDS[document["kind"]]
    if kind.billing is None:
        return None
    return str(kind.effective(document.get("spec") or {}).get(kind.billing))


def _billed(key: ResourceKey) -> bool:
    return KINDS[key.kind].billing is not None


def _user_costs(documents: dict[ResourceKey, dict[str, Any]], prices: Prices) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for key, document in documents.items():
        tier = _tier(document)
        if tier is None:
            continue
        totals[key.organization] = totals.get(key.organization, Decimal("0")) + prices.subscriptions.get(
            tier, Decimal("0")
        )
    return totals


def cost_changes(
    operations: list[Operation], live_by_key: Mapping[ResourceKey, dict[str, Any]], prices: Prices
) -> list[CostChange]:
    """Monthly cost per organization before and after the plan, for organizations whose cost moves (only
    those with an operation on a billed resource can: the others are not summed at all, nor their
    documents looked up)."""
    touched = {op.key.organization for op in operations if _billed(op.key) and _may_cost(op)}
    if not touched:
        return []
    before_docs = {k: live_by_key[k] for k in live_by_key if _billed(k) and k.organization in touched}
    after_docs = dict(before_docs)
    for op in operations:
        if not _billed(op.key):
            continue
        if isinstance(op, Delete):
            after_docs.pop(op.key, None)
        elif op.desired is not None:
            after_docs[op.key] = op.desired
    before, after = _user_costs(before_docs, prices), _user_costs(after_docs, prices)
    balances = {
        k.name: _money((live_by_key[k].get("status") or {}).get("balance"))
        for k in live_by_key
        if not KINDS[k.kind].scoped and k.name in touched
    }
    changes = []
    for org in sorted(set(before) | set(after)):
        old, new = before.get(org, Decimal("0")), after.get(org, Decimal("0"))
        if old != new:
            changes.append(CostChange(org, old, new, prices.currency, balances.get(org)))
    return changes


def _may_cost(op: Operation) -> bool:
    """Whether an operation on a billed resource can move its organization's cost: it arrives, leaves, or
    changes tier."""
    if op.live is None or op.desired is None:
        return True
    return _tier(op.live) != _tier(op.desired)


def _money(value: Any) -> Decimal | None:
    if isinstance(value, dict) and value.get("amount") is not None:
        return Decimal(str(value["amount"]))
    return None


def balance_warnings(costs: list[CostChange]) -> list[str]:
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


__all__ = ["LOW_BALANCE", "CostChange", "Prices", "balance_warnings", "cost_changes"]
