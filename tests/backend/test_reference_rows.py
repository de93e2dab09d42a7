"""A resource's reference rows follow its spec by difference: an update writes only the references it adds
and removes (a 10,000-member team with one newcomer writes one row, not 10,000). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from tenancy_backend.db import refs, resources
from tenancy_backend.scope import Scope
from tenancy_backend.service import Service

from tests.builders import op, org, team, user
from .helpers import refused

ROOT = Scope.root()
MEMBERS = [f"u{i:03d}" for i in range(40)]
_WRITE_TO_REFS = re.compile(r'\s*(INSERT)\s+INTO\s+"?refs"?[\s(]|\s*(DELETE)\s+FROM\s+"?refs"?\s', re.IGNORECASE)


def _rows(service: Service, organization: str, name: str) -> dict[tuple[str, str, str], int]:
    """The team's reference rows: (field, target kind, target name) → row id."""
    query = (
        select(refs.c.id, refs.c.field, refs.c.target_kind, refs.c.target_name)
        .join(resources, resources.c.id == refs.c.resource_id)
        .where(resources.c.kind == "Team", resources.c.organization == organization, resources.c.name == name)
    )
    with service._engine.connect() as conn:
        return {(f, k, n): row_id for row_id, f, k, n in conn.execute(query)}


@contextmanager
def _ref_rows_written(service: Service) -> Iterator[Counter[str]]:
    """Rows of `refs` inserted and deleted while the block runs, by statement verb."""
    written: Counter[str] = Counter()

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        verb = _WRITE_TO_REFS.match(statement)
        if verb:
            written[(verb[1] or verb[2]).upper()] += max(cursor.rowcount, 0)

    event.listen(service._engine, "after_cursor_execute", count)
    try:
        yield written
    finally:
        event.remove(service._engine, "after_cursor_execute", count)


def _wanted(members: list[str], leader: str | None) -> set[tuple[str, str, str]]:
    return {("members", "User", m) for m in members} | ({("leader", "User", leader)} if leader else set())


def _big_team(service: Service, **spec: Any) -> None:
    service.changeset(
        ROOT,
        [op("create", org("acme")), *(op("create", user("acme", m)) for m in [*MEMBERS, "newcomer"])]
        + [op("create", team("acme", "all", MEMBERS, **spec))],
    )


def test_an_update_writes_only_the_references_it_adds_and_removes(service: Service) -> None:
    _big_team(service, leader="u000")
    before = _rows(service, "acme", "all")
    assert set(before) == _wanted(MEMBERS, "u000")

    members = [*MEMBERS[1:], "newcomer"]  # u000 leaves, a newcomer joins; the leader moves to u001
    with _ref_rows_written(service) as written:
        service.update(ROOT, "Team", "acme", "all", team("acme", "all", members, leader="u001"))
    after = _rows(service, "acme", "all")
    assert written == {"INSERT": 2, "DELETE": 2}  # the newcomer and the new leader in; u000 (twice) out

    assert set(after) == _wanted(members, "u001")
    kept = set(before) & set(after)
    assert len(kept) == len(MEMBERS) - 1
    assert {key: after[key] for key in kept} == {key: before[key] for key in kept}  # not deleted and re-inserted


def test_an_unchanged_set_of_references_writes_no_reference_row(service: Service) -> None:
    _big_team(service)
    before = _rows(service, "acme", "all")
    with _ref_rows_written(service) as written:
        reordered = team("acme", "all", list(reversed(MEMBERS)), displayName="Everyone")
        service.update(ROOT, "Team", "acme", "all", reordered)
    assert written == {}
    assert _rows(service, "acme", "all") == before


def test_references_written_by_difference_still_guard_their_targets(service: Service) -> None:
    _big_team(service)
    service.changeset(
        ROOT, [op("update", team("acme", "all", [*MEMBERS[1:], "newcomer"])), op("delete", user("acme", "u000"))]
    )
    with refused(409, "Team acme/all"):
        service.delete(ROOT, "User", "acme", "newcomer")
    service.update(ROOT, "Team", "acme", "all", team("acme", "all", []))  # every reference removed
    assert _rows(service, "acme", "all") == {}
    service.delete(ROOT, "User", "acme", "newcomer")
