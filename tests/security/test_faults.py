"""Fault injection: the database failing mid-request, SMTP down, Stripe unreachable.

Database faults are injected at every write statement of each flow in turn (an SQLAlchemy
event hook raises the driver's own OperationalError, so SQLAlchemy handles it exactly as a
real one; on PostgreSQL the connection is also really killed with pg_terminate_backend).
Each time the answer must be the 503 page, no transaction may be left half-written, and the
next request must work again.
"""
from __future__ import annotations

import json
import socket
import socketserver
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable, Iterator, Optional

import pytest
from flask import Flask
from sqlalchemy import event, select, update

from portal import clock, create_app
from portal.extensions import db
from portal.models import Contract, ContractStatus, OutboxMessage, Plan, Ticket
from portal.services import outbox
from tests.conftest import PASSWORD, base_config
from tests.security.figures import record
from tests.security.world import World, build_world, rebuild_world, row_counts, snapshot

DERIVED = {"queue_entry", "queue_state"}  # recomputed from the tickets at any time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the database fault hook ------------------------------------------------------------------------------------


class WriteFault:
    """Counts write statements on the app's engine; raises the driver's OperationalError at write `fail_at`."""

    def __init__(self, engine, fail_at: Optional[int], kill_connection: bool = False) -> None:
        self.engine, self.fail_at, self.kill = engine, fail_at, kill_connection
        self.writes: list[str] = []
        self.commits_after: list[int] = []  # number of writes done when each COMMIT ran
        self.injected = False

    def before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            return
        index = len(self.writes)
        self.writes.append(statement.split("\n")[0][:80])
        if self.fail_at is None or index != self.fail_at or self.injected:
            return
        self.injected = True
        dbapi = self.engine.dialect.loaded_dbapi
        if self.kill and self.engine.dialect.name == "postgresql":
            pid = conn.connection.dbapi_connection.info.backend_pid
            from sqlalchemy import create_engine, text

            killer = create_engine(self.engine.url)
            with killer.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killer.dispose()
            return  # the statement now runs on a dead connection and fails for real
        message = "server closed the connection unexpectedly" if self.engine.dialect.name == "postgresql" else "disk I/O error"
        raise dbapi.OperationalError(message)

    def commit(self, conn) -> None:
        self.commits_after.append(len(self.writes))

    @contextmanager
    def installed(self) -> Iterator["WriteFault"]:
        event.listen(self.engine, "before_cursor_execute", self.before)
        event.listen(self.engine, "commit", self.commit)
        try:
            yield self
        finally:
            event.remove(self.engine, "before_cursor_execute", self.before)
            event.remove(self.engine, "commit", self.commit)


# --- the flows ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    name: str
    role: str
    url: Callable[[World], str]
    data: Callable[[World], dict]
    json: bool = False
    bearer: bool = False


def _version(ticket_id: int) -> str:
    return str(db.session.get(Ticket, ticket_id).version)


FLOWS = [
    Flow("sign-up", "anonymous", lambda w: "/auth/signup", lambda w: {
        "organisation_name": "Harbor Clinic", "site_address": "5 Harbor Rd", "full_name": "Hana Admin",
        "email": "hana@harbor.example", "password": PASSWORD, "confirm": PASSWORD}),
    Flow("invitation", "client_admin", lambda w: "/client/users",
         lambda w: {"email": "colleague@acme.example", "role": "client_member"}),
    Flow("emergency form", "client_member", lambda w: "/client/tickets/new", lambda w: {
        "title": "Whole office offline", "description": "Switch dead", "category": "network", "impact": "company",
        "money_lost": "yes", "revenue_at_risk_per_hour": "1200", "idempotency_key": "fault-test-key-1"}),
    Flow("comment", "client_member", lambda w: f"/client/tickets/{w.ticket_a}/comments",
         lambda w: {"body": "Still down after a restart"}),
    Flow("dispatcher override", "dispatcher", lambda w: f"/staff/tickets/{w.ticket_a}/override",
         lambda w: {"override-position": "1", "override-reason": "Clinic: patients waiting",
                    "override-version": _version(w.ticket_a)}),
    Flow("technician on site", "technician", lambda w: f"/staff/my-jobs/{w.ticket_a}/status",
         lambda w: {f"t{w.ticket_a}-status": "in_progress", f"t{w.ticket_a}-version": _version(w.ticket_a)}),
    Flow("API ticket", "anonymous", lambda w: "/api/v1/tickets",
         lambda w: {"title": "Backup job failed", "impact": "department", "category": "software"}, json=True, bearer=True),
]


