"""Technicians, weekly shifts, the on-call rota and plans: who may change them and what is refused."""
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import OnCallPeriod, OutboxMessage, Plan, Role, Shift, Technician, Ticket, TicketStatus, User
from tests.conftest import make_organisation, make_plan, make_user
from tests.staff.helpers import make_technician, staff


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- technicians -----------------------------------------------------------------------------


def test_dispatcher_creates_a_technician_with_a_new_account(client):
    staff(client, Role.DISPATCHER)
    response = client.post("/staff/technicians", data={
        "user_id": "0", "email": "New.Tech@Firm.example", "full_name": "Nina New", "skills": "Network, printer",
        "home_zone": "brooklyn", "home_latitude": "40.68", "home_longitude": "-73.94", "active": "y",
    })
    assert response.status_code == 302
    tech = db.session.scalars(select(Technician)).one()
    assert (tech.user.email, tech.user.role, tech.skills, tech.home_zone) == (
        "new.tech@firm.example", Role.TECHNICIAN, ["network", "printer"], "brooklyn")
    assert (tech.home_latitude, tech.home_longitude, tech.active) == (40.68, -73.94, True)
    # The new technician chooses a password through a reset link; nobody else knows it.
    mail = db.session.scalars(select(OutboxMessage)).one()
    assert mail.recipient == "new.tech@firm.example" and "/auth/reset" in mail.body


def test_owner_makes_a_technician_of_an_existing_staff_account(client):
    staff(client, Role.OWNER)
    dana = make_user("dana@firm.example", role=Role.DISPATCHER, name="Dana")
    page = client.get("/staff/technicians").get_data(as_text=True)
    assert "Dana" in page
    response = client.post("/staff/technicians", data={"user_id": str(dana.id), "skills": "desktop", "active": "y"})
    assert response.status_code == 302
    assert db.session.scalars(select(Technician)).one().user_id == dana.id


@pytest.mark.parametrize("data, message", [
    ({"user_id": "0", "email": "", "full_name": "X"}, "give the new technician"),
    ({"user_id": "0", "email": "x@firm.example", "full_name": ""}, "Give the new technician&#39;s name"),
    ({"user_id": "0", "email": "x@firm.example", "full_name": "X", "skills": "net work!"}, "Skills are single words"),
    ({"user_id": "0", "email": "x@firm.example", "full_name": "X", "home_latitude": "40"}, "both the home latitude"),
    ({"user_id": "0", "email": "x@firm.example", "full_name": "X", "home_latitude": "95", "home_longitude": "1"}, "between -90"),
    ({"user_id": "0", "email": "taken@acme.example", "full_name": "X"}, "belongs to a client"),
    ({"user_id": "0", "email": "dispatcher@firm.example", "full_name": "X"}, "already has a staff account: choose it"),
])
def test_bad_technician_input_saves_nothing(client, data, message):
    make_user("taken@acme.example", organisation=make_organisation("Acme"))
    staff(client, Role.DISPATCHER)
    users_before = count(User)
    response = client.post("/staff/technicians", data=data)
    assert response.status_code == 400
    assert message.lower() in response.get_data(as_text=True).lower()
    assert count(Technician) == 0 and count(User) == users_before and count(OutboxMessage) == 0


def test_edit_technician_skills_and_deactivate(client):
    tech = make_technician()
    staff(client, Role.DISPATCHER)
    assert "network" in client.get(f"/staff/technicians/{tech.id}").get_data(as_text=True)
    response = client.post(f"/staff/technicians/{tech.id}", data={"skills": "server security", "home_zone": "queens"})
    assert response.status_code == 302
    db.session.refresh(tech)
    assert (tech.skills, tech.home_zone, tech.active) == (["server", "security"], "queens", False)


# --- shifts ----------------------------------------------------------------------------------


