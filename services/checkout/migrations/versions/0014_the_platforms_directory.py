"""the platform's directory: groups and members as its hooks said

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-02 07:12:26
"""
from alembic import op
import sqlalchemy as sa
import persistence.db


revision = '0014'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Namespaces and memberships that exist already (seeded before) have no rows
    # here: the first hook about them is simply newer than anything heard.
    op.create_table('directory_groups',
    sa.Column('group_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('parent_id', sa.BigInteger(), nullable=True),
    sa.Column('created', sa.Boolean(), nullable=False),
    sa.Column('changed_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_event', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('group_id')
    )
    with op.batch_alter_table('directory_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_directory_groups_parent_id'), ['parent_id'], unique=False)

    op.create_table('directory_members',
    sa.Column('group_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('changed_at', persistence.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_event', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('group_id', 'user_id')
    )


def downgrade() -> None:
    op.drop_table('directory_members')
    with op.batch_alter_table('directory_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_directory_groups_parent_id'))

    op.drop_table('directory_groups')
