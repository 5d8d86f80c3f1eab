"""From the QA walk: "Resolved — Replaced the SSD, payroll printed.." and a resolved email promising a reopen
that a comment never performs."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage, Role, TicketEvent, TicketStatus
from portal.services import tickets
from tests.conftest import make_organisation, make_plan, make_user
from tests.staff.test_actions import open_ticket

TUESDAY_11_NY = datetime(2026, 11, 24, 16, 0, tzinfo=timezone.utc)


def test_resolution_note_and_email(app):
    org = make_organisation("Acme", make_plan("priority"))
    make_user("a@acme.example", organisation=org)
    dispatcher = make_user("d@firm.example", role=Role.DISPATCHER)
    ticket = open_ticket(org, "Payroll PC will not boot")
    tickets.set_status(ticket.id, TicketStatus.RESOLVED, dispatcher, TUESDAY_11_NY, note="Replaced the SSD, payroll printed.")

    event = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "status")
                               .order_by(TicketEvent.id.desc())).first()
    assert event.message.endswith("Replaced the SSD, payroll printed.") and not event.message.endswith("..")

    email = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_resolved")).one()
    assert "reopen" not in email.body
    assert f"/client/tickets/new?follows={ticket.id}" in email.body


def test_a_note_without_full_stop_gets_one(app):
    org = make_organisation("Acme", make_plan("priority"))
    dispatcher = make_user("d@firm.example", role=Role.DISPATCHER)
    ticket = open_ticket(org, "Printer jam")
    tickets.set_status(ticket.id, TicketStatus.RESOLVED, dispatcher, TUESDAY_11_NY, note="Cleared the jam")
    event = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "status")
                               .order_by(TicketEvent.id.desc())).first()
    assert event.message.endswith("Cleared the jam.")
