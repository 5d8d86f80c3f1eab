"""What an owner's change of a plan's targets does to the open tickets under it."""
from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import Role, Ticket, TicketEvent
from tests.client.helpers import set_clock
from tests.conftest import make_organisation, make_plan
from tests.staff.helpers import staff
from tests.staff.test_actions import TUESDAY_10_NY, open_ticket
from tests.staff.test_rota import plan_form


def test_tightening_a_target_does_not_turn_a_response_made_in_time_into_a_miss(client, monkeypatch):
    """Responded 40 minutes in under a 60-minute promise; the owner then tightened the plan to 30 minutes. The
    ticket read 'breached', its timeline told the client the response target was missed, and the Promises kept
    report counted a miss the firm never made."""
    set_clock(monkeypatch, TUESDAY_10_NY)
    plan = make_plan("priority", name="Priority")
    ticket = open_ticket(make_organisation("Acme", plan), "Server down")
    ticket.first_response_at = TUESDAY_10_NY + timedelta(minutes=40)
    db.session.commit()
    set_clock(monkeypatch, TUESDAY_10_NY + timedelta(minutes=50))
    staff(client, Role.OWNER)
    assert client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, remote_response_minutes="30")).status_code == 302

    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.response_due_at == TUESDAY_10_NY + timedelta(minutes=60)
    assert ticket.response_breached_at is None and ticket.sla_state != "breached"
    kinds = db.session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)).all()
    assert "sla_breached_response" not in kinds
    page = client.get("/staff/promises").get_data(as_text=True)
    assert "1 of 1 (100%)" in page and "None: every deadline that fell due was kept." in page

    # A later pause on the ticket (due times recomputed from the plan's terms) does not bring the miss back.
    from portal.services import sla
    sla.recompute_due(ticket, TUESDAY_10_NY + timedelta(minutes=55))
    assert ticket.response_due_at == TUESDAY_10_NY + timedelta(minutes=60)
    assert sla.record_breaches(ticket, TUESDAY_10_NY + timedelta(minutes=55)) == []


def test_a_response_still_awaited_takes_the_new_target(client, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    plan = make_plan("priority", name="Priority")
    ticket = open_ticket(make_organisation("Acme", plan), "Server down")
    set_clock(monkeypatch, TUESDAY_10_NY + timedelta(minutes=10))
    staff(client, Role.OWNER)
    client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, remote_response_minutes="90"))
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).response_due_at == TUESDAY_10_NY + timedelta(minutes=90)
