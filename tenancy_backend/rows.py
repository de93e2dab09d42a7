"""A parsed document → the values of its resource row (the denormalised columns, the creation-only ones)."""

from __future__ import annotations

import secrets
import time
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
        uid=new_uid(),
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


def new_uid() -> str:
    """A new resource's uid: a UUID of version 7 (RFC 9562: 48 bits of Unix time in milliseconds, then 74
    random bits), the standard library's from Python 3.14 on. Time-ordered, so that a run of creates adds
    to the end of the uid index instead of to a random page of it each (version 4): SQLite writes a fifth
    more creates a second at 1,000,000 resources (benchmarks/RESULTS.md, run R)."""
    if _UUID7 is not None:
        return str(_UUID7())
    milliseconds = time.time_ns() // 1_000_000
    rand = int.from_bytes(secrets.token_bytes(10), "big")  # 80 bits: 12 for rand_a, 62 for rand_b
    value = (
        ((milliseconds & (1 << 48) - 1) << 80)
        | (0x7 << 76)  # version 7
        | (((rand >> 62) & 0xFFF) << 64)
        | (0b10 << 62)  # the RFC's variant
        | (rand & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))


_UUID7 = getattr(uuid, "uuid7", None)


def _created_values(p: Parsed, tx: Tx) -> dict[str, Any]:
    """Values the backend assigns once, at creation (a subscription's id and trial)."""
    if p.kind.archive is None:
        return {}
    return {
        "subscription_id": "sub_" + secrets.token_hex(8),
        "trial_ends_at": iso(tx.now + timedelta(days=TRIAL_DAYS)),
    }


__all__ = ["TRIAL_DAYS", "new_row", "new_uid", "row_values"]
