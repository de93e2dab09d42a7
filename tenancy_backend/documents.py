"""Rows → resource documents, with every kind's status computed in bulk (GROUP BY, never per row)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Row, func, select

from provider.kinds import ADMIN_ROLES, API_VERSION, KINDS, Phase, SubscriptionState, Tier
from tenancy_backend.db import deposits, resources
from tenancy_backend.spec_rules import EXTERNAL_ROLE

CENT = Decimal("0.01")
DEFAULT_CURRENCY = "EUR"
DEFAULT_PRICES = {Tier.FREE.value: "0.00", Tier.ENTRY.value: "3.50", Tier.PRO.value: "7.50"}

# Everything a document needs; the password hash is never selected for rendering.
DOCUMENT_COLUMNS = [c for c in resources.c if c.name != "password_hash"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, to the second: what every timestamp in a document looks like."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --- money ----------------------------------------------------------------------------------------


def parse_amount(value: Any) -> Decimal:
    """A money amount as an exact Decimal with at most two decimals; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("an amount is a decimal string such as \"50.00\"")  # noqa: TRY004 - one error type for callers
    try:
        amount = Decimal(str(value).strip())
        if not amount.is_finite() or amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
            raise ValueError(f"{str(value)[:40]!r} must be a finite amount with at most two decimals")
        return amount.quantize(CENT)
    except InvalidOperation:
        raise ValueError(f"{str(value)[:40]!r} is not a decimal amount such as \"50.00\"") from None


def money(amount: Decimal, currency: str = DEFAULT_CURRENCY) -> dict[str, str]:
    return {"amount": str(amount.quantize(CENT, rounding=ROUND_HALF_UP)), "currency": currency}


@dataclass(frozen=True)
class Prices:
    """Monthly price per user subscription tier."""

    subscriptions: Mapping[str, Decimal]
    currency: str = DEFAULT_CURRENCY

    @classmethod
    def of(cls, overrides: Mapping[str, Any] | None = None) -> Prices:
        """The default prices with `overrides` (tier → amount) applied; ValueError for an unknown tier."""
        values = dict(DEFAULT_PRICES)
        for tier, amount in (overrides or {}).items():
            if tier not in values:
                raise ValueError(f"unknown subscription tier {tier!r}; known: {', '.join(values)}")
            values[tier] = amount
        return cls({tier: parse_amount(amount) for tier, amount in values.items()})

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "subscriptions": {tier: str(price) for tier, price in self.subscriptions.items()},
        }


def parse_price_options(options: Sequence[str]) -> dict[str, str]:
    """`["entry=4.00", "pro=8"]` (CLI `--price`, env `TENANCY_PRICES` split on commas) → overrides."""
    out = {}
    for option in options:
        tier, sep, amount = option.partition("=")
        if not sep or not tier.strip() or not amount.strip():
            raise ValueError(f"invalid price {option!r}: use TIER=AMOUNT, e.g. entry=4.00")
        out[tier.strip()] = amount.strip()
    return out


# --- statuses -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    conn: Connection
    prices: Prices
    now: datetime


StatusOf = Callable[[Context, list[Row[Any]]], dict[int, dict[str, Any]]]


def _organization_statuses(ctx: Context, rows: list[Row[Any]]) -> dict[int, dict[str, Any]]:
    names = [r.name for r in rows]
    users = (
        select(resources.c.organization, resources.c.tier, resources.c.role, func.count())
        .where(resources.c.kind == "User", resources.c.organization.in_(names))
        .group_by(resources.c.organization, resources.c.tier, resources.c.role)
    )
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for organization, tier, role, count in ctx.conn.execute(users):
        counts[organization][0] += count
        counts[organization][1] += count if role in ADMIN_ROLES else 0
        cost[organization] += ctx.prices.subscriptions.get(tier, Decimal(0)) * count
    balances = dict(
        ctx.conn.execute(
            select(deposits.c.resource_id, func.sum(deposits.c.amount_cents))
            .where(deposits.c.resource_id.in_([r.id for r in rows]))
            .group_by(deposits.c.resource_id)
        ).all()
    )
    return {
        r.id: {
            "userCount": counts[r.name][0],
            "adminCount": counts[r.name][1],
            "monthlyCost": money(cost[r.name], ctx.prices.currency),
            "balance": money(Decimal(int(balances.get(r.id) or 0)) / 100, ctx.prices.currency),
        }
        for r in rows
    }


