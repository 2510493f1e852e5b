"""the customer portal: removed cards, why auto-renew is off, billing managers, invitations, audit

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-02 14:40:00
"""
from alembic import op
import sqlalchemy as sa
import persistence.db


revision = '0020'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removed_at', persistence.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_renew_off_reason', sa.String(length=32), nullable=True))

    op.create_table('billing_managers',
    sa.Column('namespace_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('invited_by', sa.BigInteger(), nullable=False),
    sa.Column('created_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ),
    sa.PrimaryKeyConstraint('namespace_id', 'user_id')
    )
    with op.batch_alter_table('billing_managers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_managers_user_id'), ['user_id'], unique=False)

    op.create_table('billing_invitations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.BigInteger(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', persistence.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('accepted_by', sa.BigInteger(), nullable=True),
    sa.Column('revoked_at', persistence.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('billing_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_invitations_namespace_id'), ['namespace_id'], unique=False)

    op.create_table('billing_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.BigInteger(), nullable=True),
    sa.Column('subscription_id', sa.BigInteger(), nullable=True),
    sa.Column('order_id', sa.BigInteger(), nullable=True),
    sa.Column('actor_id', sa.BigInteger(), nullable=False),
    sa.Column('action', sa.String(length=48), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('billing_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_audit_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_billing_audit_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_billing_audit_namespace_id'), ['namespace_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_billing_audit_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_billing_audit_subscription_id'), ['subscription_id'], unique=False)


def downgrade() -> None:
    op.drop_table('billing_audit')
    op.drop_table('billing_invitations')
    op.drop_table('billing_managers')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('auto_renew_off_reason')
    with op.batch_alter_table('payment_methods', schema=None) as batch_op:
        batch_op.drop_column('removed_at')
