"""Dispatcher actions on a ticket: override (and a stale version), clear, assign, details; each re-runs the queue."""
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from portal.extensions import db
from portal.models import QueueEntry, Role, Ticket, TicketEvent
from portal.services import tickets
from tests.client.helpers import set_clock
from tests.conftest import make_organisation, make_plan
from tests.staff.helpers import make_technician, staff

TUESDAY_10_NY = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def open_ticket(org, title: str, impact: str = "person", revenue: str = "0", onsite: bool = False,
                category: str = "software") -> Ticket:
    data = tickets.TicketInput(title=title, description="", category=category, impact=impact,
                               revenue_at_risk_per_hour=Decimal(revenue), client_deadline=None,
                               onsite_needed=onsite, safety_critical=False)
    return tickets.open_ticket(org.id, None, data, TUESDAY_10_NY).ticket


def queue_setup(monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    tom = make_technician()
    tara = make_technician("tara@firm.example", "Tara Net", skills=("network", "security"))
    big = open_ticket(acme, "Whole office offline", impact="company", revenue="5000")
    mid = open_ticket(acme, "Accounts team cannot print", impact="department")
    small = open_ticket(acme, "One mouse broken")
    return dict(acme=acme, tom=tom, tara=tara, big=big, mid=mid, small=small)


def position(ticket: Ticket) -> int:
    db.session.expire_all()
    return db.session.get(QueueEntry, ticket.id).position


def fresh(ticket: Ticket) -> Ticket:
    return db.session.get(Ticket, ticket.id, populate_existing=True)


def events(ticket: Ticket, kind: str) -> list[TicketEvent]:
    return list(db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                             TicketEvent.kind == kind)))


def test_override_moves_the_ticket_and_logs_why(client, monkeypatch):
    q = queue_setup(monkeypatch)
    assert [position(q["big"]), position(q["mid"]), position(q["small"])] == [1, 2, 3]
    dispatcher = staff(client, Role.DISPATCHER)
    version = fresh(q["small"]).version
    page = client.get(f"/staff/tickets/{q['small'].id}").get_data(as_text=True)
    assert f'name="override-version" type="hidden" value="{version}"' in page
    response = client.post(f"/staff/tickets/{q['small'].id}/override", data={
        "override-position": "1", "override-reason": "Mouse belongs to the CEO presenting at 11", "override-version": str(version)})
    assert response.status_code == 302
    assert [position(q["small"]), position(q["big"]), position(q["mid"])] == [1, 2, 3]
    ticket = fresh(q["small"])
    assert (ticket.override_position, ticket.override_reason) == (1, "Mouse belongs to the CEO presenting at 11")
    [event] = events(ticket, "override")
    assert event.actor_id == dispatcher.id and "CEO presenting" in event.message
    board = client.get("/staff/").get_data(as_text=True)
    assert "pinned at place 1 of the triage order" in board  # the flash after the redirect
    assert "override" in board and "CEO presenting" in board
    assert "CEO presenting" in client.get(f"/staff/tickets/{ticket.id}").get_data(as_text=True)


def test_stale_version_is_refused_with_a_clear_message(client, monkeypatch):
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    old_version = fresh(q["small"]).version
    # Someone else changes the ticket after the dispatcher's page was drawn.
    tickets.set_details(q["small"].id, True, 30, None, None, TUESDAY_10_NY)
    assert fresh(q["small"]).version != old_version
    before = {t: position(q[t]) for t in ("big", "mid", "small")}
    response = client.post(f"/staff/tickets/{q['small'].id}/override", data={
        "override-position": "1", "override-reason": "CEO", "override-version": str(old_version)})
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "changed by someone else" in html and "nothing was saved" in html
    assert 'value="CEO"' in html  # what the dispatcher typed is still there
    # ... now against the saved version, so submitting again (after a look) is accepted.
    assert f'name="override-version" type="hidden" value="{fresh(q["small"]).version}"' in html
    assert fresh(q["small"]).override_position is None
    assert {t: position(q[t]) for t in ("big", "mid", "small")} == before
    assert events(q["small"], "override") == []