def _send(app: Flask, world: World, flow: Flow):
    with app.app_context():
        data = flow.data(world)
        url = flow.url(world)
    client = world.client_for(app, flow.role)
    if flow.json:
        headers = {"Authorization": f"Bearer {world.api_secret_a}"} if flow.bearer else {}
        return client.post(url, json=data, headers=headers)
    return client.post(url, data=data)


@pytest.fixture
def fault_app(make_app, tmp_path) -> Flask:
    return make_app(UPLOAD_FOLDER=str(tmp_path / "attachments"))


def _counts_without_derived(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {t: n for t, n in row_counts().items() if t not in DERIVED}


def _fresh_world(app: Flask, first: bool = False) -> World:
    """The world with its queue computed, as it always is in the running portal."""
    from portal.services import queue

    with app.app_context():
        world = build_world() if first else rebuild_world()
        queue.recompute(clock.now())
    return world


def _check_flow(app: Flask, flow: Flow, kill_connection: bool) -> dict[str, int]:
    world = _fresh_world(app, first=True)
    with app.app_context():
        engine = db.engine
    clean = WriteFault(engine, None)
    with clean.installed():
        normal = _send(app, world, flow)
    assert normal.status_code < 400, f"{flow.name}: the flow itself fails ({normal.status_code})"
    done = _counts_without_derived(app)
    first_commit = next((n for n in clean.commits_after if n > 0), len(clean.writes))
    figures = {"faults": 0, "after_commit": 0, "503_but_saved": 0}
    problems = []
    for k in range(len(clean.writes)):
        world = _fresh_world(app)
        with app.app_context():
            before = snapshot()
        fault = WriteFault(engine, k, kill_connection)
        with fault.installed():
            response = _send(app, world, flow)
        figures["faults"] += int(fault.injected)
        where = f"{flow.name}, write {k + 1}/{len(clean.writes)} ({clean.writes[k]})"
        if not fault.injected:
            continue  # the flow took another path this time (e.g. fewer writes)
        with app.app_context():
            after = snapshot()
        committed = False
        if k < first_commit:
            if after != before:
                changed = [t for t in before if before[t] != after[t]]
                problems.append(f"{where}: partial write in {changed}")
        else:
            # A later transaction failed. Either it was the change itself (then nothing of it may be
            # there), or the change was committed whole and the fault hit the queue recompute, which
            # writes the derived queue, the re-rank events and the "your place" emails: then the next
            # recompute (any later change, or `flask alerts check`) must catch up with nothing lost.
            from portal.services import queue

            with app.app_context():
                queue.recompute(clock.now())
            healed = _counts_without_derived(app)
            before_counts = {t: len(rows) for t, rows in before.items() if t not in DERIVED}
            if healed == done:
                committed = True
                figures["after_commit"] += 1
            elif healed != before_counts:
                lost = {t: (healed[t], done[t]) for t in done if healed[t] != done[t]}
                problems.append(f"{where}: half a change left after the next recompute {lost}")
        if committed and response.status_code < 400:
            pass  # the change stands and the answer says so; only the derived queue waited
        elif response.status_code != 503:
            problems.append(f"{where}: {response.status_code} instead of 503"
                            + (" (the change was saved)" if committed else " (nothing was saved)"))
        elif committed:
            figures["503_but_saved"] += 1
        elif flow.json and "database" not in (response.get_json(silent=True) or {}).get("errors", {}):
            problems.append(f"{where}: API 503 without a JSON error naming the database")
        elif "Temporarily unavailable" not in response.get_data(as_text=True) and not flow.json:
            problems.append(f"{where}: 503 without the unavailable page")
        if response.status_code == 503 and response.headers.get("Retry-After") is None:
            problems.append(f"{where}: 503 without Retry-After")
        again = world.client_for(app, "client_member").get("/client/")
        if again.status_code != 200:
            problems.append(f"{where}: the next request failed too ({again.status_code})")
    assert not problems, "\n".join(problems)
    return figures


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_database_failing_at_any_write_gives_503_and_no_partial_write(fault_app: Flask, flow: Flow):
    figures = _check_flow(fault_app, flow, kill_connection=False)
    record("faults: database errors injected", figures["faults"])
    record("faults: injected after the change was committed (queue recompute)", figures["after_commit"])
    record("faults: 503 page although the change was saved", figures["503_but_saved"])


@pytest.mark.parametrize("flow", [f for f in FLOWS if f.name in ("emergency form", "dispatcher override")],
                         ids=lambda f: f.name)
def test_postgresql_connection_killed_mid_request(fault_app: Flask, flow: Flow):
    with fault_app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("pg_terminate_backend needs PostgreSQL")
    figures = _check_flow(fault_app, flow, kill_connection=True)
    record("faults: PostgreSQL connections killed mid-request", figures["faults"])


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://postgres@127.0.0.1:{port}/portal?connect_timeout=2",
    "sqlite:////nonexistent-folder-for-fault-test/portal.sqlite3",
], ids=["postgresql port closed", "sqlite file unreachable"])
def test_database_refusing_connections_gives_the_503_page(url: str):
    app = create_app(base_config(url.format(port=_free_port())))
    client = app.test_client()
    pages = [client.get("/plans"), client.post("/auth/login", data={"email": "a@acme.example", "password": PASSWORD})]
    with client.session_transaction() as session:  # a logged-in visitor: the session's user cannot be loaded
        session["_user_id"] = "1:1"
    pages.append(client.get("/client/"))
    for response in pages:
        assert response.status_code == 503
        assert "Temporarily unavailable" in response.get_data(as_text=True)
        assert "Nothing was saved" in response.get_data(as_text=True)
    record("faults: requests to an unreachable database", len(pages))
    with app.app_context():
        db.engine.dispose()


