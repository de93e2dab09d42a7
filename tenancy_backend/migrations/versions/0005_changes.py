"""The change log: incremental exports (`GET /v1/export?since=REV`).

- `changes` records what no `resource_version` shows: deletions (tombstones), deposits, and the contents
  of an organization moved in the hierarchy; `ix_resources_version` finds what was created or updated;
- the `changes_horizon` counter is the oldest revision an incremental export can start from: the current
  revision here (nothing before this migration was logged), raised when old changes are pruned;
- the `database_id` counter is a random identity of the database, so that a client's cached export of
  one database is never completed with the changes of another.

Revision ID: 0005_changes
Revises: 0004_scim_users
Create Date: 2026-12-01
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005_changes"
down_revision = "0004_scim_users"
branch_labels = None
depends_on = None

_counters = sa.table("counters", sa.column("name", sa.String(32)), sa.column("value", sa.BigInteger()))
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("organization", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
    )
    op.create_index("ix_changes_revision", "changes", ["revision"])
    op.create_index("ix_resources_version", "resources", ["resource_version"])
    current = sa.select(_counters.c.value).where(_counters.c.name == "resource_version").scalar_subquery()
    op.execute(_counters.insert().from_select(["name", "value"], sa.select(sa.literal("changes_horizon"), current)))
    op.bulk_insert(_counters, [{"name": "database_id", "value": secrets.randbits(62)}])


def downgrade() -> None:
    op.execute(_counters.delete().where(_counters.c.name.in_(["changes_horizon", "database_id"])))
    with op.batch_alter_table("resources") as batch:
        batch.drop_index("ix_resources_version")
    op.drop_index("ix_changes_revision", "changes")
    op.drop_table("changes")
