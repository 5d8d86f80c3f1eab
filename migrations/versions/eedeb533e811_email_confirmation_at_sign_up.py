"""email confirmation at sign-up

A self-service sign-up now waits for its confirmation link before it can log in. Accounts that
exist already are confirmed at migration time (they were opened before the rule, or by an
invitation, staff or the demo seed).

Revision ID: eedeb533e811
Revises: 68b50a7a8d84
Create Date: 2026-11-25 15:19:20.265800

"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'eedeb533e811'
down_revision = '68b50a7a8d84'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_confirmed_at', sa.DateTime(timezone=True), nullable=True))

    user_account = sa.table('user_account', sa.column('email_confirmed_at', sa.DateTime(timezone=True)))
    op.execute(
        user_account.update()
        .where(user_account.c.email_confirmed_at.is_(None))
        .values(email_confirmed_at=datetime.now(timezone.utc))
    )


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('email_confirmed_at')