# --- SMTP down ------------------------------------------------------------------------------------------------------------


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept mail (or refuse the DATA when the server says so)."""

    def handle(self) -> None:
        server: "_SmtpServer" = self.server  # type: ignore[assignment]
        self.wfile.write(b"220 test ESMTP\r\n")
        in_data, lines = False, []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if in_data:
                if line in (b".\r\n", b".\n"):
                    in_data = False
                    if server.refuse_data:
                        self.wfile.write(b"451 4.3.0 mailbox temporarily unavailable\r\n")
                    else:
                        server.received.append(b"".join(lines))
                        self.wfile.write(b"250 2.0.0 queued\r\n")
                    lines = []
                else:
                    lines.append(line)
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == b"DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


class _SmtpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.received: list[bytes] = []
        self.refuse_data = False


@pytest.fixture
def smtp_server() -> Iterator[_SmtpServer]:
    server = _SmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _queue_mail(now) -> None:
    for i in range(3):
        outbox.enqueue(f"client{i}@acme.example", f"Ticket #{i} received", "Your place in the queue: 2nd", "ticket_opened", now)
    db.session.commit()


def test_smtp_down_keeps_every_email_for_retry_and_delivers_later(app, smtp_server):
    now = clock.now()
    _queue_mail(now)
    down = outbox.smtp_sender({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": _free_port(), "MAIL_FROM": "portal@x.example"})
    assert outbox.deliver_due(down, now) == (0, 3)
    messages = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert all(m.sent_at is None and m.attempts == 1 and m.last_error for m in messages)
    assert all(m.next_attempt_at > now for m in messages)  # backs off instead of hammering
    assert outbox.deliver_due(down, now) == (0, 0)  # not due yet

    smtp_server.refuse_data = True  # the server answers, then refuses the message
    sender = outbox.smtp_sender({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp_server.server_address[1],
                                 "MAIL_FROM": "portal@x.example"})
    later = now + timedelta(minutes=3)
    assert outbox.deliver_due(sender, later) == (0, 3)
    assert db.session.scalar(select(OutboxMessage.attempts).limit(1)) == 2

    smtp_server.refuse_data = False
    much_later = now + timedelta(hours=2)
    assert outbox.deliver_due(sender, much_later) == (3, 0)
    assert len(smtp_server.received) == 3
    assert all(m.sent_at == much_later for m in db.session.scalars(select(OutboxMessage)))
    assert outbox.deliver_due(sender, much_later + timedelta(hours=1)) == (0, 0)  # sent once only
    record("faults: SMTP outages injected", 2)


def test_outbox_deliver_command_survives_smtp_down(make_app):
    app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=_free_port())
    with app.app_context():
        _queue_mail(clock.now())
    with app.app_context():  # `flask` pushes it for every command; the test runner does not
        result = app.test_cli_runner().invoke(args=["outbox", "deliver"])
    assert result.exit_code == 0 and "0 sent, 3 failed" in result.output, result.output
    with app.app_context():
        assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.sent_at.is_not(None))) is None
    record("faults: SMTP outages injected")


# --- Stripe unreachable -----------------------------------------------------------------------------------------------


class _Stripe500(BaseHTTPRequestHandler):
    def _fail(self) -> None:
        body = json.dumps({"error": {"type": "api_error", "message": "Stripe is having a bad day"}}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _fail

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=["port closed", "answers 500"])
def stripe_base(request) -> Iterator[str]:
    if request.param == "port closed":
        yield f"http://127.0.0.1:{_free_port()}"
        return
    server = HTTPServer(("127.0.0.1", 0), _Stripe500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _card_world(app: Flask) -> World:
    """Organisation A pays Priority by card; a Premium plan is on sale."""
    with app.app_context():
        world = build_world()
        db.session.execute(update(Plan).where(Plan.id == world.plan).values(stripe_price_id="price_priority"))
        db.session.add(Plan(slug="premium", name="Premium 24/7", is_contract=True, coverage=Plan.COVERAGE_24X7,
                            monthly_price=Decimal("2490"), remote_response_minutes=30, onsite_arrival_minutes=120,
                            stripe_price_id="price_premium", display_order=3, active=True))
        contract = db.session.get(Contract, world.contract_a)
        contract.payment_method = "card"
        contract.stripe_subscription_id = "sub_123"
        contract.status = ContractStatus.ACTIVE
        contract.organisation.stripe_customer_id = "cus_123"
        db.session.commit()
    return world


def test_stripe_unreachable_leaves_the_contract_as_it_was(make_app, stripe_base: str):
    app = make_app(STRIPE_SECRET_KEY="sk_test_fault", STRIPE_API_BASE=stripe_base, STRIPE_MAX_NETWORK_RETRIES=0)
    world = _card_world(app)
    client = world.client_for(app, "client_admin")
    other = world.client_for(app, "other_admin")  # break/fix organisation B starting a checkout
    attempts = [
        ("change plan", client, "/billing/change-plan", {"plan": "premium"}),
        ("cancel", client, "/billing/cancel", {}),
        ("billing portal", client, "/billing/portal", {}),
        ("checkout", other, "/billing/checkout/premium", {}),
    ]
    for name, who, url, data in attempts:
        with app.app_context():
            before = snapshot()
        response = who.post(url, data=data, follow_redirects=True)
        page = response.get_data(as_text=True)
        assert response.status_code == 200, name
        assert "Nothing was changed" in page, f"{name}: no clear message"
        with app.app_context():
            assert snapshot() == before, f"{name}: Stripe failed but the database changed"
        record("faults: Stripe failures injected")
