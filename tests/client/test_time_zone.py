"""An organisation's time zone: its admin sets it on the account page, and its people's pages, live
updates and typed deadlines read it, like its emails; staff keep the firm's clock."""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal.extensions import db
from portal.models import AccountEvent, Organisation, OutboxMessage, QueueEntry, Role, Ticket
from tests.client.helpers import TUESDAY_10_NY, file_ticket, set_clock, two_organisations, with_technician
from tests.conftest import login, make_user

LA = ZoneInfo("America/Los_Angeles")
NY = ZoneInfo("America/New_York")


def _shown(at, zone) -> str:
    return f"{at.astimezone(zone):%a %d %b %H:%M}"


def _in_los_angeles(org: Organisation) -> None:
    org.timezone = "America/Los_Angeles"
    db.session.commit()


def _staff_own_words(page: str) -> str:
    """The staff page without its quotes of what the client reads and was told (the "why" list and the
    timeline's messages), which are in the client's zone; the timeline's own stamps stay."""
    page = re.sub(r'<p class="hint">The client reads: [^<]*</p>', "", page)
    return re.sub(r"(<li><strong>[^<]*</strong>) · [^<]*", r"\1", page)


def _zone_of(org_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Organisation, org_id).timezone


def test_a_los_angeles_client_reads_due_time_and_estimate_in_pacific_time_like_its_email(client, acme):
    org = acme[0]
    _in_los_angeles(org)
    ticket_id, _ = file_ticket(client)
    ticket = db.session.get(Ticket, ticket_id)
    entry = db.session.get(QueueEntry, ticket_id)
    due = f"{_shown(ticket.arrival_due_at, LA)} PST"
    eta = f"around {_shown(entry.eta_median, LA)} PST"

    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert due in page and eta in page
    assert _shown(ticket.arrival_due_at, NY) not in page  # the firm's clock appears nowhere
    display = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()["display"]
    assert due in display["sla"] and eta in display["eta"]
    assert all(item["at"].endswith(" PST") for item in display["timeline"])
    [received] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_received")).all()
    assert due in received.body

    # The ticket form names the zone its deadline is read in.
    assert "America/Los_Angeles" in client.get("/client/tickets/new").get_data(as_text=True)

    make_user("dispatch@firm.example", role=Role.DISPATCHER)
    client.post("/auth/logout")
    login(client, "dispatch@firm.example")
    staff_page = client.get(f"/staff/tickets/{ticket_id}").get_data(as_text=True)
    assert _shown(ticket.arrival_due_at, NY) in staff_page and due not in staff_page
    assert " PST" not in _staff_own_words(staff_page)
    assert "The client reads: Priority contract" in staff_page


def test_a_client_in_the_firms_zone_reads_times_without_a_label(client, acme):
    ticket_id, _ = file_ticket(client)
    ticket = db.session.get(Ticket, ticket_id)
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert f"technician on site by {_shown(ticket.arrival_due_at, NY)} —" in page and " EST" not in page


def test_a_zone_change_gives_live_json_a_new_tag(client, acme):
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}/live.json"
    first = client.get(url)
    _in_los_angeles(acme[0])
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200 and " PST" in again.get_json()["display"]["sla"]


def test_an_admin_sets_the_zone_and_the_activity_says_who(client, acme):
    org, admin = acme[0], acme[1]
    page = client.get("/client/account").get_data(as_text=True)
    assert "Time zone" in page and 'value="America/Los_Angeles"' in page
    # The common US zones come first.
    assert page.index('value="America/Los_Angeles"') < page.index('value="Africa/Abidjan"')
    response = client.post("/client/account/timezone", data={"timezone": "America/Los_Angeles"})
    assert response.status_code == 303
    assert _zone_of(org.id) == "America/Los_Angeles"
    page = client.get("/client/account").get_data(as_text=True)
    assert "Times are now shown and read in America/Los_Angeles." in page
    [event] = db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "timezone_changed")).all()
    assert event.organisation_id == org.id and event.actor_id == admin.id
    assert "from America/New_York to America/Los_Angeles" in event.message
    assert "America/Los_Angeles" in client.get("/client/users").get_data(as_text=True)
    # The same zone again writes nothing.
    client.post("/client/account/timezone", data={"timezone": "America/Los_Angeles"})
    assert len(db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "timezone_changed")).all()) == 1


