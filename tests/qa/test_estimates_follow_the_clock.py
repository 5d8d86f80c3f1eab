"""Found walking the demo: with nothing happening, a waiting ticket kept "expected to start around 08:05"
long after 08:05, because only a change re-ran the queue. The alerts worker (run by scripts/demo and in
production, every minute) now re-runs it, so a stored estimate never lies in the past."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from portal.extensions import db
from portal.services import queue
from tests.client.helpers import set_clock
from tests.conftest import make_organisation, make_plan, make_user
from tests.services.conftest import add_technician, open_for

TUESDAY_10_NY = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def test_alerts_worker_moves_estimates_that_time_has_overtaken(app, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    add_technician("tom@firm.test", ["network", "printer", "desktop", "server", "email", "security", "software", "hardware"])
    org = make_organisation("Acme", make_plan("priority"))
    admin = make_user("a@acme.test", organisation=org)
    opened = open_for(org, admin, TUESDAY_10_NY, title="VPN down")
    entry = queue.entry_for(opened.ticket.id)
    assert entry is not None, 'no queue entry'
    assert entry.eta_median is not None and entry.eta_median <= TUESDAY_10_NY + timedelta(minutes=30)

    later = TUESDAY_10_NY + timedelta(hours=1)
    set_clock(monkeypatch, later)
    result = app.test_cli_runner().invoke(args=["alerts", "check"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    entry = queue.entry_for(opened.ticket.id)
    assert entry is not None, 'no queue entry'
    assert entry.eta_median >= later
