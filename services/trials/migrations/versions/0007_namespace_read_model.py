"""namespace read model: eligibility answers from events, not a call to checkout

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 18:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
import persistence.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('directory_namespaces',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.BigInteger(), nullable=True),
    sa.Column('destroyed', sa.Boolean(), nullable=False),
    sa.Column('changed_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_event', sa.String(length=32), nullable=False),
    sa.Column('plan', sa.String(length=32), nullable=False),
    sa.Column('addons', sa.JSON(), nullable=False),
    sa.Column('plan_changed_at', persistence.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('billable_members', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_directory_namespaces_path'), 'directory_namespaces', ['path'], unique=False)
    op.create_table('directory_members',
    sa.Column('namespace_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('role', sa.String(length=16), nullable=True),
    sa.Column('changed_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_event', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('namespace_id', 'user_id')
    )
    op.create_index(op.f('ix_directory_members_user_id'), 'directory_members', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_directory_members_user_id'), table_name='directory_members')
    op.drop_table('directory_members')
    op.drop_index(op.f('ix_directory_namespaces_path'), table_name='directory_namespaces')
    op.drop_table('directory_namespaces')
