"""Scale-out: two gunicorn nodes on two loopback ports share one PostgreSQL and one Redis.

Many clients open tickets through the API (Bearer tokens, half of them retried on the other
node with the same Idempotency-Key) while technicians and the dispatcher tap statuses in the
technician view, all through both nodes at once. Afterwards: no ticket lost or duplicated,
every waiting ticket has exactly one place, the places form one queue 1..N, and both nodes
answer the same place and estimate for every ticket. Sessions made on one node work on the
other (same SECRET_KEY, signed cookies) and rate limits are counted in the shared Redis.

PostgreSQL and Redis only (TEST_DATABASE_URL, TEST_REDIS_URL); the database is a sibling of
TEST_DATABASE_URL's (name + "_scaleout") so the rest of the suite's database is untouched.
"""
from __future__ import annotations

import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

import pytest
import requests
from sqlalchemy import create_engine, select, text

from tests.serving import ROOT, build_database, gunicorn, portal_env, sibling_database

pytestmark = pytest.mark.postgres

DEMO_PASSWORD = "demo-pass-2026"
CLIENT_THREADS_PER_ORG = 2
TICKETS_PER_THREAD = 6
STAFF = ("tech1@demo.test", "tech2@demo.test", "tech3@demo.test", "dispatcher@demo.test")
TAPS_PER_STAFF = 8
DEADLINE_SECONDS = 240  # the whole concurrent phase stops by itself after this
LOGS = ROOT / "test-artifacts" / "scaleout"


def _urls() -> tuple[str, str]:
    db_url = os.environ.get("TEST_DATABASE_URL", "")
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    if not db_url.startswith("postgresql"):
        pytest.skip("the scale-out test needs PostgreSQL (TEST_DATABASE_URL=postgresql+psycopg://...)")
    if not redis_url:
        pytest.skip("the scale-out test needs Redis (TEST_REDIS_URL=redis://127.0.0.1:6379/<n>)")
    return sibling_database(db_url, "scaleout"), redis_url


def _issue_tokens(database_url: str) -> dict[int, str]:
    """One API token per demo organisation, made by its admin through the token service."""
    from portal import create_app
    from portal.extensions import db
    from portal.models import Organisation, Role, User
    from portal.services import api_tokens

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SQLALCHEMY_ENGINE_OPTIONS": {},
                      "TESTING": True, "SECRET_KEY": "scaleout"})
    tokens: dict[int, str] = {}
    with app.app_context():
        for org in db.session.scalars(select(Organisation).order_by(Organisation.id)).all():
            admin = db.session.scalars(select(User).where(User.organisation_id == org.id,
                                                          User.role == Role.CLIENT_ADMIN)).first()
            tokens[org.id] = api_tokens.create(org.id, "scale-out test", admin, datetime.now(timezone.utc)).secret
        db.session.remove()
        db.engine.dispose()
    return tokens


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    opened: dict[str, int] = field(default_factory=dict)  # title -> ticket id
    retries_same_id: int = 0
    taps_ok: int = 0
    taps_stale: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def _open_tickets(nodes: list[str], org_id: int, token: str, thread: int, tally: Tally, stop_at: float) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for i in range(TICKETS_PER_THREAD):
        if time.monotonic() > stop_at:
            return
        node, other = nodes[(thread + i) % 2], nodes[(thread + i + 1) % 2]
        title = f"Scale-out {org_id}-{thread}-{i}: workstation will not start"
        body = {"title": title, "description": "Opened by the scale-out test.", "category": "hardware",
                "impact": ("person", "department", "company")[i % 3], "revenue_at_risk_per_hour": 100 * i,
                "onsite_needed": i % 2 == 0, "safety_critical": False}
        key = uuid.uuid4().hex
        response = session.post(f"{node}/api/v1/tickets", json=body, headers={"Idempotency-Key": key}, timeout=30)
        if response.status_code != 201:
            tally.error(f"open on {node}: {response.status_code} {response.text[:200]}")
            continue
        ticket_id = response.json()["id"]
        with tally.lock:
            tally.opened[title] = ticket_id
        if i % 2 == 0:  # the client's tool retries on the other node, as after a lost answer
            again = session.post(f"{other}/api/v1/tickets", json=body, headers={"Idempotency-Key": key}, timeout=30)
            if again.status_code != 200 or again.json()["id"] != ticket_id:
                tally.error(f"retry on {other}: {again.status_code} {again.text[:200]}")
            else:
                with tally.lock:
                    tally.retries_same_id += 1
        seen = session.get(f"{other}/api/v1/tickets/{ticket_id}", timeout=30)
        if seen.status_code != 200:
            tally.error(f"read on {other}: {seen.status_code}")


