"""The client's emergency form and ticket page: filing, double submit, bad input, after hours,
live updates, status buttons, and privacy against a second organisation."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Comment, OnCallPeriod, OutboxMessage, Role, Ticket, TicketEvent, TicketStatus, User
from tests.client.helpers import TUESDAY_10_NY, GOOD_FORM, file_ticket, log_in_as, set_clock, tickets_in_db
from tests.conftest import PASSWORD, csrf_token_from, login, make_organisation, make_plan, make_user
from tests.staff.helpers import make_technician



def test_filing_shows_the_ticket_page_at_once_with_place_and_estimate(client, acme):
    ticket_id, response = file_ticket(client)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.title == GOOD_FORM["title"] and ticket.impact == "department" and ticket.onsite_needed
    assert str(ticket.revenue_at_risk_per_hour).startswith("17000")
    assert "1st in line: you are next" in page
    assert "Technician expected on site around" in page
    assert "Your ticket is filed" in page
    assert 'data-live-url="/client/tickets/%d/live.json"' % ticket_id in page
    assert "<script src=\"/static/js/ticket-live.js\"" in page and "<script>" not in page


def test_second_ticket_reads_second_in_line_with_one_ahead(client, acme):
    file_ticket(client, title="Whole office offline", impact="company", revenue_at_risk_per_hour="50000",
                category="network")
    second, _ = file_ticket(client, title="One mouse is broken", impact="person", money_lost="no",
                            revenue_at_risk_per_hour="", category="hardware", onsite_needed=None)
    page = client.get(f"/client/tickets/{second}").get_data(as_text=True)
    assert "2nd in line: 1 ticket ahead of you" in page
    assert "2</span> ticket(s) waiting in total" in page


def test_an_amount_written_with_dollar_sign_and_thousands_is_read_as_written(client, acme):
    ticket_id, _ = file_ticket(client, revenue_at_risk_per_hour="$17,250.50")
    assert db.session.get(Ticket, ticket_id).revenue_at_risk_per_hour == Decimal("17250.50")


def test_no_money_lost_wins_over_an_amount_typed_before_the_answer_changed(client, acme):
    """The amount field is only hidden when the client answers 'No': what was typed there before must
    not be saved as revenue at risk (it would raise the ticket's place)."""
    file_ticket(client, money_lost="no", revenue_at_risk_per_hour="500")
    [ticket] = tickets_in_db()
    assert ticket.revenue_at_risk_per_hour == 0


def test_double_submit_files_one_ticket(client, acme):
    page = client.get("/client/tickets/new").get_data(as_text=True)
    key = page.split('name="idempotency_key" type="hidden" value="')[1].split('"')[0]
    data = dict(GOOD_FORM, idempotency_key=key)
    first = client.post("/client/tickets/new", data=data)
    second = client.post("/client/tickets/new", data=data)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert len(tickets_in_db()) == 1
    assert "already filed" in client.get(second.headers["Location"]).get_data(as_text=True)


def _form_key(client) -> str:
    page = client.get("/client/tickets/new").get_data(as_text=True)
    return page.split('name="idempotency_key" type="hidden" value="')[1].split('"')[0]


def test_back_then_a_different_report_with_the_same_key_files_a_second_ticket(client, acme):
    """The browser's Back button restores the form with its hidden key: a new report written there
    is a new emergency, not a double submit, and must never be dropped."""
    key = _form_key(client)
    first = client.post("/client/tickets/new", data=dict(GOOD_FORM, idempotency_key=key))
    outage = dict(GOOD_FORM, idempotency_key=key, title="The whole company is offline", impact="company",
                  category="network")
    second = client.post("/client/tickets/new", data=outage)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] != second.headers["Location"]
    filed = tickets_in_db()
    assert [(t.title, t.impact) for t in filed] == [(GOOD_FORM["title"], "department"),
                                                    ("The whole company is offline", "company")]
    assert filed[0].idempotency_key == key and filed[1].idempotency_key != key
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "already filed" not in page and "Your ticket is filed" in page


