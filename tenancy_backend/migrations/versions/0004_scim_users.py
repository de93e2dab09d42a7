"""SCIM: a User's `active` and `username` (SPEC §2), and what a directory keeps about a resource.

- every existing User gets `active: true` and `username: <its email>` in its spec (the defaults), and the
  `username` claim that keeps login names unique across the backend (case-insensitively, as addresses);
- `resources.directory` holds what a customer's directory (SCIM) keeps beyond the spec (its externalId).

Revision ID: 0004_scim_users
Revises: 0003_mailbox_domains
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_scim_users"
down_revision = "0003_mailbox_domains"
branch_labels = None
depends_on = None

BATCH = 1000
_Json = sa.JSON().with_variant(JSONB(), "postgresql")
_resources = sa.table(
    "resources", sa.column("id", sa.BigInteger()), sa.column("kind", sa.String(40)), sa.column("spec", _Json)
)
_claims = sa.table(
    "claims", sa.column("namespace", sa.String(32)), sa.column("key", sa.String(512)), sa.column("resource_id", sa.BigInteger())
)


def _users(after: int) -> list[Any]:
    query = (
        sa.select(_resources.c.id, _resources.c.spec)
        .where(_resources.c.kind == "User", _resources.c.id > after)
        .order_by(_resources.c.id)
        .limit(BATCH)
    )
    return list(op.get_bind().execute(query))


def _each_batch_of_users() -> Any:
    after = 0
    while rows := _users(after):
        yield rows
        after = rows[-1].id


def upgrade() -> None:
    op.add_column("resources", sa.Column("directory", _Json, nullable=True))
    bind = op.get_bind()
    update = _resources.update().where(_resources.c.id == sa.bindparam("rid")).values(spec=sa.bindparam("new_spec"))
    for rows in _each_batch_of_users():
        specs = [{"rid": r.id, "new_spec": {**r.spec, "active": True, "username": r.spec["email"]}} for r in rows]
        bind.execute(update, specs)
        claims = [{"namespace": "username", "key": r.spec["email"].lower(), "resource_id": r.id} for r in rows]
        bind.execute(_claims.insert(), claims)


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(_claims.delete().where(_claims.c.namespace == "username"))
    update = _resources.update().where(_resources.c.id == sa.bindparam("rid")).values(spec=sa.bindparam("new_spec"))
    for rows in _each_batch_of_users():
        specs = [
            {"rid": r.id, "new_spec": {k: v for k, v in r.spec.items() if k not in ("active", "username")}}
            for r in rows
        ]
        bind.execute(update, specs)
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("directory")
