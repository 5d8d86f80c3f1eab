"""promises made before a contract ended still count

A ticket whose contract ends (or is suspended, or moves to break/fix) goes best effort; one
closed without work (a duplicate) carries no promise of its own. The ticket now keeps when its
promises stopped being owed, and the plan they were made on, so a response or arrival already
kept or missed before then still counts in the client's compliance and the firm's Promises kept.
Filled from the timeline: the last move from a contract plan to break/fix on a ticket still best
effort, and a ticket closed straight from an open state.

Revision ID: a7d3c5e1f902
Revises: 5e2a7c19b4d3
Create Date: 2026-12-03 19:45:00.000000

"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a7d3c5e1f902'
down_revision = '5e2a7c19b4d3'
branch_labels = None
depends_on = None

OPEN = ('new', 'assigned', 'en_route', 'on_site', 'in_progress', 'waiting_on_client')


def upgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_promise_ended_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_promise_plan_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_ticket_sla_promise_plan_id_plan'), 'plan',
                                    ['sla_promise_plan_id'], ['id'])
    _backfill(op.get_bind())


def _detail(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return value or {}


def _backfill(bind):
    plans = {}
    for plan_id, name in bind.execute(sa.text("SELECT id, name FROM plan ORDER BY id")):
        plans.setdefault(name, plan_id)
    rows = bind.execute(sa.text(
        "SELECT e.ticket_id, e.at, e.kind, e.detail, t.status, t.sla_best_effort, t.sla_plan_id "
        "FROM ticket_event e JOIN ticket t ON t.id = e.ticket_id "
        "WHERE e.kind IN ('sla_rebased', 'status') ORDER BY e.ticket_id, e.at, e.id")).fetchall()
    ended = {}
    for ticket_id, at, kind, detail, status, best_effort, plan_id in rows:
        detail = _detail(detail)
        if kind == 'sla_rebased':
            before = (detail.get('before') or {}).get('plan')
            if detail.get('plan') == 'Break/Fix' and before not in (None, 'Break/Fix') and best_effort:
                ended[ticket_id] = (at, plans.get(before))
            elif detail.get('plan') != 'Break/Fix':
                ended.pop(ticket_id, None)  # under a contract again: owed again
        elif (status == 'closed' and detail.get('to') == 'closed' and detail.get('from') in OPEN
              and not best_effort and ticket_id not in ended):
            ended[ticket_id] = (at, None)
    for ticket_id, (at, plan_id) in ended.items():
        bind.execute(sa.text("UPDATE ticket SET sla_promise_ended_at = :at, sla_promise_plan_id = :plan "
                             "WHERE id = :id"), {"at": at, "plan": plan_id, "id": ticket_id})


def downgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_ticket_sla_promise_plan_id_plan'), type_='foreignkey')
        batch_op.drop_column('sla_promise_plan_id')
        batch_op.drop_column('sla_promise_ended_at')