def test_override_needs_a_reason_and_a_valid_place(client, monkeypatch):
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    version = str(fresh(q["small"]).version)
    for data, message in [
        ({"override-position": "1", "override-reason": "  "}, "Say why"),
        ({"override-position": "0", "override-reason": "x"}, "Number must be between 1"),
        ({"override-position": "first", "override-reason": "x"}, "Not a valid integer value"),
    ]:
        response = client.post(f"/staff/tickets/{q['small'].id}/override", data={**data, "override-version": version})
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert message in page
        assert not (data["override-position"] == "first" and "Number must be between" in page), "one typo, one message"
    assert fresh(q["small"]).override_position is None and position(q["small"]) == 3


def test_override_on_work_in_hand_names_the_place_field(client, monkeypatch):
    q = queue_setup(monkeypatch)
    tickets.assign(q["big"].id, q["tara"].id, None, TUESDAY_10_NY)
    tickets.set_status(q["big"].id, "in_progress", None, TUESDAY_10_NY)
    staff(client, Role.DISPATCHER)
    response = client.post(f"/staff/tickets/{q['big'].id}/override", data={
        "override-position": "2", "override-reason": "x", "override-version": str(fresh(q["big"]).version)})
    assert response.status_code == 400
    assert "Only a ticket waiting in the queue has a place to change" in response.get_data(as_text=True)


def test_clear_override_returns_to_the_engines_order(client, monkeypatch):
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    client.post(f"/staff/tickets/{q['small'].id}/override", data={
        "override-position": "1", "override-reason": "CEO", "override-version": str(fresh(q["small"]).version)})
    assert position(q["small"]) == 1
    response = client.post(f"/staff/tickets/{q['small'].id}/override/clear", data={
        "clear-reason": "Presentation over", "clear-version": str(fresh(q["small"]).version)})
    assert response.status_code == 302
    assert fresh(q["small"]).override_position is None and position(q["small"]) == 3
    assert "Presentation over" in events(q["small"], "override")[-1].message
    # Lifted already (a second tab): refused in words, and the client's timeline hears nothing more.
    told = len(events(q["small"], "prioritised"))
    response = client.post(f"/staff/tickets/{q['small'].id}/override/clear", data={
        "clear-reason": "Presentation over", "clear-version": str(fresh(q["small"]).version)})
    assert response.status_code == 400 and "nothing to lift" in response.get_data(as_text=True)
    assert len(events(q["small"], "prioritised")) == told


def test_assigning_a_technician_without_the_skill_needed_says_so(client, monkeypatch):
    q = queue_setup(monkeypatch)
    tickets.set_details(q["mid"].id, True, 45, "printer", None, TUESDAY_10_NY)
    staff(client, Role.DISPATCHER)
    response = client.post(f"/staff/tickets/{q['mid'].id}/assign", follow_redirects=True, data={
        "assign-technician_id": str(q["tom"].id), "assign-version": str(fresh(q["mid"]).version)})
    page = response.get_data(as_text=True)
    assert "technician saved" in page and "Tom Tech has no printer skill on record: assigned all the same." in page
    assert fresh(q["mid"]).technician_id == q["tom"].id


def test_assign_and_reassign_a_technician(client, monkeypatch):
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    url = f"/staff/tickets/{q['mid'].id}/assign"
    response = client.post(url, data={"assign-technician_id": str(q["tom"].id), "assign-version": str(fresh(q["mid"]).version)})
    assert response.status_code == 302
    assert fresh(q["mid"]).technician_id == q["tom"].id
    db.session.expire_all()
    assert db.session.get(QueueEntry, q["mid"].id).technician_id == q["tom"].id
    response = client.post(url, data={"assign-technician_id": str(q["tara"].id), "assign-version": str(fresh(q["mid"]).version)})
    assert response.status_code == 302 and fresh(q["mid"]).technician_id == q["tara"].id
    assert len(events(q["mid"], "assigned")) == 2
    # Same technician again: refused next to the field, nothing logged.
    response = client.post(url, data={"assign-technician_id": str(q["tara"].id), "assign-version": str(fresh(q["mid"]).version)})
    assert response.status_code == 400 and "already has the ticket" in response.get_data(as_text=True)
    assert len(events(q["mid"], "assigned")) == 2
    # Back to the engine's choice.
    response = client.post(url, data={"assign-technician_id": "0", "assign-version": str(fresh(q["mid"]).version)})
    assert response.status_code == 302 and fresh(q["mid"]).technician_id is None


