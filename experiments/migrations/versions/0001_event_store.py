"""event store: events copied from the services' funnel_events, collector checkpoints

Revision ID: 0001
Revises:
Create Date: 2026-11-21 12:00:00
"""
import sqlalchemy as sa
from alembic import op

import persistence.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("namespace_id", sa.BigInteger(), nullable=True),
        sa.Column("occurred_at", persistence.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("occurred_us", sa.BigInteger(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("experiments", sa.JSON(), nullable=False),
        sa.Column("traffic", sa.String(length=16), nullable=False),
        sa.Column("experiment_key", sa.String(length=100), nullable=True),
        sa.Column("variation_id", sa.Integer(), nullable=True),
        sa.Column("variation_name", sa.String(length=200), nullable=True),
        sa.Column("hash_attribute", sa.String(length=32), nullable=True),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_exposures", ["experiment_key", "unit_id", "occurred_us"], unique=False,
            sqlite_where=sa.text("experiment_key IS NOT NULL"),
            postgresql_where=sa.text("experiment_key IS NOT NULL"),
        )
        batch_op.create_index("ix_events_step_user", ["step", "user_id", "occurred_us"], unique=False)
        batch_op.create_index("ix_events_step_namespace", ["step", "namespace_id", "occurred_us"],
                              unique=False)
        batch_op.create_index("ix_events_service_source", ["service", "source_id"], unique=False)

    op.create_table(
        "collector_checkpoints",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("collected_at", persistence.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade() -> None:
    op.drop_table("collector_checkpoints")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_service_source")
        batch_op.drop_index("ix_events_step_namespace")
        batch_op.drop_index("ix_events_step_user")
        batch_op.drop_index("ix_events_exposures")
    op.drop_table("events")
