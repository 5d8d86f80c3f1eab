"""The saved queue: order, places, re-ranking events, what-if quotes that write nothing, bounded SQL,
and one consistent queue when many workers open tickets at once (PostgreSQL)."""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import event, func, select

from portal.domain.effort import DEFAULT_EFFORT, EffortEstimate
from portal.extensions import db
from portal.models import OutboxMessage, QueueEntry, QueueState, Ticket, TicketEvent, TicketStatus
from portal.services import queue, tickets

from .conftest import add_technician, open_for, ticket_input


def positions() -> dict[int, int]:
    return {e.ticket_id: e.position for e in db.session.scalars(select(QueueEntry)) if e.position is not None}


def test_contract_before_break_fix_and_places_are_a_permutation(firm, now):
    bolt = open_for(firm.bolt, firm.bolt_admin, now, title="Card terminals offline", impact="company",
                    revenue_at_risk_per_hour=Decimal("2500")).ticket
    acme = open_for(firm.acme, firm.acme_admin, now, title="One mouse", impact="person").ticket
    cedar = open_for(firm.cedar, firm.cedar_admin, now, title="LAN down", impact="company").ticket
    places = positions()
    assert sorted(places.values()) == [1, 2, 3]
    assert places[bolt.id] == 3  # contract clients first, whatever the break/fix impact
    assert places[cedar.id] < places[acme.id]
    state = db.session.get(QueueState, 1)
    assert state.waiting_count == 3 and queue.waiting_count() == 3
    mine = queue.entries_for_organisation(firm.acme.id)
    assert set(mine) == {acme.id}
    assert mine[acme.id].client_reasons


def test_recompute_bumps_generation_and_drops_closed_tickets(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    first = queue.generation()
    tickets.set_status(ticket.id, TicketStatus.RESOLVED, firm.tech_user, now)
    assert queue.generation() == first + 1
    assert queue.entry_for(ticket.id) is None
    assert queue.recompute(now) == first + 2


def test_a_more_urgent_ticket_moves_others_down_with_a_reason(firm, now):
    mouse = open_for(firm.acme, firm.acme_admin, now, title="Mouse").ticket
    assert queue.entry_for(mouse.id).position == 1
    open_for(firm.acme, firm.acme_admin, now, title="Whole office offline", impact="company",
             revenue_at_risk_per_hour=Decimal("5000"))
    assert queue.entry_for(mouse.id).position == 2
    moved = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == mouse.id,
                                                         TicketEvent.kind == "re-ranked")).one()
    assert moved.public and "Moved from 1st to 2nd" in moved.message and "more urgent ticket came in" in moved.message
    assert "Acme" not in moved.message  # never names another client


def test_a_ticket_pushed_down_by_another_ticket_s_pin_is_not_told_its_own_reason(firm, now):
    """Two pins to place 1: the second pushes the first down; the first ticket's timeline says our
    dispatcher moved another ticket ahead (never its own pin's reason, nor the other's), a ticket
    without a pin pushed down by a pin is not told that a deadline came nearer, and a lifted pin is
    named as the reason its ticket moved back."""
    mouse = open_for(firm.acme, firm.acme_admin, now, title="Mouse").ticket
    printer = open_for(firm.acme, firm.acme_admin, now, title="Printer").ticket
    scanner = open_for(firm.acme, firm.acme_admin, now, title="Scanner").ticket
    assert positions() == {mouse.id: 1, printer.id: 2, scanner.id: 3}

    def last_move(ticket_id: int) -> str:
        return db.session.scalars(select(TicketEvent.message).where(
            TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "re-ranked").order_by(TicketEvent.id.desc())).first()

    ahead, behind = "our dispatcher moved another ticket ahead of yours", "our dispatcher moved another ticket behind yours"
    steps = [  # (ticket, place to pin or None to lift, reason, places after, {ticket: its last move})
        (scanner, 1, "VIP", [scanner, mouse, printer],
         {scanner: "3rd to 1st in line: placed there by our dispatcher: VIP", mouse: f"1st to 2nd in line: {ahead}"}),
        (printer, 1, "payroll deadline", [printer, scanner, mouse],
         {scanner: f"1st to 2nd in line: {ahead}", mouse: f"2nd to 3rd in line: {ahead}",
          printer: "3rd to 1st in line: placed there by our dispatcher: payroll deadline"}),
        (printer, None, "done with", [scanner, mouse, printer],
         {printer: "1st to 3rd in line: our dispatcher returned it to its usual place",
          scanner: f"2nd to 1st in line: {behind}"}),
        (mouse, 3, "can wait", [scanner, printer, mouse], {printer: f"3rd to 2nd in line: {behind}"}),
    ]
    for ticket, place, reason, order, moves in steps:
        tickets.override_position(ticket.id, place, reason, firm.dispatcher, now)
        assert positions() == {t.id: k for k, t in enumerate(order, start=1)}
        for moved, words in moves.items():
            assert last_move(moved.id) == f"Moved from {words}."

    # A pinned ticket moving up because one ahead was started is told so, not its pin's reason.
    tickets.set_status(scanner.id, TicketStatus.IN_PROGRESS, firm.tech_user, now)
    assert last_move(mouse.id) == "Moved from 3rd to 2nd in line: 1 ticket ahead of yours was started or closed."