def test_assign_with_a_stale_version_changes_nothing(client, monkeypatch):
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    old = fresh(q["mid"]).version
    tickets.override_position(q["mid"].id, 1, "x", q["tom"].user, TUESDAY_10_NY)
    response = client.post(f"/staff/tickets/{q['mid'].id}/assign",
                           data={"assign-technician_id": str(q["tom"].id), "assign-version": str(old)})
    assert response.status_code == 409 and "changed by someone else" in response.get_data(as_text=True)
    assert fresh(q["mid"]).technician_id is None


def test_set_onsite_effort_and_skill(client, monkeypatch):
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    response = client.post(f"/staff/tickets/{q['small'].id}/details", data={
        "details-onsite_needed": "y", "details-effort_minutes": "20", "details-required_skill": "Security",
        "details-version": str(fresh(q["small"]).version)})
    assert response.status_code == 302
    ticket = fresh(q["small"])
    assert (ticket.onsite_needed, ticket.effort_minutes, ticket.required_skill) == (True, 20, "security")
    assert ticket.arrival_due_at is not None  # the on-site clock now runs too
    assert events(ticket, "details")
    db.session.expire_all()
    # Only Tara has the security skill: the engine now sends her.
    assert db.session.get(QueueEntry, ticket.id).technician_id == q["tara"].id


def test_bad_details_name_the_field_and_change_nothing(client, monkeypatch):
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    version = str(fresh(q["small"]).version)
    for data, message in [
        ({"details-effort_minutes": "0"}, "Between 1 minute and a week"),
        ({"details-effort_minutes": "soon"}, "Not a valid integer value"),
        ({"details-required_skill": "two words"}, "A skill is one word"),
    ]:
        response = client.post(f"/staff/tickets/{q['small'].id}/details", data={**data, "details-version": version})
        html = response.get_data(as_text=True)
        assert response.status_code == 400 and message in html
    ticket = fresh(q["small"])
    assert (ticket.onsite_needed, ticket.effort_minutes, str(ticket.version)) == (False, None, version)


def test_a_form_without_its_version_is_treated_as_out_of_date(client, monkeypatch):
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    for version in ("", "abc"):
        response = client.post(f"/staff/tickets/{q['small'].id}/override", data={
            "override-position": "1", "override-reason": "CEO", "override-version": version})
        assert response.status_code == 409 and "changed by someone else" in response.get_data(as_text=True)
    assert fresh(q["small"]).override_position is None and events(q["small"], "override") == []


def test_an_action_on_a_ticket_resolved_meanwhile_says_nothing_was_saved(client, monkeypatch):
    """The action forms are not drawn for a closed ticket; the refusal must still be read on the page."""
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    old_version = fresh(q["small"]).version
    tickets.set_status(q["small"].id, "resolved", q["tom"].user, TUESDAY_10_NY, note="Replaced the mouse")
    forms = {
        "override": {"override-position": "1", "override-reason": "CEO", "override-version": str(old_version)},
        "override/clear": {"clear-reason": "done", "clear-version": str(old_version)},
        "assign": {"assign-technician_id": str(q["tara"].id), "assign-version": str(old_version)},
        "details": {"details-effort_minutes": "20", "details-version": str(old_version)},
    }
    for action, data in forms.items():
        response = client.post(f"/staff/tickets/{q['small'].id}/{action}", data=data)
        assert response.status_code == 409, action
        assert "Nothing was saved: this ticket is resolved now" in response.get_data(as_text=True), action
    ticket = fresh(q["small"])
    assert ticket.override_position is None and ticket.technician_id != q["tara"].id and ticket.effort_minutes != 20
    assert "Nothing was saved" not in client.get(f"/staff/tickets/{q['small'].id}").get_data(as_text=True)