def test_add_and_remove_a_shift(client):
    tech = make_technician(weekdays=[])
    staff(client, Role.DISPATCHER)
    response = client.post(f"/staff/technicians/{tech.id}/shifts",
                           data={"shift-weekday": "5", "shift-starts": "09:00", "shift-ends": "13:00"})
    assert response.status_code == 302
    shift = db.session.scalars(select(Shift)).one()
    assert (shift.weekday, shift.starts, shift.ends) == (5, time(9), time(13))
    assert client.post(f"/staff/technicians/{tech.id}/shifts/{shift.id}/delete").status_code == 302
    assert count(Shift) == 0
    # A second click on Remove (or Back and Remove) says so, instead of a 'Not found' page.
    response = client.post(f"/staff/technicians/{tech.id}/shifts/{shift.id}/delete")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and "That shift is not on the list any more: it was already removed." in page
    assert "Add a shift" in page
    assert client.post(f"/staff/technicians/{tech.id + 1000}/shifts/{shift.id}/delete").status_code == 404


def test_removing_the_last_shift_of_a_technician_who_holds_tickets_says_they_now_wait(client):
    tech = make_technician(weekdays=[0])
    org = make_organisation("Acme")
    held = Ticket(organisation_id=org.id, title="Printer", status=TicketStatus.ASSIGNED, technician_id=tech.id,
                  opened_at=datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc))
    db.session.add(held)
    db.session.commit()
    staff(client, Role.DISPATCHER)
    [shift] = db.session.scalars(select(Shift)).all()

    page = client.post(f"/staff/technicians/{tech.id}/shifts/{shift.id}/delete",
                       follow_redirects=True).get_data(as_text=True)

    assert "Shift removed." in page
    assert (f"Tom Tech has no shifts left and no on-call period to come, so #{held.id} assigned to them has no "
            "estimate and waits for them: add their shifts, or assign someone else.") in page


@pytest.mark.parametrize("starts, ends, message", [
    ("13:00", "09:00", "must end after it starts"),
    ("10:00", "10:00", "must end after it starts"),
    ("17:00", "20:00", "Overlaps the Monday shift 08:00–18:00"),
    ("07:00", "08:30", "Overlaps the Monday shift"),
    ("", "10:00", "Give the start time"),
])
def test_bad_shifts_are_refused(client, starts, ends, message):
    tech = make_technician(weekdays=[0])
    staff(client, Role.DISPATCHER)
    response = client.post(f"/staff/technicians/{tech.id}/shifts",
                           data={"shift-weekday": "0", "shift-starts": starts, "shift-ends": ends})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count(Shift) == 1


def test_adjacent_shift_and_other_day_are_fine(client):
    tech = make_technician(weekdays=[0])
    staff(client, Role.DISPATCHER)
    assert client.post(f"/staff/technicians/{tech.id}/shifts",
                       data={"shift-weekday": "0", "shift-starts": "18:00", "shift-ends": "20:00"}).status_code == 302
    assert client.post(f"/staff/technicians/{tech.id}/shifts",
                       data={"shift-weekday": "1", "shift-starts": "08:00", "shift-ends": "12:00"}).status_code == 302
    assert count(Shift) == 3


def test_a_night_shift_ends_at_midnight_and_the_engine_counts_it(client):
    """00:00 as the end is midnight: accepted, shown as 24:00, and the technician is available until then."""
    from portal.services import queue

    tech = make_technician(weekdays=[])
    staff(client, Role.DISPATCHER)
    assert client.post(f"/staff/technicians/{tech.id}/shifts",
                       data={"shift-weekday": "6", "shift-starts": "18:00", "shift-ends": "00:00"}).status_code == 302
    page = client.get(f"/staff/technicians/{tech.id}").get_data(as_text=True)
    assert "24:00" in page
    overlap = client.post(f"/staff/technicians/{tech.id}/shifts",
                          data={"shift-weekday": "6", "shift-starts": "23:00", "shift-ends": "23:30"})
    assert overlap.status_code == 400 and "Overlaps the Sunday shift 18:00–24:00" in overlap.get_data(as_text=True)
    sunday_late = datetime(2031, 1, 5, 23, 45, tzinfo=ZoneInfo("America/New_York"))  # a Sunday
    availability = queue.load(sunday_late).inputs.technicians[0].availability
    assert availability.is_covered(sunday_late)
    assert not availability.is_covered(sunday_late + timedelta(minutes=30))


