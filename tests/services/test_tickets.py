"""Opening tickets (validation, SLA, idempotency, after hours) and changing them (status, override, assign)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import OnCallPeriod, OutboxMessage, QueueEntry, Ticket, TicketEvent, TicketPause, TicketStatus
from portal.services import queue, sla, tickets
from portal.services.tickets import TicketError

from .conftest import add_technician, open_for, ticket_input

NY = "America/New_York"


def kinds(ticket_id: int) -> list[str]:
    return list(db.session.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)))


# --- parsing --------------------------------------------------------------------------------------


def test_parse_form_values(app, now):
    data = tickets.parse_ticket_input(
        {"title": " Payroll PC cannot upload ", "description": "ADP", "category": "software", "impact": "person",
         "revenue_at_risk_per_hour": "$17,000", "client_deadline": "17:00", "onsite_needed": "on", "safety_critical": ""},
        NY, now,
    )
    assert data.title == "Payroll PC cannot upload"
    assert data.revenue_at_risk_per_hour == Decimal("17000.00")
    assert data.client_deadline == datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc)  # 17:00 in New York
    assert data.onsite_needed is True and data.safety_critical is False


def test_parse_json_values(app, now):
    data = tickets.parse_ticket_input(
        {"title": "LAN down", "impact": "company", "revenue_at_risk_per_hour": 2500, "onsite_needed": True,
         "client_deadline": "2026-11-24T18:00:00-05:00"}, NY, now)
    assert data.category == "other" and data.impact == "company"
    assert data.client_deadline == datetime(2026, 11, 24, 23, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("field,value,words", [
    ("title", "", "what is broken"),
    ("title", "x" * 201, "200"),
    ("impact", "everyone", "company, department, person"),
    ("category", "plumbing", "Choose one of"),
    ("revenue_at_risk_per_hour", "lots", "e.g. 2500 or 2,500"),
    ("revenue_at_risk_per_hour", "1e3", "e.g. 2500 or 2,500"),
    ("revenue_at_risk_per_hour", "-5", "negative"),
    ("client_deadline", "09:00", "already passed"),
    ("client_deadline", "tomorrow", "17:00"),
    ("client_deadline", "2027-03-14T02:30", "does not exist in America/New_York"),
    ("onsite_needed", "maybe", "yes or no"),
])
def test_parse_refuses_with_the_field_named(app, now, field, value, words):
    values = {"title": "Printer", "impact": "person", field: value}
    with pytest.raises(TicketError) as error:
        tickets.parse_ticket_input(values, NY, now)
    assert error.value.field == field
    assert words in error.value.message



@pytest.mark.parametrize("tz, value, words", [
    (NY, "9999-12-31T23:59:59", "within the next year"),      # 04:59 on 10000-01-01 in UTC: past datetime's range
    (NY, "9999-12-31T23:59", "within the next year"),
    ("Asia/Tokyo", "0001-01-01T00:00", "already passed"),     # 15:00 on 31 Dec of year 0 in UTC
    ("Asia/Tokyo", "0001-01-01", "already passed"),
    (NY, "9999-12-31T23:59:59-12:00", "within the next year"),
    (NY, "0001-01-01T00:00:00+14:00", "already passed"),
    (NY, datetime(9999, 12, 31, 23, 59), "within the next year"),
    ("Asia/Tokyo", datetime(1, 1, 1), "already passed"),
])
def test_a_deadline_at_the_ends_of_the_calendar_is_refused_in_words(app, now, tz, value, words):
    """The range is checked on the wall clock before the time is converted to UTC, which would overflow."""
    with pytest.raises(TicketError) as error:
        tickets.parse_deadline(value, tz, now)
    assert error.value.field == "client_deadline"
    assert words in error.value.message


def test_a_deadline_a_year_ahead_still_counts_exactly(app, now):
    local_now = now.astimezone(ZoneInfo(NY)).replace(tzinfo=None)
    inside = local_now + timedelta(days=366)
    assert tickets.parse_deadline(inside.isoformat(), NY, now) == now + timedelta(days=366)
    with pytest.raises(TicketError, match="within the next year"):
        tickets.parse_deadline((inside + timedelta(minutes=1)).isoformat(), NY, now)

# --- opening --------------------------------------------------------------------------------------


def test_open_contract_ticket_sets_sla_events_queue_and_email(firm, now):
    opened = open_for(firm.acme, firm.acme_admin, now, onsite_needed=True)
    ticket = opened.ticket
    assert opened.created and opened.after_hours.covered_now and not opened.after_hours.page_on_call
    assert ticket.sla_plan_id == firm.priority.id and not ticket.sla_best_effort
    assert ticket.response_due_at == now + timedelta(minutes=60)
    assert ticket.arrival_due_at == now + timedelta(minutes=240)
    assert ticket.sla_state == "on_track"
    assert kinds(ticket.id) == ["opened", "triaged"]
    entry = queue.entry_for(ticket.id)
    assert entry.position == 1 and entry.ahead == 0 and entry.eta_median is not None
    mail = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_received")).one()
    assert mail.recipient == "admin@acme.test"
    assert "1st in line" in mail.body and "expected on site around" in mail.body


def test_open_break_fix_ticket_is_best_effort_next_business_day(firm, now):
    ticket = open_for(firm.bolt, firm.bolt_admin, now).ticket
    assert ticket.sla_plan_id is None and ticket.sla_best_effort and ticket.sla_state == "best_effort"
    assert ticket.response_due_at == datetime(2026, 11, 25, 13, 0, tzinfo=timezone.utc)  # Wed 08:00 New York


def test_idempotency_key_returns_the_first_ticket(firm, now):
    first = open_for(firm.acme, firm.acme_admin, now, key="monitor-42")
    again = open_for(firm.acme, firm.acme_admin, now + timedelta(minutes=1), key="monitor-42")
    assert first.created and not again.created and again.ticket.id == first.ticket.id
    other_org = open_for(firm.bolt, firm.bolt_admin, now, key="monitor-42")
    assert other_org.created and other_org.ticket.id != first.ticket.id
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 2


def test_idempotency_key_replays_even_after_staff_changed_the_ticket(firm, now):
    """What the key is compared with is the request as first sent, not the ticket as it is now."""
    first = open_for(firm.acme, firm.acme_admin, now, key="monitor-43")
    tickets.set_details(first.ticket.id, True, 90, "network", firm.dispatcher, now + timedelta(minutes=1))
    again = open_for(firm.acme, firm.acme_admin, now + timedelta(minutes=2), key="monitor-43")
    assert not again.created and again.ticket.id == first.ticket.id


def test_idempotency_key_used_for_another_ticket_is_refused_and_nothing_is_written(firm, now):
    first = open_for(firm.acme, firm.acme_admin, now, key="monitor-44")
    with pytest.raises(tickets.IdempotencyKeyReused) as error:
        open_for(firm.acme, firm.acme_admin, now + timedelta(minutes=1), key="monitor-44", title="Other")
    assert error.value.field == "idempotency_key" and "already used" in error.value.message
    assert db.session.scalars(select(Ticket.id)).all() == [first.ticket.id]


def test_a_ticket_filed_before_fingerprints_is_compared_by_its_fields(firm, now):
    first = open_for(firm.acme, firm.acme_admin, now, key="monitor-45")
    first.ticket.request_fingerprint = None
    db.session.commit()
    assert open_for(firm.acme, firm.acme_admin, now, key="monitor-45").ticket.id == first.ticket.id
    with pytest.raises(tickets.IdempotencyKeyReused):
        open_for(firm.acme, firm.acme_admin, now, key="monitor-45", impact="company")


def _lose_the_race(monkeypatch) -> None:
    """The next lookup by key misses the winner, as a request that checked before the winner's commit does."""
    real = tickets._existing
    calls = {"n": 0}

    def first_miss(org_id, key):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(org_id, key)

    monkeypatch.setattr(tickets, "_existing", first_miss)


