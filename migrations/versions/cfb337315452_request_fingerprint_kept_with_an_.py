"""request fingerprint kept with an idempotency key

A ticket keeps a hash of the request it was filed from, so that its idempotency key replays
only that request: the same key sent with another ticket's fields (a form restored by the
browser's Back button, a monitoring tool reusing a key) is no longer answered with the earlier
ticket. Tickets filed before this have none and are compared by their saved fields.

Revision ID: cfb337315452
Revises: fe9815193c08
Create Date: 2026-12-03 06:11:16.999545

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'cfb337315452'
down_revision = 'fe9815193c08'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_fingerprint', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('request_fingerprint')