def test_the_second_report_sent_twice_is_still_one_ticket(client, acme):
    key = _form_key(client)
    client.post("/client/tickets/new", data=dict(GOOD_FORM, idempotency_key=key))
    outage = dict(GOOD_FORM, idempotency_key=key, title="The whole company is offline", impact="company")
    second = client.post("/client/tickets/new", data=outage)
    again = client.post("/client/tickets/new", data=outage)
    assert second.headers["Location"] == again.headers["Location"]
    assert len(tickets_in_db()) == 2
    assert "already filed" in client.get(again.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("changes", [
    {"description": "Now the scanner is down too"},
    {"impact": "company"},
    {"category": "network"},
    {"money_lost": "no"},
    {"revenue_at_risk_per_hour": "18000"},
    {"client_deadline": "17:00"},
    {"onsite_needed": None},
    {"safety_critical": "y"},
])
def test_any_changed_answer_is_a_new_report(client, acme, changes):
    key = _form_key(client)
    client.post("/client/tickets/new", data=dict(GOOD_FORM, idempotency_key=key))
    data = {k: v for k, v in dict(GOOD_FORM, idempotency_key=key, **changes).items() if v is not None}
    client.post("/client/tickets/new", data=data)
    assert len(tickets_in_db()) == 2


def test_the_same_report_resent_with_other_spacing_is_one_ticket(client, acme):
    """What is compared is the report as read (trimmed, amounts as numbers), not the raw bytes."""
    key = _form_key(client)
    client.post("/client/tickets/new", data=dict(GOOD_FORM, idempotency_key=key))
    client.post("/client/tickets/new", data=dict(GOOD_FORM, idempotency_key=key, title=f"  {GOOD_FORM['title']} ",
                                                 revenue_at_risk_per_hour="$17,000.00"))
    assert len(tickets_in_db()) == 1


@pytest.mark.parametrize("changes, label", [
    ({"title": ""}, "What is broken?"),
    ({"impact": "everyone"}, "Who is affected?"),
    ({"revenue_at_risk_per_hour": "-5"}, "Roughly how much an hour"),
    ({"revenue_at_risk_per_hour": "lots"}, "Roughly how much an hour"),
    ({"revenue_at_risk_per_hour": "1e3"}, "Roughly how much an hour"),
    ({"revenue_at_risk_per_hour": "sNaN"}, "Roughly how much an hour"),
    ({"money_lost": "yes", "revenue_at_risk_per_hour": ""}, "Roughly how much an hour"),
    ({"money_lost": "yes", "revenue_at_risk_per_hour": "0"}, "Roughly how much an hour"),
    ({"money_lost": "yes", "revenue_at_risk_per_hour": "$0.00"}, "Roughly how much an hour"),
    ({"client_deadline": "25:99"}, "Is there a deadline today?"),
    ({"client_deadline": "9999-12-31T23:59:59"}, "Is there a deadline today?"),
    ({"client_deadline": "0001-01-01T00:00"}, "Is there a deadline today?"),
    ({"category": "<script>"}, "What kind of problem"),
    ({"title": "x" * 5000}, "What is broken?"),
])
def test_bad_input_names_the_field_keeps_the_values_and_files_nothing(client, acme, changes, label):
    page = client.get("/client/tickets/new").get_data(as_text=True)
    key = page.split('name="idempotency_key" type="hidden" value="')[1].split('"')[0]
    data = dict(GOOD_FORM, idempotency_key=key, description="Trucks waiting since 9 — étiquettes")
    data.update(changes)
    response = client.post("/client/tickets/new", data=data)
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'class="error"' in body and label in body.split('class="error"')[1].split("</p>")[0]
    assert "Trucks waiting since 9 — étiquettes" in body
    assert key in body, "the same idempotency key is kept for the corrected submit"
    assert tickets_in_db() == []


def test_members_file_tickets_and_staff_cannot(client, acme):
    acme_org = acme[0]
    member = make_user("m@acme.example", role=Role.CLIENT_MEMBER, organisation=acme_org)
    log_in_as(client, member)
    file_ticket(client)
    make_user("d@firm.example", role=Role.DISPATCHER)
    log_in_as(client, db.session.scalars(select(type(member)).where(type(member).email == "d@firm.example")).one())
    assert client.get("/client/tickets/new").status_code == 403
    client.post("/auth/logout")
    assert client.get("/client/tickets/new").status_code == 302


# --- after hours ---------------------------------------------------------------------------------

AFTER_HOURS_CASES = [
    # (label, utc moment, expected next business start text)
    ("Monday 22:00", datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc), "Tue 24 Nov 2026 08:00"),
    ("Saturday 10:00", datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc), "Mon 30 Nov 2026 08:00"),
    ("Thanksgiving 10:00", datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc), "Fri 27 Nov 2026 08:00"),
    ("Friday 18:30", datetime(2026, 11, 27, 23, 30, tzinfo=timezone.utc), "Mon 30 Nov 2026 08:00"),
]


@pytest.mark.parametrize("label, at, next_text", AFTER_HOURS_CASES)
def test_after_hours_break_fix_is_told_the_next_business_day_and_offered_the_upgrade(client, monkeypatch, label, at, next_text):
    set_clock(monkeypatch, at)
    org = make_organisation("Bolt Retail")
    make_user("b@bolt.example", organisation=org)
    make_plan("premium", name="Premium 24/7", coverage="24x7", after_hours_emergencies=True)
    login(client, "b@bolt.example")
    _, response = file_ticket(client)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    notice = page.split('id="after-hours"')[1].split("</div>")[0]
    assert "next business day" in notice and next_text in notice, label
    assert "See what upgrading now would change" in notice
    assert "paged" not in notice
    # On Thanksgiving the notice and the estimate say why a Thursday at 10:00 is outside business hours.
    holiday = "Thu 26 Nov is Thanksgiving Day, a public holiday"
    assert (holiday in notice) == (label == "Thanksgiving 10:00"), label


def test_a_break_fix_estimate_that_waits_over_a_holiday_names_it(client, monkeypatch):
    """Wednesday 18:30 before Thanksgiving: the notice and the estimate said work starts Friday, and a
    client wondered why not Thursday."""
    set_clock(monkeypatch, datetime(2026, 11, 25, 23, 30, tzinfo=timezone.utc))
    make_technician("tech@firm.example", name="Tina Tech", skills=("network", "printer", "desktop"))
    org = make_organisation("Bolt Retail")
    make_user("b@bolt.example", organisation=org)
    login(client, "b@bolt.example")
    ticket_id, response = file_ticket(client)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    holiday = "Thu 26 Nov is Thanksgiving Day, a public holiday"
    notice = page.split('id="after-hours"')[1].split("</div>")[0]
    assert f"Outside business hours ({holiday}): we will start on the next business day, Fri 27 Nov 2026 08:00." in notice
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["display"]["eta"] == f"Technician expected on site around Fri 27 Nov 08:00. {holiday}"


def test_break_fix_opened_in_the_small_hours_aims_for_the_morning_it_was_told(client, monkeypatch):
    """Tuesday 02:00: the notice says work starts today at 08:00, so the best-effort aim (the page and the
    email) is that opening, not Wednesday's."""
    set_clock(monkeypatch, datetime(2026, 11, 24, 7, 0, tzinfo=timezone.utc))
    org = make_organisation("Bolt Retail")
    make_user("b@bolt.example", organisation=org)
    login(client, "b@bolt.example")
    ticket_id, response = file_ticket(client)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "today, Tue 24 Nov 2026 08:00" in page
    assert "we aim for Tue 24 Nov 08:00" in page and "Wed 25 Nov" not in page
    [received] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_received")).all()
    assert "usually by Tue 24 Nov 08:00" in received.body


def _on_call(at: datetime) -> None:
    tech = make_technician("oncall@firm.example", name="Owen Oncall")
    db.session.add(OnCallPeriod(technician=tech, starts_at=at - timedelta(hours=6), ends_at=at + timedelta(hours=6)))
    db.session.commit()


