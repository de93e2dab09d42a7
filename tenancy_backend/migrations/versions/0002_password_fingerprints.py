"""Password fingerprints: users of different organizations must not share a password (SPEC §2).

Each password also gets a fingerprint: scrypt with one salt for the whole database (the `password_pepper`
counter, drawn here), so that equal passwords have equal fingerprints and the backend can refuse one
already used in another organization without ever keeping a password in clear.

Revision ID: 0002_password_fingerprints
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002_password_fingerprints"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_counters = sa.table("counters", sa.column("name", sa.String(32)), sa.column("value", sa.BigInteger()))


def upgrade() -> None:
    op.add_column("resources", sa.Column("password_fingerprint", sa.String(64), nullable=True))
    op.create_index("ix_resources_password_fingerprint", "resources", ["password_fingerprint"])
    op.bulk_insert(_counters, [{"name": "password_pepper", "value": secrets.randbits(62)}])


def downgrade() -> None:
    op.execute(_counters.delete().where(_counters.c.name == "password_pepper"))
    with op.batch_alter_table("resources") as batch:
        batch.drop_index("ix_resources_password_fingerprint")
        batch.drop_column("password_fingerprint")
