"""A technician's time off: entered in firm time, taken out of their shifts and calls, and refused
when it makes no sense or would leave the on-call pager unanswered."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import OnCallPeriod, QueueEntry, Role, Ticket, TicketStatus, TimeOff
from portal.services import queue, tickets
from tests.conftest import make_organisation, make_plan
from tests.staff.helpers import make_technician, staff
from tests.staff.test_actions import TUESDAY_10_NY, open_ticket

WEDNESDAY_NY = "2026-11-25T00:00"
THURSDAY_NY = "2026-11-26T00:00"


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(TimeOff))


def away(client, tech, starts: str = WEDNESDAY_NY, ends: str = THURSDAY_NY, reason: str = "Holiday", **kwargs):
    return client.post(f"/staff/technicians/{tech.id}/time-off",
                       data={"off-starts_at": starts, "off-ends_at": ends, "off-reason": reason}, **kwargs)


def test_time_off_in_firm_time_takes_the_technician_off_the_plan(client, monkeypatch):
    """Tom is off on Wednesday: the period is kept in UTC, listed in firm time, and the engine plans
    nothing for him that day."""
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    tom = make_technician()
    staff(client, Role.DISPATCHER)
    page = away(client, tom, follow_redirects=True).get_data(as_text=True)
    assert "Tom Tech is off from Wed 25 Nov 00:00 to Thu 26 Nov 00:00 (firm time): no job is planned for them then." in page
    period = db.session.scalars(select(TimeOff)).one()
    assert (period.starts_at, period.ends_at, period.reason) == (
        datetime(2026, 11, 25, 5, tzinfo=timezone.utc), datetime(2026, 11, 26, 5, tzinfo=timezone.utc), "Holiday")
    assert period.created_by.role == Role.DISPATCHER
    listed = client.get(f"/staff/technicians/{tom.id}").get_data(as_text=True).split('id="time-off"')[1]
    assert "Wed 25 Nov 00:00" in listed and "Thu 26 Nov 00:00" in listed and "Holiday" in listed
    availability = queue.load(TUESDAY_10_NY).inputs.technicians[0].availability
    assert availability.is_covered(TUESDAY_10_NY)
    assert not availability.is_covered(datetime(2026, 11, 25, 15, tzinfo=timezone.utc))
    assert availability.next_covered(datetime(2026, 11, 24, 23, tzinfo=timezone.utc)) == datetime(
        2026, 11, 27, 13, tzinfo=timezone.utc)  # Friday 08:00 in New York: Thursday is Thanksgiving


def test_a_ticket_waits_for_the_technician_back_from_time_off(client, monkeypatch):
    """The only technician is off from now until tomorrow 12:00: the estimate moves to tomorrow, and
    back to now when the time off is removed."""
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    tom = make_technician()
    ticket = open_ticket(acme, "Printer", category="network")
    assert db.session.get(QueueEntry, ticket.id).eta_median < TUESDAY_10_NY + timedelta(hours=2)
    staff(client, Role.DISPATCHER)
    assert away(client, tom, "2026-11-24T09:00", "2026-11-25T12:00", "Sick").status_code == 302
    db.session.expire_all()
    assert db.session.get(QueueEntry, ticket.id).eta_median >= datetime(2026, 11, 25, 17, tzinfo=timezone.utc)
    page = client.get("/staff/technicians").get_data(as_text=True)
    assert "away until Wed 25 Nov 12:00" in page
    period = db.session.scalars(select(TimeOff)).one()
    page = client.post(f"/staff/technicians/{tom.id}/time-off/{period.id}/delete",
                       follow_redirects=True).get_data(as_text=True)
    assert "Time off removed: Tom Tech&#39;s shifts count again." in page and count() == 0
    db.session.expire_all()
    assert db.session.get(QueueEntry, ticket.id).eta_median < TUESDAY_10_NY + timedelta(hours=2)
    again = client.post(f"/staff/technicians/{tom.id}/time-off/{period.id}/delete")
    assert again.status_code == 404 and "it was already removed" in again.get_data(as_text=True)


def test_time_off_under_way_gives_back_waiting_tickets_and_names_the_jobs_in_hand(client, monkeypatch):
    """Tara calls in sick: her ticket not started goes to Tom, the one she is on site for stays hers
    and the dispatcher is told; the assign list shows her away."""
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    tom = make_technician()
    tara = make_technician("tara@firm.example", "Tara")
    waiting = open_ticket(acme, "Printer", category="network")
    on_site = open_ticket(acme, "Switch", category="network", onsite=True)
    for ticket in (waiting, on_site):
        tickets.assign(ticket.id, tara.id, None, TUESDAY_10_NY)
    tickets.set_status(on_site.id, TicketStatus.ON_SITE, tara.user, TUESDAY_10_NY)
    staff(client, Role.DISPATCHER)
    page = away(client, tara, "2026-11-24T07:00", "2026-11-27T00:00", "Sick", follow_redirects=True).get_data(as_text=True)
    assert "1 ticket assigned to Tara went back to the queue for another technician." in page
    assert f"Tara still has #{on_site.id} in hand: reassign from the board, or it waits for them." in page
    db.session.expire_all()
    returned = db.session.get(Ticket, waiting.id)
    assert (returned.status, returned.technician_id) == (TicketStatus.NEW, None)
    assert "Tara is off until Fri 27 Nov 00:00" in returned.events[-1].message
    assert db.session.get(QueueEntry, waiting.id).technician_id == tom.id
    assert db.session.get(Ticket, on_site.id).technician_id == tara.id
    assign = client.get(f"/staff/tickets/{waiting.id}").get_data(as_text=True)
    assert "Tara (away until Fri 27 Nov 00:00)" in assign
    page = client.post(f"/staff/tickets/{waiting.id}/assign", data={
        "assign-technician_id": str(tara.id), "assign-version": str(db.session.get(Ticket, waiting.id).version)},
        follow_redirects=True).get_data(as_text=True)
    assert ("Tara is away until Fri 27 Nov 00:00, so the ticket waits for them: assign someone else if it cannot "
            "wait.") in page


def test_time_off_to_come_leaves_assigned_tickets_alone(client, monkeypatch):
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    tara = make_technician("tara@firm.example", "Tara")
    ticket = open_ticket(acme, "Printer", category="network")
    tickets.assign(ticket.id, tara.id, None, TUESDAY_10_NY)
    staff(client, Role.DISPATCHER)
    page = away(client, tara, follow_redirects=True).get_data(as_text=True)
    assert "went back to the queue" not in page and "in hand" not in page
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).technician_id == tara.id


@pytest.mark.parametrize("starts, ends, reason, message", [
    (THURSDAY_NY, WEDNESDAY_NY, "", "The time off must end after it starts."),
    ("2026-11-20T00:00", "2026-11-21T00:00", "", "That time off is already over."),
    (WEDNESDAY_NY, "2028-01-01T00:00", "", "Time off may last at most a year; for longer, make the technician inactive."),
    ("2026-11-25T12:00", "2026-11-27T00:00", "", "Overlaps Tom Tech&#39;s time off from Wed 25 Nov 08:00 to Wed 25 Nov 18:00 (firm time)"),
    ("2026-11-28T00:00", "2026-11-29T00:00", "", "Tom Tech is on call from Sat 28 Nov 08:00 to Sun 29 Nov 08:00 (firm time): give that period to someone else on the on-call rota first."),
    ("tomorrow", THURSDAY_NY, "", "Not a valid datetime"),
    ("2027-03-14T02:30", "2027-03-15T00:00", "", "2027-03-14 02:30 does not exist in America/New_York"),
    (WEDNESDAY_NY, THURSDAY_NY, "x" * 201, "Field cannot be longer than 200 characters."),
])
def test_bad_time_off_is_refused_and_keeps_what_was_typed(client, monkeypatch, starts, ends, reason, message):
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    tom = make_technician()
    db.session.add_all([
        TimeOff(technician=tom, starts_at=datetime(2026, 11, 25, 13, tzinfo=timezone.utc),
                ends_at=datetime(2026, 11, 25, 23, tzinfo=timezone.utc), reason="Dentist", created_at=TUESDAY_10_NY),
        OnCallPeriod(technician=tom, starts_at=datetime(2026, 11, 28, 13, tzinfo=timezone.utc),
                     ends_at=datetime(2026, 11, 29, 13, tzinfo=timezone.utc)),
    ])
    db.session.commit()
    staff(client, Role.DISPATCHER)
    response = away(client, tom, starts, ends, reason or "Family wedding")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and message in page
    assert f'value="{starts}"' in page and (reason or "Family wedding") in page
    assert count() == 1


def test_on_call_is_refused_for_a_technician_away_then(client, monkeypatch):
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    tom = make_technician()
    db.session.add(TimeOff(technician=tom, starts_at=datetime(2026, 11, 25, 5, tzinfo=timezone.utc),
                           ends_at=datetime(2026, 11, 27, 5, tzinfo=timezone.utc), created_at=TUESDAY_10_NY))
    db.session.commit()
    staff(client, Role.DISPATCHER)
    response = client.post("/staff/on-call", data={
        "technician_id": str(tom.id), "starts_at": "2026-11-26T18:00", "ends_at": "2026-11-27T08:00"})
    assert response.status_code == 400
    assert "Tom Tech is off from Wed 25 Nov 00:00 to Fri 27 Nov 00:00 (firm time): choose someone else." in (
        response.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(OnCallPeriod)) == 0


def test_time_off_of_another_technician_cannot_be_removed_through_this_one(client, monkeypatch):
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    tom = make_technician()
    tara = make_technician("tara@firm.example", "Tara")
    period = TimeOff(technician=tara, starts_at=datetime(2026, 11, 25, 5, tzinfo=timezone.utc),
                     ends_at=datetime(2026, 11, 26, 5, tzinfo=timezone.utc), created_at=TUESDAY_10_NY)
    db.session.add(period)
    db.session.commit()
    staff(client, Role.DISPATCHER)
    assert client.post(f"/staff/technicians/{tom.id}/time-off/{period.id}/delete").status_code == 404
    assert count() == 1


def test_technicians_cannot_enter_time_off(client, monkeypatch):
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    tom = make_technician()
    staff(client, Role.TECHNICIAN, email="other.tech@firm.example")
    assert away(client, tom).status_code == 403 and count() == 0


def test_time_off_entered_ahead_gives_back_the_tickets_still_waiting_when_it_begins(app, client, monkeypatch):
    """Tara's holiday, entered on Tuesday morning, begins at 11:00. The printer assigned to her at
    10:00 is still not started then: the minute's check (`flask alerts check`) gives it back and Tom,
    who is free, takes it now, not Tara next Monday. The switch a dispatcher gives her at 12:00,
    told she is away, keeps waiting for her."""
    at = {"now": TUESDAY_10_NY}
    monkeypatch.setattr("portal.clock.now", lambda: at["now"])
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    tom = make_technician()
    tara = make_technician("tara@firm.example", "Tara")
    printer = open_ticket(acme, "Printer", category="network")
    tickets.assign(printer.id, tara.id, None, TUESDAY_10_NY)
    staff(client, Role.DISPATCHER)
    assert away(client, tara, "2026-11-24T11:00", "2026-11-30T00:00", "Holiday").status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, printer.id).technician_id == tara.id  # she may still do it before leaving
    noon = TUESDAY_10_NY + timedelta(hours=2)
    at["now"] = noon
    switch = open_ticket(acme, "Switch", category="network")
    tickets.assign(switch.id, tara.id, None, noon)
    result = app.test_cli_runner().invoke(args=["alerts", "check"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    given_back = db.session.get(Ticket, printer.id)
    assert (given_back.status, given_back.technician_id) == (TicketStatus.NEW, None)
    assert any("Tara is off until Mon 30 Nov 00:00" in e.message for e in given_back.events if e.kind == "unassigned")
    entry = db.session.get(QueueEntry, printer.id)
    assert entry.technician_id == tom.id and entry.eta_median < noon + timedelta(hours=2)
    assert db.session.get(Ticket, switch.id).technician_id == tara.id
    again = app.test_cli_runner().invoke(args=["alerts", "check"])
    assert again.exit_code == 0 and db.session.get(Ticket, switch.id).technician_id == tara.id


def test_an_end_the_clocks_skip_is_refused_under_until_not_from(client, monkeypatch):
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    tom = make_technician()
    staff(client, Role.DISPATCHER)
    response = away(client, tom, "2027-03-13T00:00", "2027-03-14T02:30")
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and count() == 0
    until = page.split('id="off-ends_at"')[1].split("</div>")[0]
    assert "2027-03-14 02:30 does not exist in America/New_York" in until


@pytest.mark.parametrize("second_starts, shown", [
    ("2026-11-27T00:00", "Sun 29 Nov 00:00"),  # begins as the first ends: one absence
    ("2026-11-27T00:01", "Sun 29 Nov 00:00"),  # within a minute: still one
    ("2026-11-27T08:00", "Fri 27 Nov 00:00"),  # back for a morning in between: the first end
])
def test_away_until_is_the_end_of_time_off_that_runs_on(client, monkeypatch, second_starts, shown):
    """Tara is sick until Friday 00:00 and on holiday from then to Sunday: the technicians page, the
    assign list, the assign notes and the ticket given back when she called in sick say she is away
    until Sunday, not until Friday."""
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    make_technician()
    tara = make_technician("tara@firm.example", "Tara")
    ticket = open_ticket(acme, "Printer", category="network")
    tickets.assign(ticket.id, tara.id, None, TUESDAY_10_NY)
    staff(client, Role.DISPATCHER)
    assert away(client, tara, second_starts, "2026-11-29T00:00", "Holiday").status_code == 302
    assert away(client, tara, "2026-11-24T07:00", "2026-11-27T00:00", "Sick").status_code == 302
    db.session.expire_all()
    given_back = db.session.get(Ticket, ticket.id)
    assert given_back.technician_id is None
    assert f"Tara is off until {shown}" in given_back.events[-1].message
    assert f"away until {shown}" in client.get("/staff/technicians").get_data(as_text=True)
    assert f"Tara (away until {shown})" in client.get(f"/staff/tickets/{ticket.id}").get_data(as_text=True)
    page = client.post(f"/staff/tickets/{ticket.id}/assign", data={
        "assign-technician_id": str(tara.id), "assign-version": str(db.session.get(Ticket, ticket.id).version)},
        follow_redirects=True).get_data(as_text=True)
    assert f"Tara is away until {shown}, so the ticket waits for them" in page


def test_a_ticket_given_to_a_technician_away_keeps_waiting_when_the_next_touching_period_begins(
        app, client, monkeypatch):
    """The dispatcher gave Tara the printer while she was sick, told she is away until Sunday (her
    holiday follows on): when the holiday begins the minute's check leaves it with her."""
    at = {"now": TUESDAY_10_NY}
    monkeypatch.setattr("portal.clock.now", lambda: at["now"])
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    make_technician()
    tara = make_technician("tara@firm.example", "Tara")
    staff(client, Role.DISPATCHER)
    assert away(client, tara, "2026-11-24T07:00", "2026-11-27T00:00", "Sick").status_code == 302
    assert away(client, tara, "2026-11-27T00:00", "2026-11-29T00:00", "Holiday").status_code == 302
    printer = open_ticket(acme, "Printer", category="network")
    tickets.assign(printer.id, tara.id, None, TUESDAY_10_NY)
    at["now"] = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
    result = app.test_cli_runner().invoke(args=["alerts", "check"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Ticket, printer.id).technician_id == tara.id