@pytest.mark.parametrize("label, at, next_text", AFTER_HOURS_CASES)
def test_after_hours_contract_with_emergencies_pages_on_call(client, monkeypatch, label, at, next_text):
    set_clock(monkeypatch, at)
    plan = make_plan("premium", name="Premium 24/7", coverage="24x7", after_hours_emergencies=True)
    org = make_organisation("Cedar Pharmacy", plan)
    make_user("c@cedar.example", organisation=org)
    _on_call(at)
    login(client, "c@cedar.example")
    _, response = file_ticket(client)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    notice = page.split('id="after-hours"')[1].split("</p>")[0]
    assert "on-call technician has been paged" in notice, label
    assert "upgrading" not in notice


def test_the_night_the_clocks_go_back_a_time_in_the_repeated_hour_names_its_zone(client, monkeypatch):
    """Sun 1 Nov 2026, 01:30 EDT: a 30-minute response is due at 01:00 EST, half an hour later. Without
    the zone the page said "Due by Sun 01 Nov 01:00" under a timeline that opened at 01:30."""
    at = datetime(2026, 11, 1, 5, 30, tzinfo=timezone.utc)
    set_clock(monkeypatch, at)
    plan = make_plan("premium", name="Premium 24/7", coverage="24x7", after_hours_emergencies=True,
                     remote_response_minutes=30, onsite_arrival_minutes=120)
    org = make_organisation("Acme", plan)
    make_user("a@acme.example", organisation=org)
    _on_call(at)
    login(client, "a@acme.example")
    ticket_id, _ = file_ticket(client, onsite_needed=None)
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "Due by Sun 01 Nov 01:00 EST" in page
    assert "Sun 01 Nov 01:30 EDT</time> Ticket opened" in page
    assert "contract target due today 01:00 EST" in page
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["display"]["sla"].startswith("Due by Sun 01 Nov 01:00 EST")
    # An hour that happens once keeps its short form.
    later = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)
    set_clock(monkeypatch, later)
    second, _ = file_ticket(client, title="Second", onsite_needed=None)
    assert "Due by Sun 01 Nov 03:30 —" in client.get(f"/client/tickets/{second}").get_data(as_text=True)


def test_after_hours_emergency_with_nobody_on_call_does_not_say_a_technician_was_paged(client, monkeypatch):
    """Found filing an emergency on a Saturday with a gap in the rota: the page, the timeline and the
    "received" email said "the on-call technician has been paged" while the alert went to the
    dispatchers because nobody was on call."""
    at = AFTER_HOURS_CASES[1][1]
    set_clock(monkeypatch, at)
    plan = make_plan("premium", name="Premium 24/7", coverage="24x7", after_hours_emergencies=True)
    org = make_organisation("Cedar Pharmacy", plan)
    make_user("c@cedar.example", organisation=org)
    make_user("dispatch@firm.example", role=Role.DISPATCHER)
    login(client, "c@cedar.example")
    ticket_id, response = file_ticket(client)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    notice = page.split('id="after-hours"')[1].split("</p>")[0]
    assert "paged" not in notice and "No technician is on call right now" in notice
    assert "dispatchers have been alerted" in notice
    told = [m.body for m in db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_received"))]
    assert told and all("has been paged" not in body and "No technician is on call" in body for body in told)
    public = [e.message for e in db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket_id, TicketEvent.public.is_(True)))]
    assert not any("has been paged" in message for message in public)


def test_emergency_as_the_on_call_period_ends_says_who_was_told_and_that_the_deadline_is_likely_missed(
        client, monkeypatch):
    """Wed 06:55, a 30-minute response: the on-call technician goes off duty at 07:00, the day shift
    begins at 08:00. The page said "the on-call technician has been paged", and nobody looked for cover."""
    at = datetime(2026, 11, 25, 11, 55, tzinfo=timezone.utc)
    set_clock(monkeypatch, at)
    plan = make_plan("premium", name="Premium 24/7", coverage="24x7", after_hours_emergencies=True,
                     remote_response_minutes=30, onsite_arrival_minutes=120)
    org = make_organisation("Cedar Pharmacy", plan)
    make_user("c@cedar.example", organisation=org)
    make_user("dispatch@firm.example", role=Role.DISPATCHER)
    owen = make_technician("oncall@firm.example", name="Owen Oncall", skills=("network",))
    make_technician("day@firm.example", name="Dora Day", skills=("network", "printer"))
    db.session.add(OnCallPeriod(technician=owen, starts_at=at - timedelta(hours=10), ends_at=at + timedelta(minutes=5)))
    db.session.commit()
    login(client, "c@cedar.example")
    ticket_id, response = file_ticket(client, onsite_needed=None)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    notice = page.split('id="after-hours"')[1].split("</p>")[0]
    assert "has been paged but goes off duty at 07:00" in notice
    assert "dispatchers have also been alerted to find cover; the day shift begins at 08:00" in notice
    assert "Due by Wed 25 Nov 07:25 — likely to be missed" in page
    pages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_alert_on_call")).all()
    assert sorted(p.recipient for p in pages) == ["dispatch@firm.example", "oncall@firm.example"]
    [received] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_received")).all()
    assert "goes off duty at 07:00" in received.body and "likely to be missed" in received.body


def test_after_hours_contract_without_emergencies_waits_for_business_hours(client, monkeypatch):
    set_clock(monkeypatch, AFTER_HOURS_CASES[1][1])
    org = make_organisation("Delta", make_plan("priority", after_hours_emergencies=False))
    make_user("d@delta.example", organisation=org)
    login(client, "d@delta.example")
    _, response = file_ticket(client)
    notice = client.get(response.headers["Location"]).get_data(as_text=True).split('id="after-hours"')[1]
    assert "next business day" in notice and "Mon 30 Nov 2026 08:00" in notice


def test_in_business_hours_there_is_no_after_hours_notice(client, acme):
    _, response = file_ticket(client)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'id="after-hours"' not in page and "Within business hours" in page


def test_notice_is_shown_once(client, acme):
    ticket_id, response = file_ticket(client)
    client.get(response.headers["Location"])
    assert "Your ticket is filed" not in client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)


# --- live updates ----------------------------------------------------------------------------------

