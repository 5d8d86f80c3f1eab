"""Builders for the client ticket tests: organisations with plans, a technician, the emergency form."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Optional

from flask import current_app
from sqlalchemy import event, select

from portal.extensions import db
from portal.models import Organisation, Ticket, TicketStatus, User
from tests.conftest import login, make_organisation, make_plan, make_user
from tests.staff.helpers import make_technician

TUESDAY_10_NY = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)

GOOD_FORM = {
    "title": "Label printer on line 2 is down",
    "description": "Shipping labels cannot print; trucks are waiting.",
    "category": "printer",
    "impact": "department",
    "money_lost": "yes",
    "revenue_at_risk_per_hour": "17000",
    "client_deadline": "",
    "onsite_needed": "y",
}


def set_clock(monkeypatch, at: datetime) -> None:
    """Every view reads the time through portal.clock.now: pinning it pins the whole request."""
    monkeypatch.setattr("portal.clock.now", lambda: at)


def two_organisations(plan_slug: Optional[str] = "priority", **plan_fields) -> tuple[Organisation, User, Organisation, User]:
    plan = make_plan(plan_slug, **plan_fields) if plan_slug else None
    acme = make_organisation("Acme", plan)
    other = make_organisation("Other Co", make_plan("essentials") if plan_slug != "essentials" else plan)
    acme_admin = make_user("a@acme.example", organisation=acme, name="Alice Acme")
    other_admin = make_user("o@other.example", organisation=other, name="Oscar Other")
    return acme, acme_admin, other, other_admin


def with_technician() -> None:
    make_technician("tech@firm.example", name="Tom Tech", skills=("network", "printer", "desktop"))


def acme_admin_logged_in(client, monkeypatch) -> tuple[Organisation, User, Organisation, User]:
    """Tuesday 10:00 in New York: Acme's admin logged in, a second organisation and a technician on shift."""
    set_clock(monkeypatch, TUESDAY_10_NY)
    orgs = two_organisations()
    with_technician()
    login(client, orgs[1].email)
    return orgs


def file_ticket(client, **changes) -> tuple[int, object]:
    """Post the emergency form with a fresh idempotency key; returns (ticket id, response)."""
    form_page = client.get("/client/tickets/new").get_data(as_text=True)
    key = re.search(r'id="idempotency_key" name="idempotency_key" type="hidden" value="([^"]+)"', form_page)
    assert key, "the form carries an idempotency key"
    data = dict(GOOD_FORM, idempotency_key=key.group(1))
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    response = client.post("/client/tickets/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    ticket_id = int(response.headers["Location"].rstrip("/").split("/")[-1])
    return ticket_id, response


def tickets_in_db() -> list[Ticket]:
    db.session.expire_all()
    return list(db.session.scalars(select(Ticket).order_by(Ticket.id)))


def log_in_as(client, user: User) -> None:
    client.post("/auth/logout")
    login(client, user.email)


def get_counting_statements(client, url: str, etag: str = "") -> tuple[object, int]:
    """GET `url` in a fresh app context (a fresh session, as in a real request): the response and its SQL statement count."""
    executed: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        executed.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with current_app.app_context():
            response = client.get(url, headers={"If-None-Match": etag} if etag else {})
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return response, len(executed)


def add_done_tickets(organisation_id: int, count: int, newest: datetime) -> None:
    """`count` resolved tickets opened an hour apart, the newest at `newest`: a long history."""
    db.session.add_all(
        Ticket(organisation_id=organisation_id, title=f"Old fault {i}", status=TicketStatus.RESOLVED,
               opened_at=newest - timedelta(hours=i), updated_at=newest - timedelta(hours=i),
               resolved_at=newest - timedelta(hours=i) + timedelta(minutes=30), sla_best_effort=False)
        for i in range(count)
    )
    db.session.commit()


def open_ticket_opened_long_ago(client, days: int = 30, **changes) -> int:
    """A ticket filed through the form, then dated `days` back: older than any history added after it."""
    ticket_id, _ = file_ticket(client, **changes)
    ticket = db.session.get(Ticket, ticket_id)
    ticket.opened_at = ticket.opened_at - timedelta(days=days)
    db.session.commit()
    return ticket_id
