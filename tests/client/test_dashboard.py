"""The client dashboard: open tickets with places and estimates, the contract's guarantees,
90-day SLA compliance, past tickets, and nothing of another organisation."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from portal.extensions import db
from portal.models import Ticket, TicketStatus
from tests.client.helpers import (TUESDAY_10_NY, acme_admin_logged_in, add_done_tickets, file_ticket, log_in_as,
                                  open_ticket_opened_long_ago, set_clock, two_organisations)
from tests.conftest import login, make_organisation, make_user


def _closed_ticket(org_id: int, title: str, opened: datetime, responded: datetime | None, due: datetime) -> Ticket:
    ticket = Ticket(organisation_id=org_id, title=title, status=TicketStatus.RESOLVED, opened_at=opened,
                    updated_at=opened, resolved_at=opened + timedelta(hours=3), response_due_at=due,
                    first_response_at=responded, sla_best_effort=False, sla_state="met")
    db.session.add(ticket)
    db.session.commit()
    return ticket


def test_dashboard_lists_open_tickets_with_place_and_estimate(client, monkeypatch):
    acme_admin_logged_in(client, monkeypatch)
    ticket_id, _ = file_ticket(client)
    page = client.get("/client/").get_data(as_text=True)
    section = page.split('id="open-tickets"')[1].split("</section>")[0]
    assert f"/client/tickets/{ticket_id}" in section
    assert "1st in line: you are next" in section and "Technician expected on site around" in section
    assert "Report a problem" in page


def test_dashboard_shows_the_contract_guarantees(client, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    acme, admin, _, _ = two_organisations("priority", name="Priority", remote_response_minutes=60,
                                          onsite_arrival_minutes=240)
    login(client, admin.email)
    page = client.get("/client/").get_data(as_text=True)
    assert "Priority" in page
    assert "Connected remotely within 1 business hour" in page
    assert "Technician on site within 4 business hours" in page


def test_break_fix_dashboard_says_best_effort(client, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    make_user("b@bolt.example", organisation=make_organisation("Bolt"))
    login(client, "b@bolt.example")
    page = client.get("/client/").get_data(as_text=True)
    assert "break/fix" in page and "best effort" in page


def test_compliance_over_the_last_90_days_and_past_tickets(client, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    acme, admin, other, _ = two_organisations()
    day = timedelta(days=1)
    _closed_ticket(acme.id, "On time", TUESDAY_10_NY - 10 * day, TUESDAY_10_NY - 10 * day + timedelta(minutes=30),
                   TUESDAY_10_NY - 10 * day + timedelta(hours=1))
    _closed_ticket(acme.id, "Late", TUESDAY_10_NY - 20 * day, TUESDAY_10_NY - 20 * day + timedelta(hours=2),
                   TUESDAY_10_NY - 20 * day + timedelta(hours=1))
    _closed_ticket(acme.id, "Too old to count", TUESDAY_10_NY - 120 * day, None, TUESDAY_10_NY - 120 * day + timedelta(hours=1))
    _closed_ticket(other.id, "Other organisation's outage", TUESDAY_10_NY - 5 * day, None, TUESDAY_10_NY - 5 * day + timedelta(hours=1))
    login(client, admin.email)
    page = client.get("/client/").get_data(as_text=True)
    compliance = page.split('id="compliance"')[1].split("</section>")[0]
    assert "1 of 2 (50%)" in compliance
    past = page.split('id="past-tickets"')[1].split("</section>")[0]
    assert "On time" in past and "Late" in past and "Too old to count" in past
    # Listed by when each ended, newest first, and saying when.
    assert past.index("On time") < past.index("Late") < past.index("Too old to count")
    ended = (TUESDAY_10_NY - 10 * day + timedelta(hours=3)).astimezone(ZoneInfo("America/New_York"))
    assert f"Resolved {ended:%a %d %b %H:%M} · opened" in past
    assert "Other organisation" not in page


def test_other_organisations_tickets_never_appear(client, monkeypatch):
    _, _, _, other_admin = acme_admin_logged_in(client, monkeypatch)
    file_ticket(client, title="Acme secret outage")
    log_in_as(client, other_admin)
    page = client.get("/client/").get_data(as_text=True)
    assert "Acme secret outage" not in page and "No open tickets." in page
    assert "1 ticket(s) are waiting" in page, "the queue length is shown, never whose tickets"


def test_break_fix_client_with_an_open_ticket_is_offered_the_upgrade_quote(client, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    make_user("b@bolt.example", organisation=make_organisation("Bolt"))
    login(client, "b@bolt.example")
    assert 'id="upgrade-offer"' not in client.get("/client/").get_data(as_text=True)
    ticket_id, _ = file_ticket(client)
    page = client.get("/client/").get_data(as_text=True)
    assert f'href="/billing/tickets/{ticket_id}/upgrade" id="upgrade-offer"' in page


def test_an_open_ticket_is_listed_however_long_the_history_after_it(client, monkeypatch):
    """The cap on the list is for resolved and closed history only: an open ticket older than
    200 later ones must still be on the dashboard, with its place."""
    acme, _, _, _ = acme_admin_logged_in(client, monkeypatch)
    old_open = open_ticket_opened_long_ago(client, title="Server room too hot")
    add_done_tickets(acme.id, 205, TUESDAY_10_NY - timedelta(hours=1))
    page = client.get("/client/").get_data(as_text=True)
    open_section = page.split('id="open-tickets"')[1].split("</section>")[0]
    assert f"/client/tickets/{old_open}" in open_section and "Server room too hot" in open_section
    past = page.split('id="past-tickets"')[1].split("</section>")[0]
    assert past.count("<li>") == 200
    assert "Old fault 0<" in past and "Old fault 199<" in past and "Old fault 200<" not in past
    assert "The 200 most recently resolved and closed tickets are shown" in past


def test_a_short_history_says_nothing_of_a_cap(client, monkeypatch):
    acme, _, _, _ = acme_admin_logged_in(client, monkeypatch)
    add_done_tickets(acme.id, 200, TUESDAY_10_NY - timedelta(hours=1))
    past = client.get("/client/").get_data(as_text=True).split('id="past-tickets"')[1].split("</section>")[0]
    assert past.count("<li>") == 200 and "most recent" not in past
