"""Found in the demo's email log: the after-hours page to the on-call technician said "opened at
2026-11-25 12:59 UTC … response due 2026-11-25 13:29 UTC" while every client email and page uses the
firm's time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage, Role
from portal.services import alerts
from tests.client.helpers import set_clock
from tests.conftest import make_organisation, make_plan, make_user
from tests.services.conftest import open_for
from tests.staff.test_actions import open_ticket

TUESDAY_23_NY = datetime(2026, 11, 25, 4, 0, tzinfo=timezone.utc)  # Tue 24 Nov 23:00 in New York


def test_on_call_page_gives_times_in_firm_time(app, monkeypatch):
    set_clock(monkeypatch, TUESDAY_23_NY)
    make_user("d@firm.example", role=Role.DISPATCHER)
    premium = make_plan("premium", name="Premium 24/7", coverage="24x7", after_hours_emergencies=True,
                        remote_response_minutes=30, onsite_arrival_minutes=120)
    cedar = make_organisation("Cedar", premium)
    open_for(cedar, None, TUESDAY_23_NY, title="Server room flooded", onsite_needed=True)
    pages = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == alerts.PAGED_KIND)).all()
    assert pages, "no page written"
    body = pages[0].body
    assert "opened at Tue 24 Nov 23:00 EST" in body
    assert "response due Tue 24 Nov 23:30 EST" in body and "arrival due Wed 25 Nov 01:00 EST" in body
    assert "UTC" not in body


def test_sla_alert_gives_times_in_firm_time(app, monkeypatch):
    start = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # Tue 10:00 in New York
    set_clock(monkeypatch, start)
    make_user("d@firm.example", role=Role.DISPATCHER)
    open_ticket(make_organisation("Acme", make_plan("priority")), "Server down", impact="company")
    set_clock(monkeypatch, start + timedelta(hours=2))
    assert app.test_cli_runner().invoke(args=["alerts", "check"]).exit_code == 0
    alert = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind.like("staff_alert%"))).first()
    assert alert is not None and "UTC" not in alert.body and "Tue 24 Nov 11:00 EST" in alert.body
