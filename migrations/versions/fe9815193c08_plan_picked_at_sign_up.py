"""plan picked at sign-up

The plan a prospect picked before signing up is kept with the unconfirmed account, so that a
confirmation link sent again ("send the link again") still leads to that plan.

Revision ID: fe9815193c08
Revises: eedeb533e811
Create Date: 2026-11-25 19:20:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'fe9815193c08'
down_revision = 'eedeb533e811'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sign_up_plan', sa.String(length=50), nullable=True))


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('sign_up_plan')