def test_shift_of_another_technician_cannot_be_deleted_through_this_one(client):
    tom = make_technician()
    tara = make_technician("tara@firm.example", "Tara")
    staff(client, Role.DISPATCHER)
    assert client.post(f"/staff/technicians/{tom.id}/shifts/{tara.shifts[0].id}/delete").status_code == 404
    assert count(Shift) == 10


# --- on-call rota ----------------------------------------------------------------------------


def local(text: str) -> str:
    return text  # the form takes firm-local "YYYY-MM-DDTHH:MM"


def test_add_on_call_period_in_firm_time(client):
    tech = make_technician()
    staff(client, Role.DISPATCHER)
    response = client.post("/staff/on-call", data={
        "technician_id": str(tech.id), "starts_at": "2031-01-05T18:00", "ends_at": "2031-01-06T08:00"})
    assert response.status_code == 302
    period = db.session.scalars(select(OnCallPeriod)).one()
    # New York is UTC-5 in January.
    assert period.starts_at == datetime(2031, 1, 5, 23, 0, tzinfo=timezone.utc)
    assert period.ends_at == datetime(2031, 1, 6, 13, 0, tzinfo=timezone.utc)
    assert "Tom Tech" in client.get("/staff/on-call").get_data(as_text=True)


@pytest.mark.parametrize("starts, ends, message", [
    ("2031-01-06T08:00", "2031-01-05T18:00", "must end after it starts"),
    # The other period in firm time, as the rota lists it (not UTC).
    ("2031-01-10T20:00", "2031-01-11T06:00", "Overlaps Tara&#39;s on-call period (Fri 10 Jan 19:00 to Sat 11 Jan 07:00, firm time)"),
    ("2020-01-01T00:00", "2020-01-02T00:00", "already over"),
    ("2031-01-01T00:00", "2031-03-01T00:00", "at most 31 days"),
    ("not a date", "2031-01-06T08:00", "Not a valid datetime"),
    ("2031-03-09T02:30", "2031-03-09T08:00", "2031-03-09 02:30 does not exist in America/New_York"),  # clocks go forward
    ("2031-01-06T08:00", "9999-12-31T23:59", "9999-12-31 23:59 is beyond the dates the portal can count in"),
    ("0001-01-01T00:00", "0001-01-01T08:00", "already over"),
])
def test_bad_on_call_periods_are_refused(client, starts, ends, message):
    tom = make_technician()
    tara = make_technician("tara@firm.example", "Tara")
    db.session.add(OnCallPeriod(technician=tara, starts_at=datetime(2031, 1, 11, 0, tzinfo=timezone.utc),
                                ends_at=datetime(2031, 1, 11, 12, tzinfo=timezone.utc)))
    db.session.commit()
    staff(client, Role.DISPATCHER)
    response = client.post("/staff/on-call", data={"technician_id": str(tom.id), "starts_at": starts, "ends_at": ends})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert count(OnCallPeriod) == 1