def test_live_json_carries_the_api_fields_and_answers_304_when_unchanged(client, acme):
    ticket_id, _ = file_ticket(client)
    response = client.get(f"/client/tickets/{ticket_id}/live.json")
    data = response.get_json()
    assert response.status_code == 200 and response.headers["ETag"]
    for key in ("id", "title", "status", "position", "ahead", "eta", "sla", "technician", "reasons", "updated_at"):
        assert key in data
    assert data["position"] == 1 and data["ahead"] == 0
    assert data["display"]["place"] == "1st in line: you are next"
    assert data["eta"]["median"].endswith("+00:00")
    again = client.get(f"/client/tickets/{ticket_id}/live.json", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    client.post(f"/client/tickets/{ticket_id}/comments", data={"body": "Line 3 is down too"})
    changed = client.get(f"/client/tickets/{ticket_id}/live.json", headers={"If-None-Match": response.headers["ETag"]})
    assert changed.status_code == 200


def test_status_buttons_pause_and_resolve(client, acme):
    ticket_id, _ = file_ticket(client)
    response = client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.WAITING_ON_CLIENT})
    assert response.status_code == 303
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.status == TicketStatus.WAITING_ON_CLIENT and ticket.pauses
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["position"] is None
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.RESOLVED})
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status == TicketStatus.RESOLVED
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "ticket-live.js" not in page
    assert "Why this place" not in page and "waiting in total" not in page


@pytest.mark.parametrize("status, already", [
    (TicketStatus.WAITING_ON_CLIENT, "This ticket already waits on you; its deadline clock is paused."),
    (TicketStatus.RESOLVED, "This ticket is already marked as resolved."),
])
def test_a_status_button_pressed_twice_says_it_is_done_not_an_error(client, acme, status, already):
    """A double click sends the button twice: the second answer is what the client sees, and it read
    "The ticket is already 'Waiting on you'." or "This ticket is already closed." as errors."""
    ticket_id, _ = file_ticket(client)
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": status})
    db.session.expire_all()
    version = db.session.get(Ticket, ticket_id).version
    second = client.post(f"/client/tickets/{ticket_id}/status", data={"status": status}, follow_redirects=True)
    page = second.get_data(as_text=True)
    assert f'<p class="flash flash-info" role="status">{already}</p>' in page
    assert "flash-error" not in page and "closed" not in page.split("<main")[1].split("Timeline")[0]
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).version == version


def test_a_resolved_ticket_is_not_called_closed(client, acme):
    ticket_id, _ = file_ticket(client)
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.RESOLVED})
    page = client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.WAITING_ON_CLIENT},
                       follow_redirects=True).get_data(as_text=True)
    assert "This ticket is already resolved." in page and "already closed" not in page


def test_a_ticket_resolved_under_the_live_page_is_called_resolved_not_closed(client, acme, app):
    """The live script wrote "This ticket is closed" whatever the ticket became: the words are the server's."""
    ticket_id, _ = file_ticket(client)
    assert client.get(f"/client/tickets/{ticket_id}/live.json").get_json()["display"]["done_note"] == ""
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.RESOLVED})
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["display"]["done_note"] == "This ticket is resolved; reload to see the final state."
    script = (Path(app.static_folder) / "js" / "ticket-live.js").read_text()
    assert "is closed" not in script and "shown.done_note" in script


def test_a_note_too_long_is_named_and_changes_nothing(client, acme):
    ticket_id, _ = file_ticket(client)
    response = client.post(f"/client/tickets/{ticket_id}/status", follow_redirects=True,
                           data={"status": TicketStatus.RESOLVED, "note": "x" * 1001})
    assert "Note: Use at most 1000 characters. Nothing was changed." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status in TicketStatus.WAITING


def test_clients_cannot_set_staff_statuses(client, acme):
    ticket_id, _ = file_ticket(client)
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.ON_SITE})
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status in TicketStatus.WAITING


def test_comment_is_saved_and_shown_and_empty_comment_names_the_field(client, acme):
    ticket_id, _ = file_ticket(client)
    bad = client.post(f"/client/tickets/{ticket_id}/comments", data={"body": ""})
    assert bad.status_code == 400 and "Add a comment: Write something first." in bad.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 0
    client.post(f"/client/tickets/{ticket_id}/comments", data={"body": "<b>Line 3</b> too"})
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "&lt;b&gt;Line 3&lt;/b&gt; too" in page and "<b>Line 3</b>" not in page


def test_a_comment_on_a_resolved_ticket_says_it_reopens_nothing(client, acme):
    """Nobody works a resolved ticket, and the resolution email says to report it again: the page
    took "still broken" with a bare "Comment added." and the comment went unread."""
    ticket_id, _ = file_ticket(client)
    open_page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert 'id="done-comment-hint"' not in open_page
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.RESOLVED})
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    hint = page.split('id="done-comment-hint">')[1].split("</p>")[0]
    assert "a comment is kept with it but does not reopen it" in " ".join(hint.split())
    assert f'href="/client/tickets/new?follows={ticket_id}"' in hint
    after = client.post(f"/client/tickets/{ticket_id}/comments", data={"body": "Still broken"},
                        follow_redirects=True).get_data(as_text=True)
    assert ("Comment added. The ticket stays resolved: if the problem is back, use “Report it again” on this "
            "page.") in after
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status == TicketStatus.RESOLVED


def test_a_comment_sent_twice_by_a_double_click_is_posted_once(client, acme):
    ticket_id, _ = file_ticket(client)
    for _ in range(2):
        response = client.post(f"/client/tickets/{ticket_id}/comments", data={"body": "Line 3 is down too"})
        assert response.status_code == 303
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert page.count("Line 3 is down too") == 1
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 1