def _user_statuses(ctx: Context, rows: list[Row[Any]]) -> dict[int, dict[str, Any]]:
    return {r.id: {"mailbox": r.role != EXTERNAL_ROLE} for r in rows}


def used_addresses(conn: Connection, domains: Sequence[str]) -> dict[str, int]:
    """Non-external users whose email is on each domain (aliases do not count)."""
    query = (
        select(resources.c.mail_domain, func.count())
        .where(
            resources.c.kind == "User",
            resources.c.mail_domain.in_(list(domains)),
            resources.c.role != EXTERNAL_ROLE,
        )
        .group_by(resources.c.mail_domain)
    )
    return {domain: int(count) for domain, count in conn.execute(query)}


def _quota_statuses(ctx: Context, rows: list[Row[Any]]) -> dict[int, dict[str, Any]]:
    used = used_addresses(ctx.conn, sorted({r.mail_domain for r in rows}))
    return {r.id: {"usedAddresses": used.get(r.mail_domain, 0)} for r in rows}


def subscription_phase(state: str, trial_ends_at: str | None, now: datetime) -> str:
    if state == SubscriptionState.ARCHIVED.value:
        return Phase.ARCHIVED.value
    if trial_ends_at and now < parse_iso(trial_ends_at):
        return Phase.TRIAL.value
    return Phase.ACTIVE.value


def _subscription_statuses(ctx: Context, rows: list[Row[Any]]) -> dict[int, dict[str, Any]]:
    return {
        r.id: {
            "subscriptionId": r.subscription_id,
            "phase": subscription_phase(r.spec["state"], r.trial_ends_at, ctx.now),
            "trialEndsAt": r.trial_ends_at,
        }
        for r in rows
    }


STATUSES: dict[str, StatusOf] = {
    "Organization": _organization_statuses,
    "User": _user_statuses,
    "MailboxQuota": _quota_statuses,
    "CustomerSubscription": _subscription_statuses,
}


def render(ctx: Context, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """The documents for rows (any mix of kinds), statuses computed with one query per kind at most."""
    by_kind: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        by_kind[row.kind].append(row)
    statuses: dict[int, dict[str, Any]] = {}
    for kind, kind_rows in by_kind.items():
        status_of = STATUSES.get(kind)
        if status_of is not None:
            statuses.update(status_of(ctx, kind_rows))
    return [document(row, statuses.get(row.id, {})) for row in rows]


def document(row: Row[Any], status: dict[str, Any]) -> dict[str, Any]:
    kind = KINDS[row.kind]
    metadata: dict[str, Any] = {"name": row.name}
    if kind.scoped:
        metadata["organization"] = row.organization
    metadata.update(
        {
            "labels": dict(sorted((row.labels or {}).items())),
            "protected": bool(row.protected),
            "uid": row.uid,
            "resourceVersion": str(row.resource_version),
            "createdAt": row.created_at,
            "updatedAt": row.updated_at,
        }
    )
    # The model's field order, whatever the database did to it (PostgreSQL's JSONB reorders keys).
    spec = {name: row.spec[name] for name in kind.spec_fields if name in row.spec}
    return {"apiVersion": API_VERSION, "kind": row.kind, "metadata": metadata, "spec": spec, "status": status}


__all__ = [
    "DEFAULT_PRICES",
    "DOCUMENT_COLUMNS",
    "Context",
    "Prices",
    "document",
    "iso",
    "money",
    "parse_amount",
    "parse_iso",
    "parse_price_options",
    "render",
    "subscription_phase",
    "used_addresses",
    "utc_now",
]