def test_a_technician_made_inactive_leaves_the_rota_and_frees_it_for_others(client, monkeypatch):
    """Their period under way ends now, the ones to come go, the rota page says so, and the
    replacement's period is no longer refused as an overlap."""
    now = datetime(2031, 1, 6, 15, 0, tzinfo=timezone.utc)
    monkeypatch.setattr("portal.clock.now", lambda: now)
    tara = make_technician("tara@firm.example", "Tara")
    tom = make_technician()
    db.session.add_all([
        OnCallPeriod(technician=tara, starts_at=now - timedelta(days=5), ends_at=now - timedelta(days=4)),
        OnCallPeriod(technician=tara, starts_at=now - timedelta(hours=2), ends_at=now + timedelta(hours=10)),
        OnCallPeriod(technician=tara, starts_at=now + timedelta(days=2), ends_at=now + timedelta(days=3)),
        OnCallPeriod(technician=tara, starts_at=now + timedelta(days=9), ends_at=now + timedelta(days=10)),
    ])
    db.session.commit()
    staff(client, Role.DISPATCHER)
    response = client.post(f"/staff/technicians/{tara.id}", data={"skills": "network"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Tara is off the on-call rota: 3 periods removed or ended now. Check the on-call rota for gaps." in page
    periods = db.session.scalars(select(OnCallPeriod).order_by(OnCallPeriod.starts_at)).all()
    assert [(p.starts_at, p.ends_at) for p in periods] == [
        (now - timedelta(days=5), now - timedelta(days=4)), (now - timedelta(hours=2), now)]
    rota = client.get("/staff/on-call").get_data(as_text=True)
    assert "Tara" not in rota.split("<tbody>")[1] and "nobody" in rota
    response = client.post("/staff/on-call", data={
        "technician_id": str(tom.id), "starts_at": "2031-01-08T10:00", "ends_at": "2031-01-08T12:00"})
    assert response.status_code == 302
    # Saving an inactive technician again removes nothing more and says nothing about the rota.
    page = client.post(f"/staff/technicians/{tara.id}", data={"skills": "network"},
                       follow_redirects=True).get_data(as_text=True)
    assert "off the on-call rota" not in page and count(OnCallPeriod) == 3


def test_a_technician_made_inactive_gives_back_waiting_tickets_and_names_the_jobs_in_hand(client, monkeypatch):
    """Tara's waiting ticket goes back to the engine (Tom's now, with an estimate); the one she is
    on site for stays hers, and the dispatcher is told to reassign it."""
    from portal.models import QueueEntry, Ticket, TicketStatus
    from portal.services import tickets
    from tests.staff.test_actions import TUESDAY_10_NY, open_ticket

    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority", name="Priority"))
    tom = make_technician()
    tara = make_technician("tara@firm.example", "Tara")
    waiting = open_ticket(acme, "Printer", category="email")
    on_site = open_ticket(acme, "Switch", category="email", onsite=True)
    for ticket in (waiting, on_site):
        tickets.assign(ticket.id, tara.id, None, TUESDAY_10_NY)
    tickets.set_status(on_site.id, TicketStatus.ON_SITE, tara.user, TUESDAY_10_NY)
    staff(client, Role.DISPATCHER)
    page = client.post(f"/staff/technicians/{tara.id}", data={"skills": "network"},
                       follow_redirects=True).get_data(as_text=True)
    assert "1 ticket assigned to Tara went back to the queue for another technician." in page
    assert "Tara still has 1 job in hand: reassign it from the board." in page
    db.session.expire_all()
    returned = db.session.get(Ticket, waiting.id)
    assert (returned.status, returned.technician_id) == (TicketStatus.NEW, None)
    entry = db.session.get(QueueEntry, waiting.id)
    assert entry.technician_id == tom.id and entry.eta_median is not None
    assert db.session.get(Ticket, on_site.id).technician_id == tara.id


def test_remove_on_call_period(client):
    tech = make_technician()
    db.session.add(OnCallPeriod(technician=tech, starts_at=datetime(2031, 1, 1, tzinfo=timezone.utc),
                                ends_at=datetime(2031, 1, 2, tzinfo=timezone.utc)))
    db.session.commit()
    staff(client, Role.OWNER)
    period = db.session.scalars(select(OnCallPeriod)).one()
    assert client.post(f"/staff/on-call/{period.id}/delete").status_code == 302
    assert count(OnCallPeriod) == 0
    # A second click on Remove (or Back and Remove) says so, instead of a 'Not found' page.
    response = client.post(f"/staff/on-call/{period.id}/delete")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and "On call now" in page and 'action="/staff/on-call"' in page
    assert "That on-call period is not on the rota any more: it was already removed." in page


# --- plans -----------------------------------------------------------------------------------


def plan_form(plan: Plan, **changes) -> dict:
    data = {
        "slug": plan.slug, "name": plan.name, "summary": plan.summary or "", "monthly_price": str(plan.monthly_price),
        "currency": plan.currency, "coverage": plan.coverage,
        "remote_response_minutes": str(plan.remote_response_minutes or ""),
        "onsite_arrival_minutes": str(plan.onsite_arrival_minutes or ""),
        "hourly_rate": str(plan.hourly_rate), "minimum_term_months": str(plan.minimum_term_months),
        "onboarding_fee": str(plan.onboarding_fee), "display_order": str(plan.display_order),
    }
    if plan.is_contract:
        data["is_contract"] = "y"
    if plan.after_hours_emergencies:
        data["after_hours_emergencies"] = "y"
    if plan.active:
        data["active"] = "y"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_owner_edits_a_plan(client):
    plan = make_plan("priority", name="Priority", stripe_price_id="price_123")
    staff(client, Role.OWNER)
    assert "Priority" in client.get("/staff/plans").get_data(as_text=True)
    response = client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, name="Priority Plus",
                                                                      remote_response_minutes="45",
                                                                      monthly_price="$1,390"))
    assert response.status_code == 302
    db.session.refresh(plan)
    assert (plan.name, plan.remote_response_minutes, plan.monthly_price, plan.stripe_price_id) == (
        "Priority Plus", 45, Decimal("1390.00"), "price_123")


