"""Concurrency on PostgreSQL: many workers opening tickets and changing statuses at once,
through the service layer (threads) and through HTTP (a threaded werkzeug server).

Afterwards: every ticket saved once (double submits with one idempotency key open one
ticket), each ticket triaged and announced once, the saved queue consistent with the tickets,
no deadlock or other database error left unhandled; and two dispatchers overriding the same
ticket at once end with one logged outcome; address changes confirmed at once move each account
once and give an address to one account. SQLite serialises writers, so this runs on
PostgreSQL only (TEST_DATABASE_URL).
"""
from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.serving import make_server

from portal import clock
from portal.extensions import db
from portal.models import OutboxMessage, QueueEntry, QueueState, Ticket, TicketEvent, TicketStatus, User
from portal.services import accounts, queue, staff, tickets
from tests.security.figures import record
from tests.security.world import World, build_world

THREADS = 8
PER_THREAD = 4


@pytest.fixture
def pg_app(make_app, tmp_path) -> Flask:
    app = make_app(UPLOAD_FOLDER=str(tmp_path / "attachments"), SQLALCHEMY_ENGINE_OPTIONS={
        "pool_pre_ping": True, "pool_size": THREADS + 2, "max_overflow": THREADS})
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("concurrency is checked on PostgreSQL (set TEST_DATABASE_URL)")
    return app


def _run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Start `count` threads at the same instant; return what they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as error:  # noqa: BLE001 - collected and reported by the test
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker never finished (deadlock?)"
    return errors


def _input(title: str) -> tickets.TicketInput:
    return tickets.TicketInput(title=title, description="", category="network", impact="company",
                               revenue_at_risk_per_hour=Decimal("500"), client_deadline=None,
                               onsite_needed=False, safety_critical=False)


def assert_queue_consistent() -> dict[str, int]:
    """The saved queue describes exactly the open tickets; places run 1..n; each ticket announced once."""
    db.session.expire_all()
    open_ids = set(db.session.scalars(select(Ticket.id).where(Ticket.status.in_(TicketStatus.OPEN))))
    waiting_ids = set(db.session.scalars(select(Ticket.id).where(Ticket.status.in_(TicketStatus.WAITING))))
    entries = db.session.scalars(select(QueueEntry)).all()
    assert {e.ticket_id for e in entries} == open_ids, "queue entries differ from the open tickets"
    placed = sorted(e.position for e in entries if e.position is not None)
    assert placed == list(range(1, len(placed) + 1)), f"places are not 1..n: {placed}"
    assert {e.ticket_id for e in entries if e.position is not None} == waiting_ids
    state = db.session.scalars(select(QueueState)).one()
    assert state.waiting_count == len(placed)
    assert len({e.generation for e in entries}) <= 1, "entries from different recomputations mixed"
    triaged = Counter(db.session.scalars(select(TicketEvent.ticket_id).where(TicketEvent.kind == "triaged")))
    assert all(n == 1 for n in triaged.values()), f"tickets triaged twice: {[t for t, n in triaged.items() if n > 1]}"
    received = Counter(db.session.scalars(select(OutboxMessage.subject).where(OutboxMessage.kind == "ticket_received")))
    assert all(n == 1 for n in received.values()), "a 'ticket received' email was written twice"
    return {"open": len(open_ids), "waiting": len(placed)}


