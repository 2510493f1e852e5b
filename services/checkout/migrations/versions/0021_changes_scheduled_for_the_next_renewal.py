"""changes scheduled for the next renewal: fewer seats, a lower plan, add-ons dropped

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 15:05:00
"""
from alembic import op
import sqlalchemy as sa
import persistence.db


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scheduled_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('renewal_date', sa.Date(), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=True),
    sa.Column('plan', sa.String(length=32), nullable=True),
    sa.Column('drop_addons', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=False),
    sa.Column('created_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('applied_at', persistence.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('canceled_at', persistence.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('scheduled_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scheduled_changes_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_index('uq_scheduled_changes_open', ['subscription_id', 'renewal_date'], unique=True,
                              sqlite_where=sa.text('applied_at IS NULL AND canceled_at IS NULL'),
                              postgresql_where=sa.text('applied_at IS NULL AND canceled_at IS NULL'))


def downgrade() -> None:
    op.drop_table('scheduled_changes')
