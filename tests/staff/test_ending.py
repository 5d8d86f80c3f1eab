"""A dispatcher ends a ticket from its page: resolved, or closed without work (a duplicate), with the
words the client reads on the timeline and in the email."""
import pytest
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
    assert again.status_code == 303 and len(mail("ticket_closed")) == 1


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


@pytest.mark.parametrize("ending, kind", [("resolved", "ticket_resolved"), ("closed", "ticket_closed")])
def test_the_same_ending_sent_twice_is_a_repeat_not_a_refusal(client, monkeypatch, ending, kind):
    """A double click on "End the ticket" (the same form, the same version, twice): the first ends
    it, the second says so in a success tone and writes nothing: one timeline line, one email."""
    q = queue_setup(monkeypatch)
    make_user("admin@acme.example", organisation=q["acme"])
    staff(client, Role.DISPATCHER)
    version = fresh(q["mid"]).version
    assert end(client, q["mid"], ending, "Done.", version=version).status_code == 302
    ended = fresh(q["mid"]).version
    again = end(client, q["mid"], ending, "Done.", version=version)
    assert again.status_code == 303 and again.headers["Location"].endswith(f"/staff/tickets/{q['mid'].id}")
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    label = "resolved" if ending == "resolved" else "closed"
    assert (f'<p class="flash flash-success" role="status">#{q["mid"].id} is already {label}: your submit went '
            "through, and nothing more was changed or sent.</p>") in page
    ticket = fresh(q["mid"])
    assert ticket.status == ending and ticket.version == ended
    assert len([e for e in events(ticket, "status") if e.detail.get("to") == ending]) == 1
    assert len(mail(kind)) == 1


@pytest.mark.parametrize("first, second", [("resolved", "closed"), ("closed", "resolved")])
def test_an_ending_sent_after_the_other_ending_says_how_it_ended_and_changes_nothing(
        client, monkeypatch, first, second):
    """Two dispatchers end the same ticket from pages drawn together, one as resolved and one as
    closed without work: the second is told how it ended, and it stays so."""
    q = queue_setup(monkeypatch)
    make_user("admin@acme.example", organisation=q["acme"])
    staff(client, Role.DISPATCHER)
    version = fresh(q["mid"]).version
    assert end(client, q["mid"], first, "First.", version=version).status_code == 302
    ended = fresh(q["mid"]).version
    again = end(client, q["mid"], second, "Second.", version=version)
    assert again.status_code == 303
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert f"#{q['mid'].id} was already {first}, not {second}: it stays so, and nothing was changed or sent." in page
    ticket = fresh(q["mid"])
    assert ticket.status == first and ticket.version == ended and len(events(ticket, "status")) == 1
    assert len(mail("ticket_resolved")) + len(mail("ticket_closed")) == 1


def test_two_ends_at_the_same_instant_write_once(client, monkeypatch):
    """Both submits read the ticket open; the other dispatcher's lands between this one's look and its
    write. This one is told the ticket is already resolved, and nothing is written twice."""
    from portal.services import staff as staff_service

    q = queue_setup(monkeypatch)
    make_user("admin@acme.example", organisation=q["acme"])
    other = make_user("dispatch2@firm.example", role=Role.DISPATCHER)
    staff(client, Role.DISPATCHER)
    version = fresh(q["mid"]).version
    looked = staff_service._stale

    def the_other_lands_now(ticket_id, expected_version):
        stale = looked(ticket_id, expected_version)
        tickets.set_status(ticket_id, TicketStatus.RESOLVED, other, TUESDAY_10_NY, note="Done.")
        return stale

    monkeypatch.setattr(staff_service, "_stale", the_other_lands_now)
    again = end(client, q["mid"], "resolved", "Done.", version=version)
    assert again.status_code == 303
    assert "is already resolved: your submit went through" in client.get(
        again.headers["Location"]).get_data(as_text=True)
    ticket = fresh(q["mid"])
    assert len(events(ticket, "status")) == 1 and len(mail("ticket_resolved")) == 1


def test_a_ticket_reopened_meanwhile_is_not_ended_by_the_old_page(client, monkeypatch):
    """The ticket was resolved and the client reopened it: the page drawn before both says what it is
    now, keeps the note, and ends nothing."""
    q = queue_setup(monkeypatch)
    admin = make_user("admin@acme.example", organisation=q["acme"])
    staff(client, Role.DISPATCHER)
    version = fresh(q["mid"]).version
    assert end(client, q["mid"], "resolved", "Done.", version=version).status_code == 302
    tickets.set_status(q["mid"].id, TicketStatus.NEW, admin, TUESDAY_10_NY, note="Still broken.")
    again = end(client, q["mid"], "resolved", "Done.", version=version)
    page = again.get_data(as_text=True)
    assert again.status_code == 409 and "It is &#39;Waiting in queue&#39; now." in page and "Done." in page
    ticket = fresh(q["mid"])
    assert ticket.status == TicketStatus.NEW and len(mail("ticket_resolved")) == 1