def test_a_newcomer_ahead_that_is_not_more_urgent_is_not_called_more_urgent(firm, now):
    """The place is the order of expected starts: a one-person software problem that a free technician
    can start now goes ahead of a department's printer waiting for the only printer technician, and
    the printer ticket's timeline says why, without calling the newcomer more urgent."""
    lan = open_for(firm.acme, firm.acme_admin, now, title="LAN down", category="network", impact="company").ticket
    tickets.set_status(lan.id, TicketStatus.IN_PROGRESS, firm.tech_user, now)
    printer = open_for(firm.acme, firm.acme_admin, now, title="Printer", category="printer", impact="department").ticket
    assert queue.entry_for(printer.id).position == 1
    add_technician("sue@firm.test", ["software"])
    email = open_for(firm.acme, firm.acme_admin, now, title="Software", category="software", impact="person").ticket
    assert queue.entry_for(email.id).position == 1 and queue.entry_for(printer.id).position == 2
    assert queue.entry_for(email.id).score < queue.entry_for(printer.id).score
    moved = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == printer.id,
                                                         TicketEvent.kind == "re-ranked")).one()
    assert moved.message == ("Moved from 1st to 2nd in line: 1 new ticket, not more urgent than yours, "
                             "can be started sooner by a free technician with the right skills.")
    # Its reasons say why a lower-ranked ticket is ahead; the one ahead has nothing of the kind.
    assert ("1 of the tickets ahead ranks below yours but can be started sooner, by a technician free earlier "
            "or with the skill they need") in queue.entry_for(printer.id).client_reasons
    assert not any("ranks below yours" in r for r in queue.entry_for(email.id).client_reasons)


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(1, 40))))
def test_the_count_of_lower_ranked_tickets_ahead_matches_counting_them_one_by_one(ranks):
    expected = [sum(1 for earlier in ranks[:k] if earlier > rank) for k, rank in enumerate(ranks)]
    assert queue._ranked_lower_ahead(list(ranks)) == expected


def test_the_client_reads_that_nobody_with_the_skill_is_on_duty_yet(firm, now):
    """Cedar (Premium 24/7) opens a security job at night: Tom, on call, has no security skill; Sam,
    who has it, starts at 08:00. The client's estimate says why it is the morning."""
    from portal.client.presenting import eta_text
    from portal.services.ticket_status import ticket_view

    night = now.replace(hour=3)  # 22:00 the evening before in New York
    add_technician("sam@firm.test", ["security"])
    alarm = open_for(firm.cedar, firm.cedar_admin, night, title="Alarm panel", category="security").ticket
    view = ticket_view(firm.cedar.id, alarm.id)
    assert view.waits_for_skill and not view.waits_for_coverage
    assert eta_text(view).endswith("Nobody with the skill this job needs is on duty now: this is when the first one starts")
    printer = open_for(firm.cedar, firm.cedar_admin, night, title="Printer", category="printer").ticket
    assert not ticket_view(firm.cedar.id, printer.id).waits_for_skill