JOB = re.compile(r'id="job-(\d+)"')
STALE = "changed by someone else while you were looking"
NO_LONGER_MINE = "is no longer on your list"


def _csrf(html: str) -> str:
    match = (re.search(r'name="[\w-]*csrf_token"[^>]*value="([^"]+)"', html)
             or re.search(r'value="([^"]+)"[^>]*name="[\w-]*csrf_token"', html))
    assert match, "no CSRF token"
    return match.group(1)


def _tap_jobs(nodes: list[str], email: str, index: int, tally: Tally, stop_at: float) -> None:
    """Log in on one node, then work through the job list on both (the session cookie serves either)."""
    session = requests.Session()
    login_page = session.get(f"{nodes[index % 2]}/auth/login", timeout=30)
    response = session.post(f"{nodes[index % 2]}/auth/login", timeout=30, allow_redirects=False,
                            data={"email": email, "password": DEMO_PASSWORD, "csrf_token": _csrf(login_page.text)})
    if response.status_code != 302:
        tally.error(f"log-in of {email}: {response.status_code}")
        return
    for i in range(TAPS_PER_STAFF):
        if time.monotonic() > stop_at:
            return
        node = nodes[(index + i + 1) % 2]
        page = session.get(f"{node}/staff/my-jobs", timeout=30)
        if page.status_code != 200:
            tally.error(f"my-jobs of {email} on {node}: {page.status_code}")
            return
        jobs = JOB.findall(page.text)
        if not jobs:
            time.sleep(0.5)
            continue
        ticket_id = jobs[0]
        block = page.text[page.text.index(f'id="job-{ticket_id}"'):]
        version = re.search(rf'name="t{ticket_id}-version"[^>]*value="(\d+)"', block) or re.search(
            rf'value="(\d+)"[^>]*name="t{ticket_id}-version"', block)
        status = re.search(r"<dt>Status</dt><dd>([^<]+)</dd>", block)
        work = re.search(r"<dt>Work</dt><dd>([^<,]+)", block)
        if not version or not status or not work:
            tally.error(f"job {ticket_id} without a version, status or kind of work")
            continue
        label, onsite = status.group(1).strip().lower(), work.group(1).strip() == "On site"
        if "queue" in label or "assigned" in label:
            target = "en_route" if onsite else "in_progress"
        elif "en route" in label:
            target = "on_site"
        else:
            target = "resolved"
        response = session.post(f"{node}/staff/my-jobs/{ticket_id}/status", timeout=30, allow_redirects=False, data={
            f"t{ticket_id}-csrf_token": _csrf(page.text),
            f"t{ticket_id}-version": version.group(1), f"t{ticket_id}-status": target,
            f"t{ticket_id}-note": "Fixed during the scale-out test.",
        })
        if response.status_code == 409:
            # Refused, with the list as it is now: the job went to someone else meanwhile (the queue
            # moved, or another node's tap reassigned it), or another node changed it first.
            with tally.lock:
                if NO_LONGER_MINE in response.text or STALE in response.text:
                    tally.taps_stale += 1
                else:
                    tally.errors.append(f"tap {target} on {ticket_id} via {node}: 409 without saying why")
            continue
        if response.status_code not in (302, 303):
            tally.error(f"tap {target} on {ticket_id} via {node}: {response.status_code}")
            continue
        follow = session.get(node + response.headers["Location"], timeout=30)
        with tally.lock:
            if "page is updated" in follow.text or "your tap went through" in follow.text:
                tally.taps_ok += 1
            else:
                tally.errors.append(f"tap {target} on {ticket_id} via {node}: neither done nor refused as stale")


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[list[str], dict[int, str], str, str]]:
    """(node URLs, API token per organisation, database URL, Redis URL): two gunicorn nodes, one database, one Redis."""
    database_url, redis_url = _urls()
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # this test's Redis database only: fresh rate-limit counters
    env = portal_env(database_url, REDIS_URL=redis_url, SECRET_KEY="one-key-for-every-node")
    build_database(env)
    tokens = _issue_tokens(database_url)
    with gunicorn(env, LOGS / "node-a.log", workers=2, threads=4) as a, \
            gunicorn(env, LOGS / "node-b.log", workers=2, threads=4) as b:
        yield [a.base_url, b.base_url], tokens, database_url, redis_url


