"""PostgreSQL's planner statistics kept up with bulk writes (ANALYZE, scheduled by rows written)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)


class Statistics:
    """Keeps PostgreSQL's planner statistics up with bulk writes: ANALYZE after 500 rows written by this
    process, then after twice as many each time (a few cheap ANALYZEs for 100,000 resources).

    Until a table is analyzed PostgreSQL plans as if it were nearly empty (an export batch becomes a
    sequential scan and a sort of the whole table), and autovacuum, when it runs at all, analyzes at most
    once a minute: too late for a fleet created by one apply.
    """

    FIRST = 500

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._enabled = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._written = 0
        self._next = self.FIRST

    def wrote(self, rows: int) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._written += rows
            if self._written < self._next:
                return
            self._written, self._next = 0, self._next * 2
        try:
            with self._engine.connect() as conn:
                conn.execute(text("ANALYZE resources, claims, refs"))
                conn.commit()
        except DBAPIError as e:  # statistics are an optimisation: never fail a committed changeset
            log.warning("ANALYZE after a bulk write failed: %s", e)


__all__ = ["Statistics"]
