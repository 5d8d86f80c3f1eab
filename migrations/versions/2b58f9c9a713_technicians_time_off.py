"""technicians' time off

A technician's holiday, sickness or training: no shift and no call between two instants, so the
dispatch engine plans nothing for them then. Nothing before this is known, so it starts empty.

Revision ID: 2b58f9c9a713
Revises: 3cb9d0f5e9d9
Create Date: 2026-12-03 13:03:54.861124

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2b58f9c9a713'
down_revision = '3cb9d0f5e9d9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('time_off',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('technician_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_time_off_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['technician_id'], ['technician.id'], name=op.f('fk_time_off_technician_id_technician')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_time_off'))
    )
    with op.batch_alter_table('time_off', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_time_off_ends_at'), ['ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_time_off_technician_id'), ['technician_id'], unique=False)



def downgrade():
    with op.batch_alter_table('time_off', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_time_off_technician_id'))
        batch_op.drop_index(batch_op.f('ix_time_off_ends_at'))

    op.drop_table('time_off')