def test_two_nodes_share_one_queue(two_nodes) -> None:
    nodes, tokens, database_url, _ = two_nodes
    tally = Tally()
    stop_at = time.monotonic() + DEADLINE_SECONDS
    with ThreadPoolExecutor(max_workers=len(tokens) * CLIENT_THREADS_PER_ORG + len(STAFF)) as pool:
        futures = [pool.submit(_open_tickets, nodes, org_id, token, t, tally, stop_at)
                   for org_id, token in tokens.items() for t in range(CLIENT_THREADS_PER_ORG)]
        futures += [pool.submit(_tap_jobs, nodes, email, i, tally, stop_at) for i, email in enumerate(STAFF)]
        for future in futures:
            future.result()
    print(f"scale-out: {len(tally.opened)} tickets opened, {tally.retries_same_id} retries answered with the same "
          f"ticket, {tally.taps_ok} taps done, {tally.taps_stale} refused as stale")
    assert not tally.errors, "\n".join(tally.errors[:20])
    expected = len(tokens) * CLIENT_THREADS_PER_ORG * TICKETS_PER_THREAD
    assert len(tally.opened) == expected
    assert tally.retries_same_id == expected // 2
    assert tally.taps_ok >= len(STAFF), (tally.taps_ok, tally.taps_stale)

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, title FROM ticket WHERE title LIKE 'Scale-out %'")).all()
        assert len(rows) == expected, "a ticket was lost or duplicated"
        assert {title: ticket_id for ticket_id, title in rows} == tally.opened
        entries = conn.execute(text(
            "SELECT t.id, t.status, q.position FROM ticket t LEFT JOIN queue_entry q ON q.ticket_id = t.id"
            " WHERE t.status NOT IN ('resolved', 'closed')")).all()
        duplicates = conn.execute(text(
            "SELECT ticket_id FROM queue_entry GROUP BY ticket_id HAVING count(*) > 1")).all()
    engine.dispose()
    assert not duplicates
    places = sorted(position for _, _, position in entries if position is not None)
    assert places == list(range(1, len(places) + 1)), f"places are not one queue 1..N: {places}"
    waiting = [ticket_id for ticket_id, status, _ in entries if status in ("new", "assigned")]
    unplaced = [ticket_id for ticket_id, status, position in entries
                if position is None and status in ("new", "assigned")]
    assert not unplaced, f"waiting tickets without a place: {unplaced}"
    assert waiting, "nothing left waiting: the check of places would be empty"

    for org_id, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"}
        seen = [requests.get(f"{node}/api/v1/tickets", headers=headers, timeout=30).json() for node in nodes]
        assert seen[0]["queue_length"] == seen[1]["queue_length"] == len(places)
        first = {t["id"]: (t["position"], t["eta"], t["status"]) for t in seen[0]["tickets"]}
        second = {t["id"]: (t["position"], t["eta"], t["status"]) for t in seen[1]["tickets"]}
        assert first == second, f"the nodes disagree for organisation {org_id}"


def test_rate_limits_are_counted_across_both_nodes(two_nodes) -> None:
    """Log-in attempts for one account alternate between the nodes: the shared Redis counts them
    together, so the sixth within a minute is refused (5 per minute per account) on either node."""
    nodes, _, _, redis_url = two_nodes
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    session = requests.Session()
    statuses = []
    for attempt in range(6):
        node = nodes[attempt % 2]
        page = session.get(f"{node}/auth/login", timeout=30)
        response = session.post(f"{node}/auth/login", timeout=30, allow_redirects=False, data={
            "email": "owner@demo.test", "password": f"wrong-password-{attempt}", "csrf_token": _csrf(page.text)})
        statuses.append(response.status_code)
    assert 429 not in statuses[:5], statuses
    assert statuses[5] == 429, statuses
