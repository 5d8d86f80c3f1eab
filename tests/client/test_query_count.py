"""The ticket status page and its live.json cost the same number of SQL statements whatever the
queue length: they read the stored queue (one row per ticket), never re-rank or loop per ticket."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import event

from portal.extensions import db
from portal.models import Ticket
from portal.services import queue, sla
from tests.client.helpers import add_done_tickets, set_clock, two_organisations, with_technician
from tests.conftest import login


def _add_tickets(organisation_id: int, count: int, now) -> list[int]:
    plan = sla.current_plan(organisation_id)
    ids = []
    for i in range(count):
        ticket = Ticket(organisation_id=organisation_id, title=f"Queue filler {i}", description="",
                        category="hardware", impact=("person", "department", "company")[i % 3],
                        revenue_at_risk_per_hour=Decimal(50 * i), onsite_needed=i % 2 == 0,
                        safety_critical=False, opened_at=now - timedelta(minutes=i), updated_at=now)
        db.session.add(ticket)
        db.session.flush()
        sla.apply_plan(ticket, plan, ticket.opened_at, now)
        ids.append(ticket.id)
    db.session.commit()
    return ids


def _statements(client, url: str) -> int:
    executed: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        executed.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        with current_app.app_context():  # a fresh session and g, as in a real request: nothing cached
            response = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, url
    return len(executed)


def _counts(client, organisation_id: int, other_id: int, extra: int, now) -> tuple[int, int]:
    _add_tickets(other_id, extra, now)   # other organisations' tickets lengthen the queue
    mine = _add_tickets(organisation_id, 3, now)[1]
    queue.recompute(now)
    page = _statements(client, f"/client/tickets/{mine}")
    live = _statements(client, f"/client/tickets/{mine}/live.json")
    return page, live


def test_status_page_queries_do_not_grow_with_the_queue(app, client, monkeypatch, now):
    set_clock(monkeypatch, now)
    acme, admin, other, _ = two_organisations()
    with_technician()
    login(client, admin.email)
    short_page, short_live = _counts(client, acme.id, other.id, 2, now)
    long_page, long_live = _counts(client, acme.id, other.id, 60, now)
    print(f"statements: status page {short_page}, live.json {short_live}")
    assert long_page == short_page, f"status page: {short_page} statements with a short queue, {long_page} with a long one"
    assert long_live == short_live, f"live.json: {short_live} statements with a short queue, {long_live} with a long one"
    assert short_page <= 25 and short_live <= 15, (short_page, short_live)


def test_dashboard_and_api_list_queries_do_not_grow_with_the_tickets(app, client, monkeypatch, now):
    """Open tickets are all listed and the resolved history is capped, in the same statements
    whatever the number of either."""
    set_clock(monkeypatch, now)
    acme, admin, other, _ = two_organisations()
    with_technician()
    login(client, admin.email)
    _add_tickets(acme.id, 2, now)
    add_done_tickets(acme.id, 3, now - timedelta(days=1))
    queue.recompute(now)
    short = _statements(client, "/client/"), _statements(client, "/api/v1/tickets")
    _add_tickets(acme.id, 40, now)
    add_done_tickets(acme.id, 250, now - timedelta(days=30))
    queue.recompute(now)
    long = _statements(client, "/client/"), _statements(client, "/api/v1/tickets")
    print(f"statements: dashboard {short[0]}, API list {short[1]}")
    assert long == short, f"dashboard and API list: {short} statements with a few tickets, {long} with many"
