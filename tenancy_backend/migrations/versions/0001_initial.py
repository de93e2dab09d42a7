"""The initial tenancy schema: resources, claims, refs, tokens, idempotency keys, deposits, counters.

Revision ID: 0001_initial
Revises:
Create Date: 2024-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("organization", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("parent", sa.String(63), nullable=True),
        sa.Column("spec", Json, nullable=False),
        sa.Column("labels", Json, nullable=False),
        sa.Column("stack", sa.String(253), nullable=True),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("resource_version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("tier", sa.String(16), nullable=True),
        sa.Column("mail_domain", sa.String(253), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("subscription_id", sa.String(64), nullable=True),
        sa.Column("trial_ends_at", Timestamp, nullable=True),
        sa.UniqueConstraint("uid"),
        sa.UniqueConstraint("kind", "organization", "name", name="uq_resources_identity"),
    )
    op.create_index("ix_resources_listing", "resources", ["kind", "organization", "id"])
    op.create_index("ix_resources_parent", "resources", ["parent"])
    op.create_index("ix_resources_stack", "resources", ["stack"])
    op.create_index("ix_resources_mail_domain", "resources", ["mail_domain"])
    op.create_index("ix_resources_organization", "resources", ["organization", "id"])
    # Two equality columns, so that SQLite (no statistics) does not answer a per-domain or per-parent
    # lookup by reading every resource of the kind through ix_resources_listing.
    op.create_index("ix_resources_kind_mail_domain", "resources", ["kind", "mail_domain"])
    op.create_index("ix_resources_kind_parent", "resources", ["kind", "parent"])

    op.create_table(
        "claims",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(32), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("resource_id", Id, sa.ForeignKey("resources.id", ondelete="CASCADE"), nullable=False),
        sa.UniqueConstraint("namespace", "key", name="uq_claims_namespace_key"),
    )
    op.create_index("ix_claims_resource_id", "claims", ["resource_id"])

    op.create_table(
        "refs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("resource_id", Id, sa.ForeignKey("resources.id", ondelete="CASCADE"), nullable=False),
        sa.Column("organization", sa.String(63), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("target_kind", sa.String(40), nullable=False),
        sa.Column("target_name", sa.String(63), nullable=False),
    )
    op.create_index("ix_refs_resource_id", "refs", ["resource_id"])
    op.create_index("ix_refs_target", "refs", ["organization", "target_kind", "target_name"])

    op.create_table(
        "tokens",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("organization", sa.String(63), nullable=True),
        sa.Column("legal_representative", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.UniqueConstraint("token_hash"),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", Json, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.UniqueConstraint("principal", "key", name="uq_idempotency_principal_key"),
    )
    op.create_index("ix_idempotency_created_at", "idempotency_keys", ["created_at"])

    op.create_table(
        "deposits",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("resource_id", Id, sa.ForeignKey("resources.id", ondelete="CASCADE"), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_index("ix_deposits_resource_id", "deposits", ["resource_id"])

    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(counters, [{"name": "resource_version", "value": 0}])


def downgrade() -> None:
    for table in ("counters", "deposits", "idempotency_keys", "tokens", "refs", "claims", "resources"):
        op.drop_table(table)
