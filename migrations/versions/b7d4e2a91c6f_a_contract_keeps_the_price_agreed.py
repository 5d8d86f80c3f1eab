"""a contract keeps the price agreed

A plan request (by invoice) or a card Checkout records the monthly price, its currency and the
onboarding fee the client was shown, so an owner repricing the plan or taking it off sale before
confirming never changes what the client agreed to. Existing contracts take their plan's present
price (the only one known); the onboarding fee is kept only for a request still pending from an
organisation with no contract in force, which is when the pages show it (contracts.onboarding_fee_due).

Revision ID: b7d4e2a91c6f
Revises: a7d3c5e1f902
Create Date: 2026-12-03 19:55:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d4e2a91c6f'
down_revision = 'a7d3c5e1f902'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.add_column(sa.Column('monthly_price', sa.Numeric(precision=10, scale=2), nullable=True))
        batch_op.add_column(sa.Column('currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('onboarding_fee', sa.Numeric(precision=10, scale=2), nullable=True))
    op.execute(sa.text(
        "UPDATE contract SET "
        "monthly_price = (SELECT plan.monthly_price FROM plan WHERE plan.id = contract.plan_id), "
        "currency = (SELECT plan.currency FROM plan WHERE plan.id = contract.plan_id), "
        "onboarding_fee = 0"))
    op.execute(sa.text(
        "UPDATE contract SET onboarding_fee = "
        "(SELECT COALESCE(plan.onboarding_fee, 0) FROM plan WHERE plan.id = contract.plan_id AND plan.is_contract) "
        "WHERE status = 'pending' AND EXISTS (SELECT 1 FROM plan WHERE plan.id = contract.plan_id AND plan.is_contract) "
        "AND NOT EXISTS (SELECT 1 FROM contract AS other WHERE other.organisation_id = contract.organisation_id "
        "AND other.status IN ('active', 'past_due'))"))
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.alter_column('monthly_price', existing_type=sa.Numeric(precision=10, scale=2), nullable=False)
        batch_op.alter_column('currency', existing_type=sa.String(length=3), nullable=False)
        batch_op.alter_column('onboarding_fee', existing_type=sa.Numeric(precision=10, scale=2), nullable=False)


def downgrade():
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_column('onboarding_fee')
        batch_op.drop_column('currency')
        batch_op.drop_column('monthly_price')
