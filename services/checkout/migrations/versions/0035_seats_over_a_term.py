"""seats over a term: seat holdings, seat settings and their audit,
quarterly reconciliations, Duo seat assignments

Revision ID: 0035
Revises: 0021
Create Date: 2026-12-02 14:50:00
"""
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
import persistence.db


revision = '0035'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    holdings = op.create_table('seat_holdings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('took_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('left_at', persistence.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('seat_holdings', schema=None) as batch_op:
        batch_op.create_index('ix_seat_holdings_namespace_left', ['namespace_id', 'left_at'], unique=False)
        batch_op.create_index('uq_seat_holdings_open', ['namespace_id', 'user_id'], unique=True,
                              sqlite_where=sa.text('left_at IS NULL'),
                              postgresql_where=sa.text('left_at IS NULL'))
    # Members billable already hold a seat from now on (when they took it is not known).
    memberships = sa.table('memberships', sa.column('namespace_id'), sa.column('user_id'),
                           sa.column('role'), sa.column('billable'))
    now = datetime.now(UTC)
    held = op.get_bind().execute(sa.select(memberships.c.namespace_id, memberships.c.user_id,
                                           memberships.c.role).where(memberships.c.billable.is_(True))).all()
    if held:
        op.bulk_insert(holdings, [{"namespace_id": ns, "user_id": user, "role": role, "took_at": now}
                                  for ns, user, role in held])

    op.create_table('namespace_seat_settings',
    sa.Column('namespace_id', sa.BigInteger(), nullable=False),
    sa.Column('block_overages', sa.Boolean(), nullable=False),
    sa.Column('reconciliation_excluded', sa.Boolean(), nullable=False),
    sa.Column('updated_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ),
    sa.PrimaryKeyConstraint('namespace_id')
    )
    op.create_table('seat_setting_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.BigInteger(), nullable=False),
    sa.Column('setting', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('changed_by', sa.BigInteger(), nullable=False),
    sa.Column('changed_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('seat_setting_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seat_setting_changes_namespace_id'), ['namespace_id'], unique=False)

    op.create_table('seat_reconciliations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('term_start', sa.Date(), nullable=False),
    sa.Column('quarter', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('max_seats_used', sa.Integer(), nullable=True),
    sa.Column('seats_before', sa.Integer(), nullable=True),
    sa.Column('overage_seats', sa.Integer(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('charge_on', sa.Date(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('payment_intent_id', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subscription_id', 'term_start', 'quarter')
    )
    with op.batch_alter_table('seat_reconciliations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_seat_reconciliations_charge_on'), ['charge_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_seat_reconciliations_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_seat_reconciliations_subscription_id'), ['subscription_id'],
                              unique=False)

    op.create_table('duo_assignments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.BigInteger(), nullable=False),
    sa.Column('sku', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('assigned_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('namespace_id', 'sku', 'user_id')
    )
    with op.batch_alter_table('duo_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duo_assignments_namespace_id'), ['namespace_id'], unique=False)


def downgrade() -> None:
    op.drop_table('duo_assignments')
    op.drop_table('seat_reconciliations')
    op.drop_table('seat_setting_changes')
    op.drop_table('namespace_seat_settings')
    op.drop_table('seat_holdings')