def test_an_unknown_zone_is_refused_and_nothing_changes(client, acme):
    org = acme[0]
    for bad in ("Mars/Olympus_Mons", "", "america/los_angeles", "../../etc/passwd"):
        response = client.post("/client/account/timezone", data={"timezone": bad})
        assert response.status_code == 400
        assert "Choose a time zone from the list" in response.get_data(as_text=True)
        assert _zone_of(org.id) == "America/New_York"
    assert db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "timezone_changed")).all() == []


def test_a_member_cannot_change_the_zone_but_reads_it_on_the_ticket_form(client, acme):
    org = acme[0]
    make_user("m@acme.example", role=Role.CLIENT_MEMBER, organisation=org)
    client.post("/auth/logout")
    login(client, "m@acme.example")
    assert client.get("/client/account").status_code == 403
    assert client.post("/client/account/timezone", data={"timezone": "America/Los_Angeles"}).status_code == 403
    assert _zone_of(org.id) == "America/New_York"
    assert "read as America/New_York time" in client.get("/client/tickets/new").get_data(as_text=True)


def test_another_organisations_zone_is_not_read(client, acme):
    """Other Co in Los Angeles does not move Acme's pages."""
    other = acme[2]
    _in_los_angeles(other)
    ticket_id, _ = file_ticket(client)
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert " PST" not in page


def test_the_upgrade_panel_of_a_los_angeles_break_fix_client_gives_pacific_times(client, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    org, admin, _, _ = two_organisations(plan_slug=None)
    with_technician()
    _in_los_angeles(org)
    login(client, admin.email)
    ticket_id, _ = file_ticket(client)
    panel = client.get(f"/billing/tickets/{ticket_id}/upgrade").get_data(as_text=True)
    assert "technician expected around <strong>" in panel
    current = panel.split("technician expected around <strong>")[1].split("</strong>")[0]
    assert current.endswith(" PST")
    assert "Technician expected" in panel and "around " in panel.split('data-label="Technician expected">')[1][:60]
    assert panel.split('data-label="Technician expected">around ')[1].split("<")[0].split(",")[0].endswith(" PST")


def test_why_this_place_names_the_clients_deadlines_in_its_zone_once_the_admin_sets_it(client, acme):
    """The queue writes its reasons once and pages read them saved: a zone change re-runs it, so the
    client's "why" list stops speaking in the firm's clock the moment its pages do."""
    ticket_id, _ = file_ticket(client, client_deadline="2026-11-24T16:00")
    due = db.session.get(Ticket, ticket_id).arrival_due_at

    def reasons() -> list[str]:
        return client.get(f"/client/tickets/{ticket_id}/live.json").get_json()["display"]["reasons"]

    assert "deadline today 16:00" in reasons()
    assert client.post("/client/account/timezone", data={"timezone": "America/Los_Angeles"}).status_code == 303
    words = reasons()
    # The deadline was typed in New York time (16:00 EST); the client now reads it as 13:00 PST.
    assert "deadline today 13:00 PST" in words
    assert f"contract target due today {due.astimezone(LA):%H:%M} PST" in words
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "deadline today 13:00 PST" in page

    make_user("dispatch@firm.example", role=Role.DISPATCHER)
    client.post("/auth/logout")
    login(client, "dispatch@firm.example")
    staff_page = client.get(f"/staff/tickets/{ticket_id}").get_data(as_text=True)
    assert "(today 16:00)" in staff_page and " PST" not in _staff_own_words(staff_page)
    assert "deadline today 13:00 PST" in staff_page  # quoted as the client reads it
