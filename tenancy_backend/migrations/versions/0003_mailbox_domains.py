"""Mailbox domains: which resources consume a mailbox address, as the table of kinds says, kept in a column.

Until now the backend counted a domain's used addresses with its own copy of the rule ("users whose role
is not external"). Since this revision the rule lives in the table of kinds (`Kind.mailbox`), and the
backend writes what it says into `resources.mailbox_domain` with every write; and `mail_domain` holds the
domain a value must lie on, or NULL where the table exempts it (an external user's address is not on a
domain of ours). This migration brings existing rows to what the rule said when it was written.

Revision ID: 0003_mailbox_domains
Revises: 0002_password_fingerprints
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_mailbox_domains"
down_revision = "0002_password_fingerprints"
branch_labels = None
depends_on = None

_resources = sa.table(
    "resources",
    sa.column("kind", sa.String(40)),
    sa.column("role", sa.String(32)),
    sa.column("mail_domain", sa.String(253)),
    sa.column("mailbox_domain", sa.String(253)),
)
# The rule as of this revision (a migration is a snapshot: it must not follow later changes of the table).
_CONSUMES = sa.and_(_resources.c.kind == "User", _resources.c.role != "external")
_EXEMPT = sa.and_(_resources.c.kind == "User", _resources.c.role == "external")


def upgrade() -> None:
    op.add_column("resources", sa.Column("mailbox_domain", sa.String(253), nullable=True))
    op.execute(_resources.update().where(_CONSUMES).values(mailbox_domain=_resources.c.mail_domain))
    op.execute(_resources.update().where(_EXEMPT).values(mail_domain=None))
    op.create_index("ix_resources_mailbox_domain", "resources", ["mailbox_domain"])


def downgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.drop_index("ix_resources_mailbox_domain")
        batch.drop_column("mailbox_domain")