def test_idempotency_race_returns_the_winner(firm, now, monkeypatch):
    """Two requests with one key: the loser's insert hits the unique constraint and gets the winner's ticket."""
    winner = open_for(firm.acme, firm.acme_admin, now, key="race")
    _lose_the_race(monkeypatch)
    loser = open_for(firm.acme, firm.acme_admin, now, key="race")
    assert not loser.created and loser.ticket.id == winner.ticket.id
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_idempotency_race_with_another_ticket_is_refused(firm, now, monkeypatch):
    winner = open_for(firm.acme, firm.acme_admin, now, key="race")
    _lose_the_race(monkeypatch)
    with pytest.raises(tickets.IdempotencyKeyReused):
        open_for(firm.acme, firm.acme_admin, now, key="race", title="Duplicate")
    assert db.session.scalars(select(Ticket.id)).all() == [winner.ticket.id]


def test_idempotency_key_too_long(firm, now):
    with pytest.raises(TicketError) as error:
        open_for(firm.acme, firm.acme_admin, now, key="k" * 65)
    assert error.value.field == "idempotency_key"


NIGHT = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)  # Tuesday 22:00 in New York


def test_after_hours_contract_with_emergencies_pages_on_call(firm):
    opened = open_for(firm.cedar, firm.cedar_admin, NIGHT, title="Server room flooded")
    assert opened.after_hours.page_on_call
    page = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_alert_on_call")).one()
    assert page.recipient == "tom@firm.test" and "Server room flooded" in page.subject
    assert "after_hours" in kinds(opened.ticket.id)