def test_started_ticket_has_no_place_and_frees_the_line(firm, now):
    a = open_for(firm.acme, firm.acme_admin, now, title="LAN down", impact="company").ticket
    b = open_for(firm.acme, firm.acme_admin, now, title="Mouse").ticket
    tickets.set_status(a.id, TicketStatus.IN_PROGRESS, firm.tech_user, now)
    assert queue.entry_for(a.id).position is None and queue.entry_for(a.id).technician_id == firm.technician.id
    assert queue.entry_for(b.id).position == 1
    moved = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == b.id,
                                                         TicketEvent.kind == "re-ranked")).one()
    assert "1 ticket ahead of yours was started or closed" in moved.message


def test_en_route_entry_carries_the_arrival_estimate(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now, onsite_needed=True).ticket
    tickets.set_status(ticket.id, TicketStatus.EN_ROUTE, firm.tech_user, now)
    entry = queue.entry_for(ticket.id)
    assert entry.position is None and entry.eta_median is not None and entry.eta_p90 >= entry.eta_median


def test_a_drive_past_the_arrival_given_is_read_as_still_under_way(firm, now):
    """The arrival given when the technician set off has passed and they are not on site: the next
    recompute shows what such a drive still takes (later than now), never a time already past."""
    firm.acme.latitude, firm.acme.longitude = 40.65, -73.90  # a drive away from Tom
    db.session.commit()
    ticket = open_for(firm.acme, firm.acme_admin, now, onsite_needed=True).ticket
    tickets.set_status(ticket.id, TicketStatus.EN_ROUTE, firm.tech_user, now)
    given = queue.entry_for(ticket.id)
    median, p90 = given.eta_median, given.eta_p90
    later = p90 + timedelta(minutes=10)
    queue.recompute(later)
    entry = queue.entry_for(ticket.id)
    assert later < entry.eta_median <= entry.eta_p90
    drive = EffortEstimate((median - now).total_seconds() / 60, (p90 - now).total_seconds() / 60)
    left = drive.remaining_after((later - now).total_seconds() / 60)
    assert abs((entry.eta_median - later).total_seconds() / 60 - left.median_minutes) < 0.01


def test_a_job_past_its_90_percent_bound_keeps_its_technician_busy_for_what_such_jobs_still_take(firm, now):
    """Tom has been on a network repair (median 90, 90% by 240 minutes) for four hours: the next
    job waits for what a repair that has run that long still takes, not for the minutes a
    median-minus-time-spent would leave."""
    started = now - timedelta(hours=4)
    switch = open_for(firm.acme, firm.acme_admin, started - timedelta(minutes=10), title="Core switch",
                      category="network").ticket
    tickets.set_status(switch.id, TicketStatus.IN_PROGRESS, firm.tech_user, started)
    printer = open_for(firm.acme, firm.acme_admin, now, title="Printer jammed").ticket
    entry = queue.entry_for(printer.id)
    left = DEFAULT_EFFORT["network"].remaining_after(240)
    assert entry.technician_id == firm.technician.id
    assert entry.eta_median >= now + timedelta(minutes=left.median_minutes) > now + timedelta(minutes=75)
    assert entry.eta_p90 >= now + timedelta(minutes=left.p90_minutes)


