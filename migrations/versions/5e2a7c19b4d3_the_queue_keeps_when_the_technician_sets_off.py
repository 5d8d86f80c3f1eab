"""the queue keeps when the technician sets off

An on-site ticket owes a remote response before the arrival: the technician's first action,
setting off (or starting remote work). The dispatch plan's estimate of that moment is kept
beside the arrival estimate, so the ticket's page, emails and API can judge the response too.
Recomputed on the next queue recompute; empty until then.

Revision ID: 5e2a7c19b4d3
Revises: 7c1e4a9b2d50
Create Date: 2026-12-03 17:25:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e2a7c19b4d3'
down_revision = '7c1e4a9b2d50'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('queue_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('set_off_median', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('set_off_p90', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('queue_entry', schema=None) as batch_op:
        batch_op.drop_column('set_off_p90')
        batch_op.drop_column('set_off_median')
