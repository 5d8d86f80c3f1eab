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


def _open_at(org, title, at):
    from decimal import Decimal
    from portal.services import tickets
    data = tickets.TicketInput(title=title, description="", category="software", impact="person",
                               revenue_at_risk_per_hour=Decimal(0), client_deadline=None, onsite_needed=False,
                               safety_critical=False)
    return tickets.open_ticket(org.id, None, data, at).ticket


def _flashes(response) -> str:
    import html
    import re
    return html.unescape(" ".join(re.findall(r'<p class="flash[^"]*"[^>]*>(.*?)</p>', response.get_data(as_text=True), re.S)))


def test_the_owner_is_told_whether_open_tickets_deadlines_moved_and_which(client, monkeypatch):
    """Every save said 'open tickets were re-ranked', whether the deadlines clients read had moved or not."""
    set_clock(monkeypatch, TUESDAY_10_NY)
    plan = make_plan("priority", name="Priority")
    acme = make_organisation("Acme", plan)
    early = open_ticket(acme, "Server down")
    set_clock(monkeypatch, TUESDAY_10_NY + timedelta(minutes=40))
    late = _open_at(acme, "Printer jammed", TUESDAY_10_NY + timedelta(minutes=40))
    answered = _open_at(acme, "VPN slow", TUESDAY_10_NY + timedelta(minutes=40))
    answered.first_response_at = TUESDAY_10_NY + timedelta(minutes=41)
    db.session.commit()
    set_clock(monkeypatch, TUESDAY_10_NY + timedelta(minutes=45))
    staff(client, Role.OWNER)

    named = client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, name="Priority Plus"), follow_redirects=True)
    assert "targets and coverage are unchanged, so open tickets keep their deadlines" in _flashes(named)

    tightened = _flashes(client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, remote_response_minutes="30"),
                                     follow_redirects=True))
    assert f"2 open tickets (#{early.id}, #{late.id}) now have deadlines from them" in tightened
    assert f"#{early.id} already passed a new deadline and is now counted as missed" in tightened
    assert f"#{answered.id}" not in tightened  # answered in time: its deadline did not move