def test_ranges_allow_for_tickets_that_will_open_later_once_there_is_history(firm, now):
    """A firm with a busy month behind it: the 90% bound of a ticket further back stretches for
    the tickets expected to open and overtake it, as the benchmark's arrival estimates do."""
    assert queue.load(now).inputs.forecast is None  # no resolved ticket yet: no typical job size
    for k in range(30):
        opened = now - timedelta(hours=12 * k + 12)
        done = open_for(firm.cedar, firm.cedar_admin, opened, title=f"Past {k}").ticket
        tickets.set_status(done.id, TicketStatus.IN_PROGRESS, firm.tech_user, opened + timedelta(minutes=10))
        tickets.set_status(done.id, TicketStatus.RESOLVED, firm.tech_user, opened + timedelta(minutes=100))
    open_for(firm.cedar, firm.cedar_admin, now - timedelta(days=40), title="Last season")  # outside the 28 days
    waiting = [open_for(firm.acme, firm.acme_admin, now, title=f"Now {i}", impact="department").ticket
               for i in range(4)]
    loaded = queue.load(now)
    forecast = loaded.inputs.forecast
    assert forecast.tickets_per_hour == pytest.approx(34 / (28 * 24))
    assert forecast.mean_job_minutes == pytest.approx(90.0)
    with_forecast = {p.facts.id: p.estimate for p in queue.compute(loaded.inputs)}
    plain = {p.facts.id: p.estimate for p in queue.compute(replace(loaded.inputs, forecast=None))}
    last = max(waiting, key=lambda t: with_forecast[t.id].position)
    assert with_forecast[last.id].p90 > plain[last.id].p90
    assert queue.entry_for(last.id).eta_p90 == with_forecast[last.id].p90  # what the pages read


class Writes:
    """Counts the statements an action sends, and how many of them write."""

    def __init__(self):
        self.statements: list[str] = []

    def __enter__(self):
        event.listen(db.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]


def _snapshot():
    entries = sorted((e.ticket_id, e.position, e.eta_median, e.generation) for e in db.session.scalars(select(QueueEntry)))
    counts = [db.session.scalar(select(func.count()).select_from(m)) for m in (TicketEvent, OutboxMessage, Ticket)]
    return entries, counts, queue.generation()


def test_quotes_write_nothing(firm, now):
    bolt = open_for(firm.bolt, firm.bolt_admin, now, title="Tills down", impact="company").ticket
    for i in range(3):
        open_for(firm.acme, firm.acme_admin, now, title=f"Acme {i}", impact="department")
    before = _snapshot()
    with Writes() as seen:
        upgrade = queue.quote_upgrade(bolt.id, now)
        extra = queue.quote(bolt.id, now, extra_technician=True)
        moved = queue.quote(bolt.id, now, move_to=1)
        plan = queue.quote(bolt.id, now, plan_id=firm.premium.id)
    assert seen.writes == []
    db.session.expire_all()
    assert _snapshot() == before
    assert not db.session.new and not db.session.dirty
    saved = queue.entry_for(bolt.id)
    assert saved.position == 4
    assert [p.slug for p, _ in upgrade.plans] == ["priority", "premium-24-7"]
    assert all(q.position <= saved.position and not q.best_effort for _, q in upgrade.plans)
    assert (upgrade.current.position, upgrade.current.eta_median) == (saved.position, saved.eta_median)
    assert next(q for q in moved if q.ticket_id == bolt.id).position == 1
    assert next(q for q in plan if q.ticket_id == bolt.id).sla_due is not None
    mine = next(q for q in extra if q.ticket_id == bolt.id)
    assert mine.eta_median <= saved.eta_median
    assert queue.quote(999, now) == []


def test_recompute_sql_is_bounded(firm, now):
    """The number of statements does not grow with the number of tickets or technicians (no N+1)."""
    open_for(firm.acme, firm.acme_admin, now)
    queue.recompute(now)
    with Writes() as small:
        queue.recompute(now)
    for i in range(12):
        open_for(firm.acme if i % 2 else firm.cedar, firm.acme_admin if i % 2 else firm.cedar_admin, now,
                 title=f"T{i}", impact="department", onsite_needed=bool(i % 3))
    add_technician("tara@firm.test", ["network"])
    add_technician("theo@firm.test", ["printer"])
    t = db.session.scalars(select(Ticket).where(Ticket.title == "T4")).one()  # on site: someone can be on the way
    tickets.set_status(t.id, TicketStatus.EN_ROUTE, firm.tech_user, now)
    queue.recompute(now)
    with Writes() as large:
        queue.recompute(now)
    assert len(large.statements) == len(small.statements) + 1  # + the en-route arrivals lookup
    assert len(large.statements) <= 20