EARLY = datetime(2026, 11, 25, 11, 55, tzinfo=timezone.utc)  # Wednesday 06:55 in New York


def _on_call_ends(firm, at: datetime) -> None:
    [period] = db.session.scalars(select(OnCallPeriod).where(OnCallPeriod.technician_id == firm.technician.id)).all()
    period.ends_at = at
    db.session.commit()


def test_on_call_ending_before_the_response_is_due_pages_the_technician_and_the_dispatchers(firm):
    """06:55, on call until 07:00, response due 07:25, day shift at 08:00: the client was told the
    technician was on it, and nobody was told to find cover."""
    _on_call_ends(firm, datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc))
    opened = open_for(firm.cedar, firm.cedar_admin, EARLY, title="Server room flooded", onsite_needed=True)
    decision = opened.after_hours
    assert decision.page_on_call and decision.alert_dispatchers
    assert "has been paged but goes off duty at 07:00" in decision.message
    assert "dispatchers have also been alerted to find cover; the day shift begins at 08:00" in decision.message
    pages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_alert_on_call")).all()
    assert sorted(p.recipient for p in pages) == ["dana@firm.test", "tom@firm.test"]
    assert all("goes off duty at Wed 25 Nov 07:00" in p.body and "07:00" in p.subject for p in pages)
    public = db.session.scalars(select(TicketEvent.message).where(
        TicketEvent.ticket_id == opened.ticket.id, TicketEvent.kind == "after_hours")).all()
    assert public == [decision.message]
    received = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_received")).one()
    assert decision.message in received.body


def test_on_call_handed_over_without_a_gap_reads_paged(firm):
    """The next technician's call starts as this one ends: cover goes on past the response deadline."""
    handover = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    _on_call_ends(firm, handover)
    add_technician("ann@firm.test", ["network"], on_call=(handover, handover + timedelta(hours=1)))
    opened = open_for(firm.cedar, firm.cedar_admin, EARLY)
    assert opened.after_hours.page_on_call and not opened.after_hours.alert_dispatchers
    assert "goes off duty" not in opened.after_hours.message
    pages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_alert_on_call")).all()
    assert [p.recipient for p in pages] == ["tom@firm.test"]


def test_after_hours_break_fix_is_told_next_business_day(firm):
    opened = open_for(firm.bolt, firm.bolt_admin, NIGHT)
    decision = opened.after_hours
    assert not decision.covered_now and not decision.page_on_call
    assert decision.next_business_at == datetime(2026, 11, 25, 13, 0, tzinfo=timezone.utc)
    assert "next business day" in decision.message
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "staff_alert_on_call")) == 0
    received = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_received")).one()
    assert "next business day" in received.body