def test_owner_creates_a_plan(client):
    staff(client, Role.OWNER)
    response = client.post("/staff/plans/new", data={
        "slug": "gold", "name": "Gold", "monthly_price": "3000", "currency": "usd", "coverage": "24x7",
        "is_contract": "y", "remote_response_minutes": "15", "onsite_arrival_minutes": "60",
        "after_hours_emergencies": "y", "hourly_rate": "0", "minimum_term_months": "12", "onboarding_fee": "0",
        "display_order": "5", "active": "y"})
    assert response.status_code == 302
    assert db.session.scalars(select(Plan).where(Plan.slug == "gold")).one().after_hours_emergencies


@pytest.mark.parametrize("changes, message", [
    ({"remote_response_minutes": ""}, "promises a remote response time"),
    ({"onsite_arrival_minutes": "30"}, "cannot be shorter than the remote response"),
    ({"after_hours_emergencies": "y"}, "need 24x7 coverage"),
    ({"slug": "Not A Slug"}, "lowercase letters"),
    ({"slug": "break-fix"}, "already uses this slug"),
    ({"monthly_price": "-1"}, "Number must be between"),
    ({"monthly_price": "10.995"}, "at most two decimals"),
    ({"hourly_rate": "150.001"}, "at most two decimals"),
    ({"monthly_price": "1e3"}, "Enter an amount, e.g. 1250 or 1,250.50."),
    ({"onboarding_fee": "sNaN"}, "Enter an amount, e.g. 1250 or 1,250.50."),
    ({"name": ""}, "This field is required"),
    ({"currency": "us"}, "Use a three-letter code"),
    ({"onsite_arrival_minutes": "1" * 2000}, "Enter a number of at most 12 digits."),
])
def test_bad_plan_edits_change_nothing(client, changes, message):
    make_plan("break-fix", name="Break/Fix")
    plan = make_plan("priority", name="Priority")
    staff(client, Role.OWNER)
    response = client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, **changes))
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    db.session.expire_all()
    assert (plan.slug, plan.name, plan.remote_response_minutes, plan.onsite_arrival_minutes,
            plan.after_hours_emergencies, plan.monthly_price) == ("priority", "Priority", 60, 240, False, Decimal("1290.00"))


def test_break_fix_plan_cannot_promise_times(client):
    plan = make_plan("break-fix", name="Break/Fix")
    staff(client, Role.OWNER)
    response = client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, remote_response_minutes="60"))
    assert response.status_code == 400 and "Break/fix promises no times" in response.get_data(as_text=True)