def test_many_workers_open_tickets_and_change_statuses_through_the_services(pg_app: Flask):
    with pg_app.app_context():
        world = build_world()
        queue.recompute(clock.now())
    orgs = [world.org_a, world.org_b]
    requesters = {world.org_a: world.user_ids["client_member"], world.org_b: world.user_ids["other_admin"]}
    opened: list[tuple[int, int, bool]] = []
    refused: list[str] = []

    def work(i: int) -> None:
        with pg_app.app_context():
            technician = db.session.get(User, world.user_ids["technician"])
            for n in range(PER_THREAD):
                org = orgs[(i // 2 + n) % 2]
                # threads i and i+1 double-submit the same form (same key): one ticket only
                key = f"form-{(i // 2)}-{n}"
                result = tickets.open_ticket(org, requesters[org], _input(f"Outage {i // 2}-{n}"), clock.now(), key)
                opened.append((org, result.ticket.id, result.created))
                # and a technician moves some ticket on at the same time as the others
                target = opened[(i * 7 + n) % len(opened)][1]
                for status in (TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED):
                    try:
                        tickets.set_status(target, status, technician, clock.now())
                    except tickets.TicketError as error:  # already moved on by another worker: a clear refusal
                        refused.append(error.message)
                        db.session.rollback()
                    except StaleDataError:  # lost the version race three times: the staff forms answer 409
                        refused.append("changed meanwhile")
                        db.session.rollback()
            db.session.remove()

    errors = _run_threads(THREADS, work)
    assert not errors, f"unhandled in workers: {[repr(e) for e in errors[:3]]}"
    with pg_app.app_context():
        titles = Counter(db.session.scalars(select(Ticket.title).where(Ticket.title.like("Outage %"))))
        assert len(titles) == THREADS // 2 * PER_THREAD and set(titles.values()) == {1}, "a ticket saved twice"
        assert sum(1 for _, _, created in opened if created) == THREADS // 2 * PER_THREAD
        figures = assert_queue_consistent()
    record("concurrency: service calls in parallel", len(opened) * 3)
    record("concurrency: tickets opened at once (double submits included)", len(opened))
    assert figures["open"] >= 0


# --- through HTTP ------------------------------------------------------------------------------------------------------


@pytest.fixture
def served(pg_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, pg_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _cookie_for(app: Flask, world: World, role: str) -> str:
    """The session cookie the portal would set at log-in (signed with the app's key)."""
    serializer = app.session_interface.get_signing_serializer(app)
    return "session=" + serializer.dumps({"_user_id": world.session_ids[role], "_fresh": True})


def _post(base: str, path: str, cookie: str, data: dict) -> int:
    request = urllib.request.Request(base + path, data=urllib.parse.urlencode(data).encode(),
                                     headers={"Cookie": cookie, "Host": "portal.test"}, method="POST")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=120) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_many_browsers_open_tickets_and_technicians_tap_statuses_over_http(pg_app: Flask, served: str):
    with pg_app.app_context():
        world = build_world()
        queue.recompute(clock.now())
    member = _cookie_for(pg_app, world, "client_member")
    technician = _cookie_for(pg_app, world, "technician")
    statuses: list[int] = []

    def work(i: int) -> None:
        for n in range(PER_THREAD):
            form = {"title": f"Web outage {i // 2}-{n}", "description": "", "category": "network",
                    "impact": "department", "money_lost": "no", "idempotency_key": f"web-{i // 2}-{n}"}
            statuses.append(_post(served, "/client/tickets/new", member, form))
            with pg_app.app_context():
                version = db.session.scalar(select(Ticket.version).where(Ticket.id == world.ticket_a))
                db.session.remove()
            tap = {f"t{world.ticket_a}-status": TicketStatus.IN_PROGRESS if n % 2 == 0 else TicketStatus.ON_SITE,
                   f"t{world.ticket_a}-version": str(version)}
            statuses.append(_post(served, f"/staff/my-jobs/{world.ticket_a}/status", technician, tap))

    errors = _run_threads(THREADS, work)
    assert not errors, f"unhandled in workers: {[repr(e) for e in errors[:3]]}"
    assert all(s < 500 for s in statuses), f"server errors: {Counter(statuses)}"
    with pg_app.app_context():
        titles = Counter(db.session.scalars(select(Ticket.title).where(Ticket.title.like("Web outage %"))))
        assert len(titles) == THREADS // 2 * PER_THREAD and set(titles.values()) == {1}
        assert_queue_consistent()
    record("concurrency: HTTP requests in parallel", len(statuses))


# --- two dispatchers, one ticket ---------------------------------------------------------------------------------------


def test_two_dispatchers_overriding_the_same_ticket_at_once_leave_one_logged_outcome(pg_app: Flask):
    rounds = 6
    with pg_app.app_context():
        world = build_world()
        queue.recompute(clock.now())
        owner = db.session.get(User, world.user_ids["owner"])
        owner_id, dispatcher_id = owner.id, world.user_ids["dispatcher"]
    for round_ in range(rounds):
        with pg_app.app_context():
            version = db.session.get(Ticket, world.ticket_b).version
        outcomes: list[staff.Outcome] = []

        def work(i: int) -> None:
            with pg_app.app_context():
                actor = db.session.get(User, (dispatcher_id, owner_id)[i])
                outcomes.append(staff.override(world.ticket_b, 1 + i, f"round {round_} by {i}", version, actor,
                                               clock.now() + timedelta(seconds=round_)))
                db.session.remove()

        errors = _run_threads(2, work)
        assert not errors, f"unhandled: {errors!r}"
        assert sorted(o.ok for o in outcomes) == [False, True], f"round {round_}: {outcomes}"
        assert [o.stale for o in outcomes if not o.ok] == [True]
        with pg_app.app_context():
            events = db.session.scalars(select(TicketEvent).where(
                TicketEvent.ticket_id == world.ticket_b, TicketEvent.kind == "override",
                TicketEvent.message.like(f"%round {round_} by%"))).all()
            assert len(events) == 1, f"round {round_}: {len(events)} override events"
            ticket = db.session.get(Ticket, world.ticket_b)
            assert ticket.version > version
            assert events[0].detail["position"] == ticket.override_position
            assert_queue_consistent()
    record("concurrency: simultaneous dispatcher overrides", rounds * 2)


def test_address_changes_confirmed_at_once_make_one_change_each_and_never_share_an_address(pg_app: Flask):
    """Two links of one account (to two addresses) and two accounts' links to one address, all confirmed at
    the same instant: each account moves once, the address goes to one of them, and the others get a clear
    refusal, not a database error."""
    with pg_app.app_context():
        world = build_world()
        member = db.session.get(User, world.user_ids["client_member"])
        admin = db.session.get(User, world.user_ids["client_admin"])
        now = clock.now()
        links = [(member.id, accounts.email_change_token(member, "mia@one.example", now)),
                 (member.id, accounts.email_change_token(member, "mia@two.example", now)),
                 (admin.id, accounts.email_change_token(admin, "shared@new.example", now))]
        other = db.session.get(User, world.user_ids["other_admin"])
        links.append((other.id, accounts.email_change_token(other, "shared@new.example", now)))
    refused: list[str] = []

    def work(i: int) -> None:
        user_id, token = links[i]
        with pg_app.app_context():
            try:
                accounts.confirm_email_change(token, clock.now(), db.session.get(User, user_id))
            except accounts.EmailChangeRefused as refusal:
                refused.append(refusal.reason)
                db.session.rollback()

    errors = _run_threads(len(links), work)
    assert not errors, errors
    assert sorted(refused) == ["expired", "taken"]
    with pg_app.app_context():
        emails = {db.session.get(User, user_id).email for user_id, _ in links}
        assert len({e for e in emails if e.startswith("mia@")}) == 1 and "shared@new.example" in emails
        notices = db.session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.kind == "email_changed")).all()
        assert len(notices) == 2