def test_ticket_for_organisation_hides_other_organisations(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    assert tickets.ticket_for_organisation(firm.acme.id, ticket.id).id == ticket.id
    assert tickets.ticket_for_organisation(firm.bolt.id, ticket.id) is None


# --- status -----------------------------------------------------------------------------------------


def test_status_flow_records_response_arrival_and_resolution(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now, onsite_needed=True).ticket
    tickets.assign(ticket.id, firm.technician.id, firm.dispatcher, now)
    t = tickets.set_status(ticket.id, TicketStatus.EN_ROUTE, firm.tech_user, now + timedelta(minutes=20))
    assert t.first_response_at == now + timedelta(minutes=20) and t.arrived_at is None
    t = tickets.set_status(ticket.id, TicketStatus.ON_SITE, firm.tech_user, now + timedelta(minutes=50))
    assert t.arrived_at == now + timedelta(minutes=50)
    t = tickets.set_status(ticket.id, TicketStatus.RESOLVED, firm.tech_user, now + timedelta(minutes=90), note="Fuser replaced")
    assert t.resolved_at == now + timedelta(minutes=90) and t.sla_state == "met"
    assert queue.entry_for(ticket.id) is None
    assert kinds(ticket.id)[-1] == "status"
    assert "Fuser replaced" in db.session.scalars(select(TicketEvent.message).where(
        TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id.desc())).first()


def test_refused_transition_changes_nothing(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    tickets.set_status(ticket.id, TicketStatus.RESOLVED, firm.tech_user, now)
    tickets.set_status(ticket.id, TicketStatus.CLOSED, firm.dispatcher, now)
    version = db.session.get(Ticket, ticket.id).version
    with pytest.raises(TicketError) as error:
        tickets.set_status(ticket.id, TicketStatus.IN_PROGRESS, firm.tech_user, now)
    assert error.value.field == "status"
    assert db.session.get(Ticket, ticket.id).version == version


def test_client_may_only_hand_back_or_resolve(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    with pytest.raises(TicketError):
        tickets.set_status(ticket.id, TicketStatus.EN_ROUTE, firm.acme_admin, now)
    with pytest.raises(TicketError) as error:
        tickets.set_status(ticket.id, TicketStatus.RESOLVED, firm.bolt_admin, now)  # another organisation
    assert "no such ticket" in error.value.message
    t = tickets.set_status(ticket.id, TicketStatus.RESOLVED, firm.acme_admin, now)
    assert t.status == TicketStatus.RESOLVED and t.first_response_at is None  # the client's fix is no response


def test_waiting_on_client_pauses_the_clock(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    due = ticket.response_due_at
    tickets.set_status(ticket.id, TicketStatus.WAITING_ON_CLIENT, firm.dispatcher, now + timedelta(minutes=10))
    assert queue.entry_for(ticket.id).position is None
    t = tickets.set_status(ticket.id, TicketStatus.NEW, firm.acme_admin, now + timedelta(minutes=40))
    pause = db.session.scalars(select(TicketPause).where(TicketPause.ticket_id == ticket.id)).one()
    assert pause.ended_at == now + timedelta(minutes=40)
    assert t.response_due_at == due + timedelta(minutes=30)
    assert queue.entry_for(ticket.id).position == 1
    assert "re-ranked" in kinds(ticket.id)


def test_late_response_is_recorded_once_with_times(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    due = ticket.response_due_at
    sla.refresh_states(due + timedelta(minutes=5))
    sla.refresh_states(due + timedelta(minutes=10))
    t = tickets.set_status(ticket.id, TicketStatus.IN_PROGRESS, firm.tech_user, due + timedelta(minutes=30))
    assert t.response_breached_at == due and t.sla_state == "breached"
    breaches = db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "sla_breached_response")).all()
    assert len(breaches) == 1 and breaches[0].detail["due_at"] == due.isoformat()
    assert breaches[0].detail["seen_at"] == (due + timedelta(minutes=5)).isoformat()


def test_technician_tap_assigns_themselves(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now, onsite_needed=True).ticket
    t = tickets.set_status(ticket.id, TicketStatus.EN_ROUTE, firm.tech_user, now)
    assert t.technician_id == firm.technician.id
    with pytest.raises(TicketError) as error:
        other = open_for(firm.acme, firm.acme_admin, now, title="Second", onsite_needed=True).ticket
        tickets.set_status(other.id, TicketStatus.ON_SITE, firm.dispatcher, now)
    assert error.value.field == "technician_id"


# --- override, assign, details ----------------------------------------------------------------------------


def test_override_with_stale_version_is_refused(firm, now):
    a = open_for(firm.acme, firm.acme_admin, now, impact="company", title="LAN down").ticket
    b = open_for(firm.acme, firm.acme_admin, now, title="Mouse broken").ticket
    assert queue.entry_for(b.id).position == 2
    with pytest.raises(TicketError) as error:
        tickets.override_position(b.id, 1, "CEO's laptop", firm.dispatcher, now, expected_version=b.version + 5)
    assert error.value.field == "version"
    with pytest.raises(TicketError) as error:
        tickets.override_position(b.id, 1, " ", firm.dispatcher, now, expected_version=None)
    assert error.value.field == "reason"
    fresh = db.session.get(Ticket, b.id)
    tickets.override_position(b.id, 1, "CEO's laptop", firm.dispatcher, now, expected_version=fresh.version)
    assert queue.entry_for(b.id).position == 1 and queue.entry_for(a.id).position == 2
    moved = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == b.id, TicketEvent.kind == "re-ranked")).one()
    assert "CEO's laptop" in moved.message and moved.public
    with pytest.raises(TicketError):
        tickets.override_position(b.id, 1, "again", firm.acme_admin, now)


def test_override_reason_reaches_the_client_timeline_even_when_the_place_holds(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now, impact="company", title="LAN down").ticket
    assert queue.entry_for(ticket.id).position == 1
    tickets.override_position(ticket.id, 1, "Pharmacy tills down", firm.dispatcher, now)
    tickets.override_position(ticket.id, None, "Tills back on a workaround", firm.dispatcher, now)
    public = db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "prioritised")).all()
    assert [e.public for e in public] == [True, True]
    assert "Pharmacy tills down" in public[0].message and "Tills back on a workaround" in public[1].message
    assert all(firm.dispatcher.email not in e.message for e in public)