def test_concurrent_openings_leave_one_consistent_queue(firm, now, make_app, app):
    """Many workers open tickets and recompute at once: every open ticket ends with one place, places are
    1..n, each ticket was triaged and emailed exactly once, and no recompute was lost."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (SQLite serialises writers anyway)")
    org_ids = [firm.acme.id, firm.cedar.id, firm.bolt.id]
    users = {firm.acme.id: firm.acme_admin.id, firm.cedar.id: firm.cedar_admin.id, firm.bolt.id: firm.bolt_admin.id}
    errors: list[BaseException] = []
    threads_n, per_thread = 8, 6

    # One app per worker, built here: werkzeug compiles URL rules with ast.parse, which CPython
    # 3.11 can fail ("AST constructor recursion depth mismatch") when threads do it at once.
    worker_apps = [make_app() for _ in range(threads_n)]

    def worker(n: int) -> None:
        with worker_apps[n].app_context():
            try:
                for i in range(per_thread):
                    # Threads 2m and 2m+1 send the same requests, each twice: a client retrying while its
                    # first request is still running, so the idempotency race is exercised too.
                    request_id = (n // 2, i // 2)
                    org = org_ids[sum(request_id) % 3]
                    tickets.open_ticket(org, users[org], ticket_input(title=f"r{request_id}",
                                        impact=("company", "department", "person")[sum(request_id) % 3]), now,
                                        idempotency_key=f"k{request_id[0]}-{request_id[1]}")
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)
            finally:
                db.session.remove()

    before = queue.generation()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    db.session.expire_all()
    open_ids = set(db.session.scalars(select(Ticket.id).where(Ticket.status.in_(TicketStatus.OPEN))))
    assert len(open_ids) == (threads_n // 2) * (per_thread // 2)
    places = positions()
    assert set(places) == open_ids
    assert sorted(places.values()) == list(range(1, len(open_ids) + 1))
    state = db.session.get(QueueState, 1)
    assert state.waiting_count == len(open_ids)
    assert state.generation == before + len(open_ids)  # one recompute per ticket created, none lost
    generations = set(db.session.scalars(select(QueueEntry.generation)))
    assert generations == {state.generation}
    triaged = db.session.execute(select(TicketEvent.ticket_id, func.count()).where(TicketEvent.kind == "triaged")
                                 .group_by(TicketEvent.ticket_id)).all()
    assert {tid for tid, _ in triaged} == open_ids and all(c == 1 for _, c in triaged)
    received = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.kind == "ticket_received"))
    assert received == len(open_ids)


@pytest.mark.parametrize("old, new, left, urgent, sooner, words", [
    (11, 13, 0, 2, 0, "2 more urgent tickets came in"),
    (11, 13, 0, 1, 0, "1 more urgent ticket came in and 1 waiting ticket went ahead of yours: its deadline came "
                      "nearer or a free specialist can start it sooner"),
    (11, 13, 0, 1, 1, "1 more urgent ticket came in and 1 new ticket, not more urgent than yours, can be started "
                      "sooner by a free technician with the right skills"),
    (11, 13, 1, 3, 0, "3 more urgent tickets came in and 1 ticket ahead of yours was started or closed"),
    (2, 1, 1, 0, 0, "1 ticket ahead of yours was started or closed"),
    (5, 3, 3, 1, 0, "3 tickets ahead of yours were started or closed and 1 more urgent ticket came in"),
    (5, 3, 1, 0, 0, "1 ticket ahead of yours was started or closed and 1 ticket ahead of yours is now behind it: "
                    "a technician became free sooner than planned or its priority changed"),
    (3, 2, 0, 0, 0, "1 ticket ahead of yours is now behind it: a technician became free sooner than planned "
                    "or its priority changed"),
    (2, 3, 0, 0, 0, "1 waiting ticket went ahead of yours: its deadline came nearer or a free specialist can "
                    "start it sooner"),
    (2, 5, 0, 0, 0, "3 waiting tickets went ahead of yours: their deadlines came nearer or a free specialist "
                    "can start them sooner"),
])
def test_a_moves_reason_accounts_for_every_place_it_moved(old, new, left, urgent, sooner, words):
    """'Moved from 11th to 13th: 1 more urgent ticket came in' explained one place of two."""
    assert queue._move_reason(7, old, new, left, urgent, sooner, None, None) == words