def test_a_nul_character_is_refused_under_its_field_on_every_database(client, acme):
    """PostgreSQL cannot store NUL; the refusal is the same on SQLite, and the rest of the text comes back."""
    ticket_id, _ = file_ticket(client)
    bad = client.post(f"/client/tickets/{ticket_id}/comments", data={"body": "Still down\x00 after reboot"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert 'id="body-error"' in page and "Remove the invisible NUL character" in page
    assert "after reboot" in page
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 0
    opened = client.post("/client/tickets/new", data=dict(GOOD_FORM, title="Printer\x00", idempotency_key="k-nul"))
    assert opened.status_code == 400 and 'id="title-error"' in opened.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1



def test_a_surrogate_cannot_reach_the_database_through_a_form(client, acme):
    """Werkzeug decodes form bodies with replacement, so the UTF-8 bytes of half a UTF-16 pair
    arrive as storable text; PortalForm refuses a lone surrogate under its field all the same."""
    from portal.client.forms import CommentForm
    from werkzeug.datastructures import MultiDict

    ticket_id, _ = file_ticket(client)
    for body, content_type in [
        (b"body=Still+down+%ED%A0%80", "application/x-www-form-urlencoded"),
        (b'--b\r\nContent-Disposition: form-data; name="body"\r\n\r\nStill down \xed\xa0\x80\r\n--b--\r\n',
         "multipart/form-data; boundary=b"),
    ]:
        response = client.post(f"/client/tickets/{ticket_id}/comments", data=body, content_type=content_type)
        assert response.status_code < 500
    db.session.expire_all()
    for comment in db.session.scalars(select(Comment)):
        comment.body.encode("utf-8")
    form = CommentForm(formdata=MultiDict({"body": "Still down \ud800"}), meta={"csrf": False})
    assert not form.validate() and "half of a UTF-16 pair" in form.body.errors[0]

def test_timeline_shows_public_events_only(client, acme):
    ticket_id, _ = file_ticket(client)
    db.session.add(TicketEvent(ticket_id=ticket_id, at=TUESDAY_10_NY, kind="staff_note",
                               message="Staff only: client is difficult", public=False))
    db.session.commit()
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "Staff only" not in page
    assert "Staff only" not in client.get(f"/client/tickets/{ticket_id}/live.json").get_data(as_text=True)


# --- privacy ----------------------------------------------------------------------------------------

def test_another_organisations_ticket_answers_404_on_every_route(client, acme):
    _, acme_admin, _, other_admin = acme
    ticket_id, _ = file_ticket(client)
    before = db.session.get(Ticket, ticket_id).version
    log_in_as(client, other_admin)
    routes = [
        ("get", f"/client/tickets/{ticket_id}", None),
        ("get", f"/client/tickets/{ticket_id}/live.json", None),
        ("post", f"/client/tickets/{ticket_id}/status", {"status": "resolved"}),
        ("post", f"/client/tickets/{ticket_id}/comments", {"body": "hello"}),
        ("post", f"/client/tickets/{ticket_id}/attachments", {}),
        ("get", f"/client/tickets/{ticket_id}/attachments/1", None),
        ("get", "/client/tickets/999999", None),
    ]
    for method, url, data in routes:
        response = getattr(client, method)(url, data=data) if data is not None else getattr(client, method)(url)
        assert response.status_code == 404, (method, url)
        assert GOOD_FORM["title"] not in response.get_data(as_text=True)
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.version == before and ticket.status in TicketStatus.WAITING
    assert db.session.scalar(select(func.count()).select_from(Comment)) == 0
    dashboard = client.get("/client/").get_data(as_text=True)
    assert GOOD_FORM["title"] not in dashboard and "Acme" not in dashboard


def test_client_can_hand_a_waiting_ticket_back_to_the_queue(client, acme):
    ticket_id, _ = file_ticket(client)
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.WAITING_ON_CLIENT})
    assert "We are ready: carry on" in client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.NEW})
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.status in TicketStatus.WAITING and all(p.ended_at is not None for p in ticket.pauses)
    assert client.get(f"/client/tickets/{ticket_id}/live.json").get_json()["position"] == 1


@pytest.mark.parametrize("reached, resumed", [(TicketStatus.ON_SITE, TicketStatus.ON_SITE),
                                              (TicketStatus.EN_ROUTE, TicketStatus.ASSIGNED)])
def test_carry_on_resumes_the_work_in_hand_the_client_paused(client, acme, reached, resumed):
    """On site, the client needs a password first, then says they are ready: the technician is still
    there. It went back to 'Technician assigned' with place 1 and a new drive estimate."""
    from portal.models import Technician
    from portal.services import tickets as ticket_service

    ticket_id, _ = file_ticket(client)
    technician = db.session.scalars(select(Technician)).one()
    ticket_service.assign(ticket_id, technician.id, make_user("d@firm.example", role=Role.DISPATCHER), TUESDAY_10_NY)
    ticket_service.set_status(ticket_id, reached, technician.user, TUESDAY_10_NY)
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.WAITING_ON_CLIENT})

    done = client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.NEW}, follow_redirects=True)
    again = client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.NEW},
                        follow_redirects=True)

    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.status == resumed and all(p.ended_at is not None for p in ticket.pauses)
    page = done.get_data(as_text=True)
    if resumed == TicketStatus.ON_SITE:
        assert "the technician carries on where they stopped" in page
        assert client.get(f"/client/tickets/{ticket_id}/live.json").get_json()["position"] is None
    else:
        assert "Back in the queue: the deadline clock runs again." in page
    assert "This ticket no longer waits on you: work on it goes on." in again.get_data(as_text=True)


def test_staff_progress_reaches_the_client_page_technician_en_route_and_timeline(client, acme):
    from portal.models import Technician, User
    from portal.services import tickets as ticket_service

    ticket_id, _ = file_ticket(client)
    before = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert before["technician"] is None, "only an assigned technician is named in the API"
    assert before["display"]["technician"] == "Not assigned yet (most likely Tom)"
    dispatcher = make_user("d@firm.example", role=Role.DISPATCHER)
    technician = db.session.scalars(select(Technician)).one()
    ticket_service.assign(ticket_id, technician.id, dispatcher, TUESDAY_10_NY)
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["technician"] == "Tom" and live["position"] == 1
    ticket_service.set_status(ticket_id, TicketStatus.EN_ROUTE, db.session.get(User, technician.user_id), TUESDAY_10_NY)
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["status"] == "en_route" and live["position"] is None and live["ahead"] is None
    assert live["display"]["eta"].startswith("Technician on the way, expected on site around")
    messages = " ".join(e["message"] for e in live["display"]["timeline"])
    assert "Technician assigned: Tom" in messages and "en route" in messages.lower()
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "Technician en route" in page


