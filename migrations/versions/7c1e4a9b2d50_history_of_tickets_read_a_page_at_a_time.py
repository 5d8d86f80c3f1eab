"""history of tickets read a page at a time

The API lists an organisation's resolved and closed tickets newest ended first, a page at a time
from where the last page stopped: an index on organisation, end time and id serves each page in
one seek. Every way to resolve or close a ticket records when it ended; a done ticket without that
time (none is expected) is given its last change's, so no page leaves it out.

Revision ID: 7c1e4a9b2d50
Revises: 440e13de73d0
Create Date: 2026-12-03 16:50:12.402817

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1e4a9b2d50'
down_revision = '440e13de73d0'
branch_labels = None
depends_on = None


def upgrade():
    op.execute(sa.text("UPDATE ticket SET resolved_at = updated_at "
                       "WHERE status IN ('resolved', 'closed') AND resolved_at IS NULL"))
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_organisation_id_resolved_at_id', ['organisation_id', 'resolved_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_organisation_id_resolved_at_id')
