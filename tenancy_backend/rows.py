"""A parsed document → the values of its resource row (the denormalised columns, the creation-only ones)."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from tenancy_kinds import STACK_LABEL
from tenancy_backend.documents import iso
from tenancy_backend.parsing import KEEP, Parsed
from tenancy_backend.transaction import Tx

TRIAL_DAYS = 14


def row_values(p: Parsed) -> dict[str, Any]:
    values = {
        "spec": p.spec,
        "labels": p.labels,
        "stack": p.labels.get(STACK_LABEL),
        "protected": p.protected,
        **p.columns,
    }
    if p.directory is not KEEP:
        values["directory"] = p.directory
    return values


def new_row(tx: Tx, p: Parsed, stamp: str) -> dict[str, Any]:
    """A new resource row. Every row has the same columns, so a run of them inserts as one executemany."""
    extra = _created_values(p, tx)
    return dict(
        uid=str(uuid.uuid4()),
        kind=p.kind.name,
        organization=p.organization,
        name=p.name,
        resource_version=tx.next_version(),
        created_at=stamp,
        updated_at=stamp,
        password_hash=p.password_hash,
        password_fingerprint=p.password_fingerprint,
        subscription_id=extra.get("subscription_id"),
        trial_ends_at=extra.get("trial_ends_at"),
        **{"directory": None, **row_values(p)},  # every new row has the same columns (see above)
    )


def _created_values(p: Parsed, tx: Tx) -> dict[str, Any]:
    """Values the backend assigns once, at creation (a subscription's id and trial)."""
    if p.kind.archive is None:
        return {}
    return {
        "subscription_id": "sub_" + secrets.token_hex(8),
        "trial_ends_at": iso(tx.now + timedelta(days=TRIAL_DAYS)),
    }


__all__ = ["TRIAL_DAYS", "new_row", "row_values"]
