"""Property test: whatever sequence of openings and status changes happens, the saved queue stays whole."""
from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import select

from portal.extensions import db
from portal.models import QueueEntry, Ticket, TicketStatus
from portal.services import tickets
from portal.services.tickets import TicketError
from tests.conftest import empty_all_tables

from .conftest import Firm, build_firm, open_for

ORGS = ("acme", "cedar", "bolt")
IMPACTS = ("company", "department", "person")
MOVES = (TicketStatus.IN_PROGRESS, TicketStatus.EN_ROUTE, TicketStatus.ON_SITE, TicketStatus.WAITING_ON_CLIENT,
         TicketStatus.NEW, TicketStatus.RESOLVED, TicketStatus.CLOSED)

operation = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(ORGS), st.sampled_from(IMPACTS), st.booleans()),
    st.tuples(st.just("status"), st.integers(0, 20), st.sampled_from(MOVES), st.booleans()),
)


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=10))
def test_queue_invariants_hold_after_any_sequence(app, now, ops):
    empty_all_tables()  # each generated example starts from an empty database and a fresh firm
    firm: Firm = build_firm(now)
    clock = now
    for op in ops:
        clock += timedelta(minutes=7)
        if op[0] == "open":
            _, org, impact, onsite = op
            open_for(getattr(firm, org), getattr(firm, f"{org}_admin"), clock, impact=impact, onsite_needed=onsite)
        else:
            _, index, status, by_staff = op
            ids = list(db.session.scalars(select(Ticket.id).order_by(Ticket.id)))
            if not ids:
                continue
            actor = firm.tech_user if by_staff else db.session.get(Ticket, ids[index % len(ids)]).requester
            try:
                tickets.set_status(ids[index % len(ids)], status, actor, clock)
            except TicketError:
                pass  # refused moves change nothing; the invariants below must still hold
    db.session.expire_all()
    open_tickets = {t.id: t for t in db.session.scalars(select(Ticket).where(Ticket.status.in_(TicketStatus.OPEN)))}
    entries = {e.ticket_id: e for e in db.session.scalars(select(QueueEntry))}
    assert set(entries) == set(open_tickets)  # one entry per open ticket, none for closed ones
    waiting = {tid for tid, t in open_tickets.items() if t.status in TicketStatus.WAITING}
    placed = {tid: e.position for tid, e in entries.items() if e.position is not None}
    assert set(placed) == waiting
    assert sorted(placed.values()) == list(range(1, len(waiting) + 1))
    assert all(entries[tid].ahead == placed[tid] - 1 for tid in placed)
    for tid, t in open_tickets.items():  # clocks and pauses agree with the status
        open_pauses = [p for p in t.pauses if p.ended_at is None]
        assert len(open_pauses) == (1 if t.status == TicketStatus.WAITING_ON_CLIENT else 0)
        if t.status in (TicketStatus.ON_SITE,):
            assert t.arrived_at is not None and t.first_response_at is not None

