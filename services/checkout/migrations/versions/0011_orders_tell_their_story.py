"""orders tell their story: amount charged, refunded amount, the subscription paid for

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 07:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_charged', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('refunded_amount', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.create_index(batch_op.f('ix_orders_subscription_id'), ['subscription_id'], unique=False)
        batch_op.create_foreign_key('fk_orders_subscription_id', 'subscriptions', ['subscription_id'], ['id'])
    # Orders completed before this revision: what they charged, refunded and paid for.
    op.execute("UPDATE orders SET amount_charged = total WHERE status = 'completed' OR refunded")
    op.execute("UPDATE orders SET refunded_amount = total WHERE refunded")
    op.execute("UPDATE orders SET subscription_id = upgrades_subscription_id "
               "WHERE status = 'completed' AND upgrades_subscription_id IS NOT NULL")
    op.execute("UPDATE orders SET subscription_id = (SELECT s.id FROM subscriptions s "
               "WHERE s.first_order_id = orders.id) WHERE subscription_id IS NULL")


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint('fk_orders_subscription_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_orders_subscription_id'))
        batch_op.drop_column('subscription_id')
        batch_op.drop_column('refunded_amount')
        batch_op.drop_column('amount_charged')