def test_a_double_submitted_pin_or_lift_reads_as_done_not_as_someone_elses_change(client, monkeypatch):
    """The second click of a double click (or Back and submit) carries the version before the first: the
    ticket is already as asked, so the page must not say nothing was saved. Logged once."""
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    pin = {"override-position": "1", "override-reason": "CEO presenting", "override-version": str(fresh(q["small"]).version)}
    assert client.post(f"/staff/tickets/{q['small'].id}/override", data=pin).status_code == 302
    response = client.post(f"/staff/tickets/{q['small'].id}/override", data=pin, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "pinned at place 1" in page and "changed by someone else" not in page
    assert len(events(q["small"], "override")) == 1 and fresh(q["small"]).override_position == 1

    # A stale form asking for another place is still refused.
    other = dict(pin, **{"override-position": "2"})
    assert client.post(f"/staff/tickets/{q['small'].id}/override", data=other).status_code == 409
    assert fresh(q["small"]).override_position == 1

    lift = {"clear-reason": "Presentation over", "clear-version": str(fresh(q["small"]).version)}
    assert client.post(f"/staff/tickets/{q['small'].id}/override/clear", data=lift).status_code == 302
    response = client.post(f"/staff/tickets/{q['small'].id}/override/clear", data=lift, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "back in the engine&#39;s order" in page and "changed by someone else" not in page
    assert len(events(q["small"], "override")) == 2 and fresh(q["small"]).override_position is None


def test_a_double_submitted_assignment_or_estimate_reads_as_done_not_as_someone_elses_change(client, monkeypatch):
    """Assign or Save estimate sent twice (Back and submit again, a retried request) answered 409 'changed by
    someone else while you were looking: nothing was saved' although the dispatcher's own first send saved it."""
    q = queue_setup(monkeypatch)
    staff(client, Role.DISPATCHER)
    url = f"/staff/tickets/{q['mid'].id}/assign"
    send = {"assign-technician_id": str(q["tom"].id), "assign-version": str(fresh(q["mid"]).version)}
    assert client.post(url, data=send).status_code == 302
    response = client.post(url, data=send, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "technician saved" in page and "changed by someone else" not in page
    assert len(events(q["mid"], "assigned")) == 1
    # A stale form asking for someone else is still refused.
    assert client.post(url, data=dict(send, **{"assign-technician_id": str(q["tara"].id)})).status_code == 409
    assert fresh(q["mid"]).technician_id == q["tom"].id

    url = f"/staff/tickets/{q['small'].id}/details"
    send = {"details-onsite_needed": "y", "details-effort_minutes": "20", "details-required_skill": "Security",
            "details-version": str(fresh(q["small"]).version)}
    assert client.post(url, data=send).status_code == 302
    response = client.post(url, data=send, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "estimate saved" in page and "changed by someone else" not in page
    assert len(events(q["small"], "details")) == 2  # one public (on site), one staff-only: logged once
    assert client.post(url, data=dict(send, **{"details-effort_minutes": "30"})).status_code == 409
    assert fresh(q["small"]).effort_minutes == 20


def test_assigning_a_technician_who_is_never_on_duty_says_the_ticket_gets_no_estimate(client, monkeypatch):
    """A new technician without shifts (or on-call periods) can be assigned, but the ticket then waits for
    nobody: the client reads 'No estimate yet', so the dispatcher is told at once."""
    q = queue_setup(monkeypatch)
    nina = make_technician("nina@firm.example", "Nina New", skills=(), weekdays=())
    staff(client, Role.DISPATCHER)
    response = client.post(f"/staff/tickets/{q['mid'].id}/assign", follow_redirects=True, data={
        "assign-technician_id": str(nina.id), "assign-version": str(fresh(q["mid"]).version)})
    page = response.get_data(as_text=True)
    assert "technician saved" in page
    assert "Nina New has no shifts and no on-call period to come, so the ticket has no estimate" in page
    assert fresh(q["mid"]).technician_id == nina.id
    db.session.expire_all()
    assert db.session.get(QueueEntry, q["mid"].id).eta_median is None

    # Someone with shifts is assigned without a word more.
    response = client.post(f"/staff/tickets/{q['mid'].id}/assign", follow_redirects=True, data={
        "assign-technician_id": str(q["tara"].id), "assign-version": str(fresh(q["mid"]).version)})
    assert "no shifts" not in response.get_data(as_text=True)