def test_break_fix_deadline_is_shown_as_best_effort_never_as_a_promise(client, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    make_user("b@bolt.example", organisation=make_organisation("Bolt Retail"))
    login(client, "b@bolt.example")
    ticket_id, _ = file_ticket(client)
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["sla"]["best_effort"] is True and live["sla"]["state"] == "best_effort"
    assert live["display"]["sla"].startswith("Best effort, not a guarantee")
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "Best effort, not a guarantee" in page and "Due by" not in page
    assert f'href="/billing/tickets/{ticket_id}/upgrade" id="upgrade-offer"' in page


def test_a_deadline_the_estimate_already_passes_reads_likely_to_be_missed(client, acme):
    """Three printer jobs for the one technician, each to be answered within the hour: the third's
    median start is after its deadline, so 'at risk' would understate it."""
    ids = [file_ticket(client, title=f"Printer {n}", onsite_needed=None, money_lost="no")[0] for n in "ABC"]
    live = client.get(f"/client/tickets/{ids[-1]}/live.json").get_json()
    assert live["sla"]["state"] == "at_risk"
    assert live["eta"]["median"] > live["sla"]["due_at"]
    assert live["display"]["sla"] == ("Due by Tue 24 Nov 11:00 — likely to be missed: "
                                      "the technician is expected after it")


def test_the_clients_own_deadline_is_said_to_be_missed_when_the_estimate_is_after_it(client, acme):
    from dataclasses import replace
    from datetime import timedelta

    from portal.client.presenting import eta_text
    from portal.services.ticket_status import ticket_view

    ticket_id, _ = file_ticket(client, client_deadline="17:00")
    view = ticket_view(acme[0].id, ticket_id)
    assert view.client_deadline is not None and "Your own deadline" not in eta_text(view)
    late = replace(view, eta_median=view.client_deadline + timedelta(hours=15),
                   eta_p90=view.client_deadline + timedelta(hours=16))
    assert eta_text(late).endswith(". Your own deadline, Tue 24 Nov 17:00, is likely to be missed")


def test_a_missed_response_is_named_beside_the_on_site_deadline_still_ahead(client, acme, monkeypatch):
    """The remote response (due 11:00) is missed while the technician's arrival (due 14:00) is
    still ahead: the page says which deadline was missed instead of 'Due by 14:00 — missed'."""
    from datetime import timedelta

    from portal.services import sla

    ticket_id, _ = file_ticket(client, onsite_needed="yes")
    # While owed, the nearer response deadline is shown beside the arrival's.
    assert client.get(f"/client/tickets/{ticket_id}/live.json").get_json()["display"]["sla"] == (
        "Remote response due by Tue 24 Nov 11:00, technician on site by Tue 24 Nov 14:00 — on track")
    later = TUESDAY_10_NY + timedelta(minutes=90)
    set_clock(monkeypatch, later)
    sla.refresh_states(later)
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["display"]["sla"] == ("Remote response was due by Tue 24 Nov 11:00 — missed; "
                                      "technician on site due by Tue 24 Nov 14:00")
    assert live["sla"]["state"] == "breached"
    assert live["sla"]["response_missed_due_at"].startswith("2026-11-24T16:00:00")
    assert "Remote response was due by" in client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    # The on-site part keeps its own outlook from the estimate (the queue's, as the service judges it).
    from portal.client.presenting import sla_text
    from portal.models import QueueEntry
    from portal.services.ticket_status import ticket_view

    entry = db.session.get(QueueEntry, ticket_id)
    due = ticket_view(acme[0].id, ticket_id).sla_due_at
    entry.eta_median, entry.eta_p90 = due + timedelta(hours=1), due + timedelta(hours=2)
    db.session.commit()
    late = ticket_view(acme[0].id, ticket_id)
    assert sla_text(late).endswith("technician on site due by Tue 24 Nov 14:00 — likely to be missed: "
                                   "the technician is expected after it")


def test_the_deadline_reads_at_risk_as_soon_as_the_plan_sees_it_slipping(client, acme):
    """Two printer jobs (40 minutes, 9 times out of 10 within 100) for the one technician, each to be
    answered within the hour: the second cannot be promised by its deadline, although the SLA
    clock alone has all its time left. The page and live.json say so; the first stays on track."""
    first, _ = file_ticket(client, title="Printer A", onsite_needed=None, money_lost="no", revenue_at_risk_per_hour="")
    second, _ = file_ticket(client, title="Printer B", onsite_needed=None, money_lost="no", revenue_at_risk_per_hour="")
    assert {t.sla_state for t in tickets_in_db()} == {"on_track"}
    assert "Due by Tue 24 Nov 11:00 — on track" in client.get(f"/client/tickets/{first}").get_data(as_text=True)
    page = client.get(f"/client/tickets/{second}").get_data(as_text=True)
    assert "Due by Tue 24 Nov 11:00 — at risk of being missed" in page
    live = client.get(f"/client/tickets/{second}/live.json").get_json()
    assert live["sla"]["state"] == live["display"]["sla_state"] == "at_risk"


def test_a_description_comment_and_note_keep_their_line_breaks_on_the_ticket_page(client, acme):
    """Stored with breaks, they ran together in one paragraph; the one stylesheet keeps them (no inline style: CSP)."""
    ticket_id, _ = file_ticket(client, description="Step 1: reboot\nStep 2: still down")
    client.post(f"/client/tickets/{ticket_id}/comments", data={"body": "Tried again.\nSame error."})
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert '<p class="as-typed">Step 1: reboot\nStep 2: still down</p>' in page
    assert '<p class="as-typed">Tried again.\nSame error.</p>' in page
    assert 'style="' not in page
    css = (Path(__file__).resolve().parents[2] / "portal" / "static" / "css" / "portal.css").read_text()
    rule = re.search(r"([^{}]*)\{([^}]*white-space:\s*pre-line[^}]*)\}", css)
    assert rule and ".as-typed" in rule.group(1) and "ol.timeline li" in rule.group(1) and "ul.timeline li" in rule.group(1)


def test_a_resolved_break_fix_ticket_says_when_it_was_resolved_not_a_time_we_aim_for(client, monkeypatch):
    from datetime import timedelta

    set_clock(monkeypatch, TUESDAY_10_NY)
    make_user("b@bolt.example", organisation=make_organisation("Bolt Retail"))
    login(client, "b@bolt.example")
    ticket_id, _ = file_ticket(client)
    set_clock(monkeypatch, TUESDAY_10_NY + timedelta(minutes=30))
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.RESOLVED})
    sla = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()["display"]["sla"]
    assert "aim for" not in sla
    assert sla == "Best effort: resolved Tue 24 Nov 10:30, before the time we aimed for (Wed 25 Nov 08:00)."
    assert "we aim for" not in client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)


