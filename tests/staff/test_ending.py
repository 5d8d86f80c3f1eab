"""A dispatcher ends a ticket from its page: resolved, or closed without work (a duplicate), with the
words the client reads on the timeline and in the email."""
from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage, QueueEntry, Role, TicketStatus
from portal.services import tickets
from tests.conftest import make_user
from tests.staff.helpers import staff
from tests.staff.test_actions import TUESDAY_10_NY, events, fresh, queue_setup


def end(client, ticket, status: str, note: str, version=None):
    return client.post(f"/staff/tickets/{ticket.id}/close", data={
        "close-status": status, "close-note": note, "close-version": str(version or fresh(ticket).version)})


def mail(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)))


def test_a_duplicate_is_closed_with_the_reason_the_client_reads(client, monkeypatch):
    q = queue_setup(monkeypatch)
    make_user("admin@acme.example", organisation=q["acme"])
    staff(client, Role.DISPATCHER)
    page = client.get(f"/staff/tickets/{q['mid'].id}").get_data(as_text=True)
    assert "End the ticket" in page and "Closed without work: a duplicate, or nothing to do" in page
    response = end(client, q["mid"], "closed", f"Same outage as #{q['big'].id}: we work on it there.")
    assert response.status_code == 302
    ticket = fresh(q["mid"])
    assert ticket.status == TicketStatus.CLOSED and ticket.resolved_at == TUESDAY_10_NY
    assert db.session.get(QueueEntry, ticket.id) is None or db.session.get(QueueEntry, ticket.id).position is None
    line = events(ticket, "status")[-1]
    assert line.public and f"Same outage as #{q['big'].id}: we work on it there." in line.message
    sent = mail("ticket_closed")
    assert len(sent) == 1 and f"Why: Same outage as #{q['big'].id}" in sent[0].body
    assert f"/client/tickets/new?follows={ticket.id}" in sent[0].body
    page = client.get(f"/staff/tickets/{ticket.id}", follow_redirects=True).get_data(as_text=True)
    assert "End the ticket" not in page
    # Sent twice (Back and send again): the first one ended it, and nothing more is written or emailed.
    again = end(client, q["mid"], "closed", "Same outage", version=ticket.version - 1)
    assert again.status_code == 302 and len(mail("ticket_closed")) == 1


def test_work_under_way_can_be_resolved_but_not_closed_without_work(client, monkeypatch):
    q = queue_setup(monkeypatch)
    make_user("admin@acme.example", organisation=q["acme"])
    tickets.assign(q["big"].id, q["tom"].id, None, TUESDAY_10_NY)
    tickets.set_status(q["big"].id, TicketStatus.IN_PROGRESS, q["tom"].user, TUESDAY_10_NY)
    staff(client, Role.DISPATCHER)
    page = client.get(f"/staff/tickets/{q['big'].id}").get_data(as_text=True)
    assert "Resolved: the problem is fixed" in page and "Closed without work" not in page
    refused = end(client, q["big"], "closed", "Nothing to do")
    assert refused.status_code == 400 and "Not a valid choice" in refused.get_data(as_text=True)
    assert fresh(q["big"]).status == TicketStatus.IN_PROGRESS
    assert end(client, q["big"], "resolved", "Switch replaced; all desks back online.").status_code == 302
    assert fresh(q["big"]).status == TicketStatus.RESOLVED
    assert "Note: Switch replaced; all desks back online." in mail("ticket_resolved")[-1].body


def test_ending_without_a_reason_or_from_a_stale_page_changes_nothing(client, monkeypatch):
    q = queue_setup(monkeypatch)
    make_user("admin@acme.example", organisation=q["acme"])
    staff(client, Role.DISPATCHER)
    refused = end(client, q["small"], "closed", "  ")
    assert refused.status_code == 400 and "Tell the client why" in refused.get_data(as_text=True)
    old = fresh(q["small"]).version
    tickets.assign(q["small"].id, q["tom"].id, None, TUESDAY_10_NY)
    stale = end(client, q["small"], "closed", "Not needed", version=old)
    assert stale.status_code == 409 and "Not needed" in stale.get_data(as_text=True)
    assert fresh(q["small"]).status == TicketStatus.ASSIGNED and mail("ticket_closed") == []


def test_technicians_cannot_end_a_ticket_from_its_page(client, monkeypatch):
    q = queue_setup(monkeypatch)
    staff(client, Role.TECHNICIAN)
    assert end(client, q["small"], "closed", "Not needed").status_code == 403
    assert fresh(q["small"]).status == TicketStatus.NEW


def test_the_client_reads_closed_not_resolved_for_a_duplicate_closed_without_work(client, monkeypatch):
    """The email says the duplicate was closed without a technician's visit; the status page, its live
    update and the 'report it again' form said 'Resolved Tue 24 Nov 10:00' all the same."""
    from tests.conftest import login

    q = queue_setup(monkeypatch)
    make_user("admin@acme.example", organisation=q["acme"])
    staff(client, Role.DISPATCHER)
    assert end(client, q["mid"], "closed", "Same outage as the other one.").status_code == 302
    client.post("/auth/logout")
    login(client, "admin@acme.example")
    sla = client.get(f"/client/tickets/{q['mid'].id}/live.json").get_json()["display"]["sla"]
    assert sla.startswith("Closed Tue 24 Nov 10:00") and "Resolved" not in sla
    assert "Resolved Tue 24 Nov" not in client.get(f"/client/tickets/{q['mid'].id}").get_data(as_text=True)
    again = client.get(f"/client/tickets/new?follows={q['mid'].id}").get_data(as_text=True)
    assert "again (closed Tue 24 Nov 10:00)" in " ".join(again.split())
