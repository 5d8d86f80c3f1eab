"""an API token remembers the form that created it

The create form's one-time key, unique per organisation, so the same form sent twice makes one
token. Tokens made before carry none.

Revision ID: 440e13de73d0
Revises: 2b58f9c9a713
Create Date: 2026-12-03 13:36:31.879392

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '440e13de73d0'
down_revision = '2b58f9c9a713'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_key', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_api_token_organisation_id'), ['organisation_id', 'request_key'])



def downgrade():
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_api_token_organisation_id'), type_='unique')
        batch_op.drop_column('request_key')

