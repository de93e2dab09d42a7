"""Rows → resource documents, with every kind's status computed in bulk (GROUP BY, never per row)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select

from tenancy_kinds import (
    ADMIN_ROLES,
    API_VERSION,
    CUSTOMER_SUBSCRIPTION,
    KINDS,
    MAILBOX_QUOTA,
    ORGANIZATION,
    PEOPLE_KINDS,
    USER,
    Phase,
    SubscriptionState,
)
from tenancy_backend.db import deposits, resources
from tenancy_kinds.billing import Prices, money

# Everything a document needs; the password hash and fingerprint are never selected for rendering.
DOCUMENT_COLUMNS = [c for c in resources.c if c.name not in ("password_hash", "password_fingerprint")]
DOCUMENT_FIELDS = tuple(c.name for c in DOCUMENT_COLUMNS)

# Rows are read by position: a Row's attribute access costs ~10 times its index access, and an export
# renders 100,000 rows. Every row rendered here selects DOCUMENT_COLUMNS (checked in `render`).
_ID, _UID, _KIND, _ORGANIZATION, _NAME, _SPEC, _LABELS, _PROTECTED, _VERSION, _CREATED, _UPDATED = (
    DOCUMENT_FIELDS.index(name)
    for name in (
        "id", "uid", "kind", "organization", "name", "spec", "labels", "protected", "resource_version",
        "created_at", "updated_at",
    )
)
_MAILBOX_DOMAIN, _SUBSCRIPTION_ID, _TRIAL_ENDS_AT, _DIRECTORY = (
    DOCUMENT_FIELDS.index(name) for name in ("mailbox_domain", "subscription_id", "trial_ends_at", "directory")
)

# Per kind: (scoped, spec field names in model order); `Kind.spec_fields` builds a new list on every call.
_SHAPES: dict[str, tuple[bool, list[str]]] = {name: (k.scoped, list(k.spec_fields)) for name, k in KINDS.items()}


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, to the second: what every timestamp in a document looks like."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --- statuses -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderContext:
    conn: Connection
    prices: Prices
    now: datetime


StatusOf = Callable[[RenderContext, list[Row[Any]]], dict[int, dict[str, Any]]]


# Status queries, built once (building a statement costs more than running it on a few rows).
_USERS_BY_ORGANIZATION = (
    select(resources.c.organization, resources.c.tier, resources.c.role, func.count())
    .where(resources.c.kind.in_(PEOPLE_KINDS), resources.c.organization.in_(bindparam("names", expanding=True)))
    .group_by(resources.c.organization, resources.c.tier, resources.c.role)
)
_BALANCES = (
    select(deposits.c.resource_id, func.sum(deposits.c.amount_cents))
    .where(deposits.c.resource_id.in_(bindparam("ids", expanding=True)))
    .group_by(deposits.c.resource_id)
)
_USED_ADDRESSES = (  # what consumes a mailbox, by the table's mailbox rule (computed when written)
    select(resources.c.mailbox_domain, func.count())
    .where(resources.c.mailbox_domain.in_(bindparam("domains", expanding=True)))
    .group_by(resources.c.mailbox_domain)
)


def _organization_statuses(ctx: RenderContext, rows: list[Row[Any]]) -> dict[int, dict[str, Any]]:
    names = [r[_NAME] for r in rows]
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for organization, tier, role, count in ctx.conn.execute(_USERS_BY_ORGANIZATION, {"names": names}):
        counts[organization][0] += count
        counts[organization][1] += count if role in ADMIN_ROLES else 0
        cost[organization] += ctx.prices.subscriptions.get(tier, Decimal(0)) * count
    balances = dict(ctx.conn.execute(_BALANCES, {"ids": [r[_ID] for r in rows]}).all())
    return {
        r[_ID]: {
            "userCount": counts[r[_NAME]][0],
            "adminCount": counts[r[_NAME]][1],
            "monthlyCost": money(cost[r[_NAME]], ctx.prices.currency),
            "balance": money(Decimal(int(balances.get(r[_ID]) or 0)) / 100, ctx.prices.currency),
        }
        for r in rows
    }


def _user_statuses(ctx: RenderContext, rows: list[Row[Any]]) -> dict[int, dict[str, Any]]:
    return {r[_ID]: {"mailbox": r[_MAILBOX_DOMAIN] is not None} for r in rows}


def used_addresses(conn: Connection, domains: Sequence[str]) -> dict[str, int]:
    """The resources that consume a mailbox on each domain (users but external ones; aliases do not)."""
    return {domain: int(count) for domain, count in conn.execute(_USED_ADDRESSES, {"domains": list(domains)})}


def _quota_statuses(ctx: RenderContext, rows: list[Row[Any]]) -> dict[int, dict[str, Any]]:
    domains = {r[_ID]: _limited_domain(r) for r in rows}
    used = used_addresses(ctx.conn, sorted(set(domains.values())))
    return {r[_ID]: {"usedAddresses": used.get(domains[r[_ID]], 0)} for r in rows}


def _limited_domain(row: Row[Any]) -> str:
    limit = KINDS[row[_KIND]].limit_of(row[_SPEC])
    return limit[0] if limit else ""


def subscription_phase(state: str, trial_ends_at: str | None, now: datetime) -> str:
    if state == SubscriptionState.ARCHIVED.value:
        return Phase.ARCHIVED.value
    if trial_ends_at and now < parse_iso(trial_ends_at):
        return Phase.TRIAL.value
    return Phase.ACTIVE.value


def _subscription_statuses(ctx: RenderContext, rows: list[Row[Any]]) -> dict[int, dict[str, Any]]:
    return {
        r[_ID]: {
            "subscriptionId": r[_SUBSCRIPTION_ID],
            "phase": subscription_phase(r[_SPEC]["state"], r[_TRIAL_ENDS_AT], ctx.now),
            "trialEndsAt": r[_TRIAL_ENDS_AT],
        }
        for r in rows
    }


STATUSES: dict[str, StatusOf] = {  # what the backend computes for each kind's status
    ORGANIZATION.name: _organization_statuses,
    USER.name: _user_statuses,
    MAILBOX_QUOTA.name: _quota_statuses,
    CUSTOMER_SUBSCRIPTION.name: _subscription_statuses,
}


# The kinds whose status counts other resources of their organization (its users, the mailboxes on a
# quota's domain): an incremental export sends them again when anything of their organization changed.
DEPENDENT_STATUSES = (ORGANIZATION.name, MAILBOX_QUOTA.name)


def render(ctx: RenderContext, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """The documents for rows of DOCUMENT_COLUMNS (any mix of kinds), statuses computed with one query per
    kind at most."""
    if rows and tuple(rows[0]._fields) != DOCUMENT_FIELDS:
        raise TypeError(f"rows to render must select DOCUMENT_COLUMNS, not {rows[0]._fields}")
    by_kind: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        by_kind[row[_KIND]].append(row)
    statuses: dict[int, dict[str, Any]] = {}
    for kind, kind_rows in by_kind.items():
        status_of = STATUSES.get(kind)
        if status_of is not None:
            statuses.update(status_of(ctx, kind_rows))
    return [document(row, statuses.get(row[_ID], {})) for row in rows]


def document(row: Row[Any], status: dict[str, Any]) -> dict[str, Any]:
    """One document from a row of DOCUMENT_COLUMNS (read by position: see `_ID`)."""
    kind = row[_KIND]
    scoped, fields = _SHAPES[kind]
    labels = row[_LABELS] or {}
    metadata: dict[str, Any] = {"name": row[_NAME]}
    if scoped:
        metadata["organization"] = row[_ORGANIZATION]
    # Sorted labels; a copy either way (a cached row may be rendered twice).
    metadata["labels"] = dict(labels) if len(labels) < 2 else dict(sorted(labels.items()))
    metadata["protected"] = bool(row[_PROTECTED])
    metadata["uid"] = row[_UID]
    metadata["resourceVersion"] = str(row[_VERSION])
    metadata["createdAt"] = row[_CREATED]
    metadata["updatedAt"] = row[_UPDATED]
    # The model's field order, whatever the database did to it (PostgreSQL's JSONB reorders keys); a spec
    # already in that order (SQLite keeps what was written) is copied as it is.
    stored = row[_SPEC]
    spec = stored.copy() if list(stored) == fields else {name: stored[name] for name in fields if name in stored}
    if row[_DIRECTORY]:  # a resource a customer's directory (SCIM) wrote: what it keeps beyond the spec
        status = {**status, "directory": dict(row[_DIRECTORY])}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec, "status": status}


__all__ = [
    "DEPENDENT_STATUSES",
    "DOCUMENT_COLUMNS",
    "DOCUMENT_FIELDS",
    "RenderContext",
    "document",
    "iso",
    "parse_iso",
    "render",
    "subscription_phase",
    "used_addresses",
    "utc_now",
]
