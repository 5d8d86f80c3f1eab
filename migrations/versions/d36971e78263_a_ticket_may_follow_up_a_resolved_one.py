"""a ticket may follow up a resolved one

A client whose fix did not hold reports the problem again from the resolved ticket's page: the
new ticket names the one it follows, so the client and the dispatcher see both together. Tickets
filed before this follow nothing.

Revision ID: d36971e78263
Revises: cfb337315452
Create Date: 2026-12-03 09:32:56.089017

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd36971e78263'
down_revision = 'cfb337315452'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follows_ticket_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_ticket_follows_ticket_id'), ['follows_ticket_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_ticket_follows_ticket_id_ticket'), 'ticket', ['follows_ticket_id'], ['id'])


def downgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_ticket_follows_ticket_id_ticket'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_ticket_follows_ticket_id'))
        batch_op.drop_column('follows_ticket_id')