def test_a_resolved_contract_ticket_says_when_it_was_resolved_and_whether_the_deadline_was_met(client, acme, monkeypatch):
    from datetime import timedelta

    from portal.services import sla, tickets as ticket_service

    ticket_id, _ = file_ticket(client, onsite_needed=None, money_lost="no")
    technician = db.session.scalars(select(User).where(User.role == Role.TECHNICIAN)).first()
    ticket_service.set_status(ticket_id, TicketStatus.RESOLVED, technician, TUESDAY_10_NY + timedelta(minutes=20))
    shown = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()["display"]["sla"]
    assert shown == "Resolved Tue 24 Nov 10:20; the deadline, Tue 24 Nov 11:00, was met."
    late, _ = file_ticket(client, title="Second", onsite_needed=None, money_lost="no")
    sla.refresh_states(TUESDAY_10_NY + timedelta(hours=2))
    ticket_service.set_status(late, TicketStatus.RESOLVED, technician, TUESDAY_10_NY + timedelta(hours=2))
    shown = client.get(f"/client/tickets/{late}/live.json").get_json()["display"]["sla"]
    assert shown == "Resolved Tue 24 Nov 12:00; the deadline, Tue 24 Nov 11:00, was missed."


def test_after_the_contract_ends_the_page_says_best_effort_and_keeps_the_response_missed_before(client, acme):
    """The 11:00 response was missed; the contract is cancelled at 12:00. The page no longer shows a
    deadline (best effort now) but still says the contract's response was missed, as the dashboard counts it."""
    from portal.models import Contract, ContractStatus
    from portal.services import sla

    ticket_id, _ = file_ticket(client, onsite_needed=None, money_lost="no")
    sla.refresh_states(TUESDAY_10_NY + timedelta(minutes=61))
    for contract in db.session.scalars(select(Contract)):
        contract.status = ContractStatus.CANCELED
    db.session.commit()
    sla.rebase_organisation(db.session.get(Ticket, ticket_id).organisation_id, TUESDAY_10_NY + timedelta(hours=2),
                            "Contract ended")
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["display"]["sla"] == ("Best effort, not a guarantee: we aim for Wed 25 Nov 08:00. Under your contract, "
                                      "the remote response (due Tue 24 Nov 11:00) was missed.")


def test_a_ticket_closed_as_a_duplicate_says_closed_not_that_a_deadline_was_met(client, acme):
    from portal.services import tickets as ticket_service

    ticket_id, _ = file_ticket(client, onsite_needed=None, money_lost="no")
    dispatcher = make_user("d@firm.example", role=Role.DISPATCHER)
    ticket_service.set_status(ticket_id, TicketStatus.CLOSED, dispatcher, TUESDAY_10_NY + timedelta(minutes=10),
                              note="Duplicate of your earlier report.")
    shown = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()["display"]["sla"]
    assert shown == "Closed Tue 24 Nov 10:10."


# --- a form opened before the session changed ------------------------------------------------------


@pytest.fixture
def csrf_app(make_app, monkeypatch):
    """CSRF on, and no app context held around the requests (Flask-WTF keeps a page's token in `g`)."""
    app = make_app(WTF_CSRF_ENABLED=True)
    set_clock(monkeypatch, TUESDAY_10_NY)
    with app.app_context():
        org = make_organisation("Acme", make_plan("priority"))
        make_user("a@acme.example", organisation=org, name="Alice Acme")
    return app


def _stored(app, model) -> list:
    with app.app_context():
        return list(db.session.scalars(select(model).order_by(model.id)))


def _log_in_with_token(client) -> None:
    page = client.get("/auth/login")
    if page.status_code == 302:
        return  # already logged in
    token = csrf_token_from(page.get_data(as_text=True))
    assert client.post("/auth/login", data={"email": "a@acme.example", "password": PASSWORD,
                                            "csrf_token": token}).status_code == 302


def _form_then_new_session(client, path: str) -> dict:
    """The page is opened, then the person logs out and in again in another tab: its token is stale."""
    _log_in_with_token(client)
    page = client.get(path).get_data(as_text=True)
    stale = csrf_token_from(page)
    key = re.search(r'name="idempotency_key" type="hidden" value="([^"]*)"', page)
    assert client.post("/auth/logout", data={"csrf_token": stale}).status_code == 302
    _log_in_with_token(client)
    return {"csrf_token": stale, **({"idempotency_key": key.group(1)} if key else {})}


def test_an_emergency_typed_before_signing_in_again_comes_back_as_typed_and_files_once_sent_again(csrf_app):
    """Found with two tabs: the emergency form sent after logging out and in again answered the bare
    "400 Bad Request: The CSRF tokens do not match." and everything typed was lost."""
    client = csrf_app.test_client()
    sent = dict(GOOD_FORM, title="Core switch down — 3rd floor dark", **_form_then_new_session(client, "/client/tickets/new"))
    response = client.post("/client/tickets/new", data=sent)
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and _stored(csrf_app, Ticket) == []
    assert "nothing was sent" in body and "File the ticket" in body
    assert "Core switch down — 3rd floor dark" in body and "17000" in body
    assert f'value="{sent["idempotency_key"]}"' in body  # the same report, the same key
    again = dict(sent, csrf_token=csrf_token_from(body))
    assert client.post("/client/tickets/new", data=again).status_code == 302
    assert client.post("/client/tickets/new", data=again).status_code == 302
    assert [t.title for t in _stored(csrf_app, Ticket)] == ["Core switch down — 3rd floor dark"]


