"""expansions: order kinds, the subscription an expansion grows, packs bought, storage on subscriptions

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 14:50:00
"""
from alembic import op
import sqlalchemy as sa
import persistence.db


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='purchase', nullable=False))
        batch_op.add_column(sa.Column('expands_subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('heading', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('renewal_quote', sa.JSON(), nullable=True))
        batch_op.create_foreign_key('fk_orders_expands_subscription_id', 'subscriptions',
                                    ['expands_subscription_id'], ['id'])
    # Orders before this revision bought a first subscription or upgraded one.
    op.execute("UPDATE orders SET kind = 'upgrade' WHERE upgrades_subscription_id IS NOT NULL")
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('storage_packs', sa.Integer(), server_default='0', nullable=False))
    op.create_table('pack_purchases',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('namespace_id', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sku', sa.String(length=32), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('units', sa.BigInteger(), nullable=False),
    sa.Column('subscription_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('created_at', persistence.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['namespace_id'], ['namespaces.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id')
    )
    with op.batch_alter_table('pack_purchases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pack_purchases_namespace_id'), ['namespace_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pack_purchases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pack_purchases_namespace_id'))
    op.drop_table('pack_purchases')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('storage_packs')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint('fk_orders_expands_subscription_id', type_='foreignkey')
        batch_op.drop_column('renewal_quote')
        batch_op.drop_column('heading')
        batch_op.drop_column('expands_subscription_id')
        batch_op.drop_column('kind')
