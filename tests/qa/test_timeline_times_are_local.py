"""Found walking the demo: two public timeline events showed machine times to clients ("response due
2026-11-25T17:06:50.650103+00:00", "response due 2026-11-25 15:12 UTC") while every other time on the
page is the firm's local time."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import Contract, ContractStatus, Role, TicketEvent
from portal.services import sla
from tests.client.helpers import set_clock
from tests.conftest import make_organisation, make_plan
from tests.staff.helpers import staff
from tests.staff.test_actions import TUESDAY_10_NY, open_ticket
from tests.staff.test_rota import plan_form


def _public_messages(kind: str) -> list[str]:
    return [e.message for e in db.session.scalars(select(TicketEvent).where(TicketEvent.kind == kind, TicketEvent.public))]


def test_plan_edit_event_gives_the_new_due_time_in_firm_time(client, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)  # 10:00 in New York
    plan = make_plan("priority", name="Priority")
    open_ticket(make_organisation("Acme", plan), "Server down")
    staff(client, Role.OWNER)
    client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, remote_response_minutes="30"))
    (message,) = _public_messages("sla_rebased")
    assert "response due Tue 24 Nov 10:30" in message
    assert "UTC" not in message and "2026-" not in message


def test_contract_change_event_gives_due_times_in_firm_time(app, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    acme = make_organisation("Acme")
    open_ticket(acme, "Tills down", onsite=True)
    plan = make_plan("priority", name="Priority")  # 60 min response, 240 min on site
    db.session.add(Contract(organisation_id=acme.id, plan_id=plan.id, status=ContractStatus.ACTIVE,
                            payment_method="invoice", starts_at=TUESDAY_10_NY))
    db.session.commit()
    later = TUESDAY_10_NY + timedelta(minutes=5)
    sla.rebase_organisation(acme.id, later, "Priority contract active")
    (message,) = _public_messages("sla_rebased")
    assert "response due Tue 24 Nov 11:05" in message and "arrival due Tue 24 Nov 14:05" in message
    assert "+00:00" not in message and "2026-" not in message