# --- role gates ------------------------------------------------------------------------------


ROTA_PAGES = ["/staff/technicians", "/staff/on-call"]
OWNER_PAGES = ["/staff/plans", "/staff/plans/new"]


def test_technicians_cannot_manage_the_rota_or_plans(client):
    tech = make_technician()
    make_plan("priority")
    from tests.conftest import login
    login(client, tech.user.email)
    for url in ROTA_PAGES + OWNER_PAGES + [f"/staff/technicians/{tech.id}"]:
        assert client.get(url).status_code == 403, url
    assert client.post(f"/staff/technicians/{tech.id}/shifts",
                       data={"shift-weekday": "6", "shift-starts": "08:00", "shift-ends": "09:00"}).status_code == 403
    assert count(Shift) == 5


def test_dispatchers_cannot_edit_plans(client):
    plan = make_plan("priority", name="Priority")
    staff(client, Role.DISPATCHER)
    for url in OWNER_PAGES + [f"/staff/plans/{plan.id}"]:
        assert client.get(url).status_code == 403, url
    assert client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, name="Cheap")).status_code == 403
    db.session.refresh(plan)
    assert plan.name == "Priority"


def test_clients_get_403_and_anonymous_log_in(client):
    org = make_organisation("Acme")
    make_user("a@acme.example", organisation=org)
    for url in ROTA_PAGES + OWNER_PAGES:
        response = client.get(url)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    from tests.conftest import login
    login(client, "a@acme.example")
    for url in ROTA_PAGES + OWNER_PAGES:
        assert client.get(url).status_code == 403, url


def test_forms_need_a_csrf_token(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        tech = make_technician()
        make_user("d@firm.example", role=Role.DISPATCHER)
        client = app.test_client()
        from tests.conftest import csrf_token_from
        token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
        client.post("/auth/login", data={"email": "d@firm.example", "password": "correct-horse-battery-staple",
                                         "csrf_token": token})
        response = client.post(f"/staff/technicians/{tech.id}/shifts",
                               data={"shift-weekday": "6", "shift-starts": "08:00", "shift-ends": "09:00"})
        assert response.status_code == 400
        assert db.session.scalar(select(func.count()).select_from(Shift)) == 5


def test_plan_change_retimes_its_open_tickets_on_the_same_clock(client, monkeypatch):
    from portal.models import Ticket, TicketEvent
    from tests.client.helpers import set_clock
    from tests.staff.test_actions import TUESDAY_10_NY, open_ticket

    set_clock(monkeypatch, TUESDAY_10_NY)
    plan = make_plan("priority", name="Priority")
    ticket = open_ticket(make_organisation("Acme", plan), "Server down")
    assert ticket.response_due_at == TUESDAY_10_NY + timedelta(minutes=60)
    set_clock(monkeypatch, TUESDAY_10_NY + timedelta(minutes=10))
    staff(client, Role.OWNER)
    assert client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, remote_response_minutes="30")).status_code == 302
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.response_due_at == TUESDAY_10_NY + timedelta(minutes=30)
    event = db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "sla_rebased")).one()
    assert "Priority plan's targets changed" in event.message
    # A change that promises nothing new (the name) leaves the tickets alone.
    client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, name="Priority Plus"))
    assert len(db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "sla_rebased")).all()) == 1


def test_the_technicians_list_gives_shifts_in_week_order(client):
    """Shifts were listed in the order they were typed: "Wed 08:00–12:00, Mon 13:00–17:00, Mon 08:00–12:00"."""
    tech = make_technician(weekdays=[])
    for weekday, starts, ends in ((2, time(8), time(12)), (0, time(13), time(17)), (0, time(8), time(12))):
        db.session.add(Shift(technician=tech, weekday=weekday, starts=starts, ends=ends))
    db.session.commit()
    staff(client, Role.DISPATCHER)
    page = client.get("/staff/technicians").get_data(as_text=True)
    assert "Mon 08:00–12:00, Mon 13:00–17:00, Wed 08:00–12:00" in page
