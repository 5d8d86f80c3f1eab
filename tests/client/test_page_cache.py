"""The status page and live.json are served again from the worker's memory while nothing has been
written, and never after a write, in this worker or another (portal/page_cache.py). Needs a real
Redis (TEST_REDIS_URL): the data version that makes the stored pages safe lives there."""
from __future__ import annotations

import os
import time

import pytest
import redis
from sqlalchemy import select, update

from portal import page_cache
from portal.extensions import db
from portal.models import Technician, User
from tests.client.helpers import TUESDAY_10_NY, acme_admin_logged_in, file_ticket, get_counting_statements, log_in_as

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL not set (the data version lives in Redis)")


@pytest.fixture
def app(make_app):
    """Overrides the suite's app, so `client` and `acme` (tests/client/conftest.py) use this one."""
    app = make_app(REDIS_URL=REDIS_URL)
    with app.app_context():
        yield app


def _rename_technician(name: str) -> None:
    user = db.session.scalar(select(User).join(Technician, Technician.user_id == User.id))
    user.full_name = name
    db.session.commit()


def test_a_reload_is_served_without_sql_and_reads_the_same(client, acme):
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}"
    client.get(url)  # shows the one-off "ticket received" notice, so it is not kept
    first, first_statements = get_counting_statements(client, url)
    again, again_statements = get_counting_statements(client, url)
    assert first.status_code == again.status_code == 200
    assert first_statements > 0 and again_statements == 0
    assert again.get_data() == first.get_data()
    assert again.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]


def test_a_write_in_another_worker_shows_on_the_next_load(client, acme, make_app):
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}"
    client.get(url)
    assert "most likely Tom)" in client.get(url).get_data(as_text=True)
    other_worker = make_app(REDIS_URL=REDIS_URL)
    with other_worker.app_context():
        _rename_technician("Thomas Tech")
    page, statements = get_counting_statements(client, url)
    assert statements > 0 and "most likely Thomas)" in page.get_data(as_text=True)


def test_live_json_answers_304_from_the_stored_answer_and_200_after_a_change(client, acme):
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}/live.json"
    full, _ = get_counting_statements(client, url)
    again, statements = get_counting_statements(client, url, full.headers["ETag"])
    assert again.status_code == 304 and statements == 0 and again.get_data() == b""
    _rename_technician("Thomas Tech")
    changed, statements = get_counting_statements(client, url, full.headers["ETag"])
    assert changed.status_code == 200 and statements > 0 and "Thomas" in changed.get_data(as_text=True)


def test_a_deactivated_user_is_not_served_the_stored_page(client, acme):
    _, acme_admin, _, _ = acme
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}"
    assert client.get(url).status_code == 200
    db.session.get(User, acme_admin.id).active = False
    db.session.commit()
    assert client.get(url).status_code == 302


def test_another_session_never_gets_the_stored_page(client, acme, app):
    _, _, _, other_admin = acme
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}"
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    with app.app_context():  # a fresh request context: no user left in `g` by the test's requests
        assert app.test_client().get(url).status_code == 302
    log_in_as(client, other_admin)
    assert client.get(url).status_code == 404


def test_the_opening_notice_is_shown_once(client, acme, monkeypatch):
    monkeypatch.setattr("portal.clock.now", lambda: TUESDAY_10_NY.replace(hour=2))  # 21:00 in New York
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}"
    assert 'id="after-hours"' in client.get(url).get_data(as_text=True)
    assert 'id="after-hours"' not in client.get(url).get_data(as_text=True)
    assert 'id="after-hours"' not in client.get(url).get_data(as_text=True)


def test_bulk_updates_move_the_version_and_reads_do_not(app, acme):
    cache = app.extensions["page_cache"]
    before = cache.version()
    db.session.scalars(select(User)).all()
    db.session.commit()
    assert cache.version() == before
    db.session.execute(update(User).where(User.id == acme[1].id).values(full_name="Alicia Acme"))
    db.session.commit()
    assert cache.version() != before


def test_with_redis_unreachable_every_load_renders(make_app, monkeypatch):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    with app.app_context():
        client = app.test_client()
        acme_admin_logged_in(client, monkeypatch)
        ticket_id, _ = file_ticket(client)
        url = f"/client/tickets/{ticket_id}"
        for _ in range(2):
            page, statements = get_counting_statements(client, url)
            assert page.status_code == 200 and statements > 0


def test_a_bump_lost_to_an_outage_is_paid_when_redis_answers_again(app, acme, monkeypatch):
    cache = app.extensions["page_cache"]
    before = int(cache.version())
    reachable = cache.redis
    cache.redis = redis.Redis.from_url("redis://127.0.0.1:1/0")
    db.session.get(User, acme[1].id).full_name = "Alicia Acme"
    db.session.commit()  # the bump fails: owed, and pages stay off for a moment
    cache.redis = reachable
    assert cache.version() is None
    later = time.monotonic() + page_cache.QUIET_SECONDS + 1
    monkeypatch.setattr(page_cache.time, "monotonic", lambda: later)
    assert int(cache.version()) > before


def test_a_time_zone_change_is_not_answered_with_a_page_kept_in_the_old_zone(client, acme):
    """The zone change is a write: pages kept in New York time are not served after it."""
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}"
    client.get(url)
    kept = client.get(url).get_data(as_text=True)
    assert " PST" not in kept
    assert client.post("/client/account/timezone", data={"timezone": "America/Los_Angeles"}).status_code == 303
    assert " PST" in client.get(url).get_data(as_text=True)
    assert " PST" in client.get(f"{url}/live.json").get_json()["display"]["sla"]