def test_a_pin_is_lifted_only_where_there_is_one_and_goes_with_the_resolved_ticket(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now, title="Mouse").ticket
    with pytest.raises(TicketError) as error:
        tickets.override_position(ticket.id, None, "no pin here", firm.dispatcher, now)
    assert "nothing to lift" in error.value.message
    assert not db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "prioritised")).all()
    tickets.override_position(ticket.id, 1, "CEO's laptop", firm.dispatcher, now)
    tickets.set_status(ticket.id, TicketStatus.RESOLVED, firm.tech_user, now)
    resolved = db.session.get(Ticket, ticket.id)
    assert (resolved.override_position, resolved.override_reason) == (None, None)
    assert db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "override")).one()  # the log keeps it


def test_assign_and_unassign(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    t = tickets.assign(ticket.id, firm.technician.id, firm.dispatcher, now)
    assert t.status == TicketStatus.ASSIGNED and queue.entry_for(t.id).technician_id == firm.technician.id
    t = tickets.assign(ticket.id, None, firm.dispatcher, now)
    assert t.status == TicketStatus.NEW and t.technician_id is None
    with pytest.raises(TicketError) as error:
        tickets.assign(ticket.id, 999, firm.dispatcher, now)
    assert error.value.field == "technician_id"


@pytest.mark.parametrize("in_hand", [TicketStatus.EN_ROUTE, TicketStatus.ON_SITE, TicketStatus.IN_PROGRESS])
def test_a_job_in_hand_given_to_someone_else_or_to_nobody_waits_again(firm, now, in_hand):
    """Reassigning a job in hand (its technician went home sick) left it 'en route' or 'on site' under a
    technician who had not set off; unassigning it left it 'en route' with nobody, on no phone and with
    no place in the queue."""

    ticket = open_for(firm.acme, firm.acme_admin, now, onsite_needed=True, category="hardware").ticket
    tickets.assign(ticket.id, firm.technician.id, firm.dispatcher, now)
    tickets.set_status(ticket.id, in_hand, firm.tech_user, now + timedelta(minutes=5))
    other = add_technician("other@firm.example", ["network", "printer"])

    t = tickets.assign(ticket.id, other.id, firm.dispatcher, now + timedelta(minutes=10))
    assert (t.status, t.technician_id) == (TicketStatus.ASSIGNED, other.id)
    assert t.first_response_at == now + timedelta(minutes=5)  # what happened stays recorded
    assert queue.entry_for(t.id).technician_id == other.id and queue.entry_for(t.id).eta_median is not None
    told = db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == t.id, TicketEvent.kind == "assigned").order_by(TicketEvent.id.desc())).first()
    assert told.public and "takes over" in told.message

    tickets.set_status(ticket.id, TicketStatus.EN_ROUTE, other.user, now + timedelta(minutes=15))
    t = tickets.assign(ticket.id, None, firm.dispatcher, now + timedelta(minutes=20))
    assert (t.status, t.technician_id) == (TicketStatus.NEW, None)
    entry = queue.entry_for(t.id)
    assert entry.position is not None and entry.technician_id is not None  # the engine places it again
    public = db.session.scalars(select(TicketEvent.message).where(
        TicketEvent.ticket_id == t.id, TicketEvent.public.is_(True)).order_by(TicketEvent.id.desc())).all()
    assert any(m.startswith("Back in the queue") for m in public)


