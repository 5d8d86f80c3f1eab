"""account activity of an organisation

Who invited, removed, restored or changed a colleague, and who created or revoked an API token,
kept per organisation for its admins. Nothing before this is known, so the log starts empty.

Revision ID: 3cb9d0f5e9d9
Revises: d36971e78263
Create Date: 2026-12-03 09:39:08.095881

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3cb9d0f5e9d9'
down_revision = 'd36971e78263'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('account_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_account_event_actor_id_user_account')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], name=op.f('fk_account_event_organisation_id_organisation')),
    sa.ForeignKeyConstraint(['subject_id'], ['user_account.id'], name=op.f('fk_account_event_subject_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_event'))
    )
    with op.batch_alter_table('account_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_event_organisation_id'), ['organisation_id'], unique=False)


def downgrade():
    with op.batch_alter_table('account_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_event_organisation_id'))

    op.drop_table('account_event')