def test_a_comment_typed_before_signing_in_again_comes_back_as_typed(csrf_app):
    client = csrf_app.test_client()
    _log_in_with_token(client)
    page = client.get("/client/tickets/new").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([^"]*)"', page).group(1)
    client.post("/client/tickets/new", data=dict(GOOD_FORM, idempotency_key=key, csrf_token=csrf_token_from(page)))
    (ticket,) = _stored(csrf_app, Ticket)
    stale = _form_then_new_session(client, f"/client/tickets/{ticket.id}")
    response = client.post(f"/client/tickets/{ticket.id}/comments",
                           data={"body": "The spare switch is in the basement, key at reception.", **stale})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and _stored(csrf_app, Comment) == []
    assert "The spare switch is in the basement, key at reception." in body and "nothing was sent" in body


def test_a_form_sent_after_signing_out_says_nothing_was_sent_and_leads_to_log_in(csrf_app):
    client = csrf_app.test_client()
    stale = _form_then_new_session(client, "/client/tickets/new")
    client.post("/auth/logout", data={"csrf_token": csrf_token_from(client.get("/client/").get_data(as_text=True))})
    response = client.post("/client/tickets/new", data=dict(GOOD_FORM, **stale))
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and _stored(csrf_app, Ticket) == []
    assert "nothing was sent" in body and "Log in again" in body and "/auth/login" in body


def _on_site_emergency_as_the_on_call_period_ends(client, monkeypatch) -> int:
    """Wed 06:55 (New York), Premium 24/7: remote response due 07:25, technician on site due 08:55. The on-call
    technician (without the job's skill) goes off duty at 07:00; the day shift starts at 08:00."""
    at = datetime(2026, 11, 25, 11, 55, tzinfo=timezone.utc)
    set_clock(monkeypatch, at)
    plan = make_plan("premium", name="Premium 24/7", coverage="24x7", after_hours_emergencies=True,
                     remote_response_minutes=30, onsite_arrival_minutes=120)
    org = make_organisation("Cedar Pharmacy", plan)
    org.latitude = 40.85  # uptown: a drive from the technicians' base
    make_user("c@cedar.example", organisation=org)
    make_user("dispatch@firm.example", role=Role.DISPATCHER)
    owen = make_technician("oncall@firm.example", name="Owen Oncall", skills=("network",))
    make_technician("day@firm.example", name="Dora Day", skills=("network", "printer"))
    db.session.add(OnCallPeriod(technician=owen, starts_at=at - timedelta(hours=10), ends_at=at + timedelta(minutes=5)))
    db.session.commit()
    login(client, "c@cedar.example")
    ticket_id, _ = file_ticket(client, onsite_needed="y")
    return ticket_id


def test_an_on_site_emergency_whose_technician_sets_off_after_the_response_is_due_is_not_on_track(
        client, monkeypatch):
    """Found at 06:55: "Remote response due by 07:25, technician on site by 08:55 — on track", while the
    plan had the day technician setting off at 08:00. Only the arrival was judged; setting off is the
    response. The page, its live update, the received email and the API now agree that it is at risk."""
    from portal.models import QueueEntry

    ticket_id = _on_site_emergency_as_the_on_call_period_ends(client, monkeypatch)
    entry = db.session.get(QueueEntry, ticket_id)
    ticket = db.session.get(Ticket, ticket_id)
    assert entry.set_off_median is not None and entry.set_off_median > ticket.response_due_at
    assert entry.eta_median <= ticket.arrival_due_at  # the arrival alone would still read on track
    assert entry.set_off_median < entry.eta_median  # the arrival less the drive
    set_off = entry.set_off_median.astimezone(timezone(timedelta(hours=-5))).strftime("%H:%M")
    words = f"the remote response is likely to be missed: the technician is expected to set off at "
    line = ("Remote response due by Wed 25 Nov 07:25, technician on site by Wed 25 Nov 08:55 — " + words)
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert f"{line}Wed 25 Nov {set_off}" in page
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert live["display"]["sla"].startswith(line) and live["display"]["sla_state"] == "at_risk"
    api = client.get(f"/api/v1/tickets/{ticket_id}").get_json()["sla"]
    assert api["state"] == "at_risk"
    # A tool can tell which promise slips: the response, the technician setting off after it is due.
    assert api["at_risk"] == {"promise": "response", "due_at": ticket.response_due_at.isoformat(),
                              "expected_at": entry.set_off_median.isoformat(), "likely_missed": True}
    [received] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_received")).all()
    assert ("remote response by Wed 25 Nov 07:25 EST and technician on site by Wed 25 Nov 08:55 EST — "
            + words) in received.body
    assert set_off in received.body.split(words)[1].split("\n")[0]


def test_once_the_response_is_made_only_the_arrival_is_judged(client, monkeypatch):
    """The technician set off (the response) after its due time: that promise is settled (missed), and the
    on-site deadline shown beside it is judged on the arrival estimate alone."""
    from portal.models import QueueEntry
    from portal.services.ticket_status import sla_outlook, ticket_view

    ticket_id = _on_site_emergency_as_the_on_call_period_ends(client, monkeypatch)
    ticket = db.session.get(Ticket, ticket_id)
    entry = db.session.get(QueueEntry, ticket_id)
    # Responded (remotely) at 07:20, in time: only the arrival is owed; its estimate is on track.
    ticket.first_response_at = ticket.response_due_at - timedelta(minutes=5)
    db.session.commit()
    outlook = sla_outlook(ticket, entry)
    assert outlook.worst is None and outlook.state == ticket.sla_state == "on_track"
    view = ticket_view(ticket.organisation_id, ticket_id)
    assert view.response_pending_due_at is None and view.sla_state == "on_track"
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "Due by Wed 25 Nov 08:55 — on track" in page and "remote response is" not in page
    # An arrival estimate past its deadline still says so.
    entry.eta_median, entry.eta_p90 = ticket.arrival_due_at + timedelta(minutes=10), ticket.arrival_due_at + timedelta(minutes=40)
    db.session.commit()
    assert sla_outlook(ticket, entry).worst.promise == "arrival"
    assert ticket_view(ticket.organisation_id, ticket_id).sla_state == "at_risk"