def test_set_details_moves_arrival_due(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    assert ticket.arrival_due_at is None
    t = tickets.set_details(ticket.id, True, 45, "printer", firm.dispatcher, now + timedelta(minutes=5))
    assert t.arrival_due_at == now + timedelta(minutes=240) and t.effort_minutes == 45
    with pytest.raises(TicketError) as error:
        tickets.set_details(ticket.id, True, 0, None, firm.dispatcher, now)
    assert error.value.field == "effort_minutes"


def test_comment_and_attachment(firm, now, tmp_path, app):
    from io import BytesIO

    from werkzeug.datastructures import FileStorage

    app.config["UPLOAD_FOLDER"] = str(tmp_path)
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    comment = tickets.add_comment(ticket.id, firm.acme_admin, "It beeps twice", now)
    assert comment.id and "comment" in kinds(ticket.id)
    with pytest.raises(TicketError) as error:
        tickets.add_comment(ticket.id, firm.bolt_admin, "Hi", now)
    attachment = tickets.add_attachment(ticket.id, firm.acme_admin,
                                        FileStorage(BytesIO(b"error 42"), filename="../log.txt"), now)
    assert attachment.filename == "log.txt" and (tmp_path / attachment.storage_name).read_bytes() == b"error 42"
    with pytest.raises(TicketError) as error:
        tickets.add_attachment(ticket.id, firm.acme_admin, FileStorage(BytesIO(b"MZ"), filename="run.exe"), now)
    assert error.value.field == "file"


def test_a_failing_engine_does_not_undo_the_opening(firm, now, monkeypatch, caplog):
    """The ticket is committed before the queue runs: a client must never be told 'failed' for a filed ticket."""
    def broken(at):
        raise RuntimeError("engine down")

    monkeypatch.setattr(queue, "recompute", broken)
    opened = open_for(firm.acme, firm.acme_admin, now)
    assert opened.created and db.session.get(Ticket, opened.ticket.id) is not None
    assert queue.entry_for(opened.ticket.id) is None
    assert "queue recompute failed" in caplog.text
    monkeypatch.undo()
    queue.recompute(now)
    assert queue.entry_for(opened.ticket.id).position == 1


def test_a_remote_ticket_has_no_technician_on_the_way_or_on_site(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    assert TicketStatus.ON_SITE not in tickets.allowed_statuses(ticket)
    for status in (TicketStatus.EN_ROUTE, TicketStatus.ON_SITE):
        with pytest.raises(TicketError) as error:
            tickets.set_status(ticket.id, status, firm.tech_user, now)
        assert error.value.field == "status" and "handled remotely" in error.value.message
    onsite = open_for(firm.acme, firm.acme_admin, now, title="Second", onsite_needed=True).ticket
    assert tickets.allowed_statuses(onsite) == tickets.TRANSITIONS[onsite.status]
