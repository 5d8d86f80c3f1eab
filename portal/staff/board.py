"""Read side of the dispatch board: the saved queue, joined and filtered for display.

The board never recomputes: it shows the QueueEntry rows the last recompute saved, so every
worker and every page agree on the same order.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..domain.sla import OwedOutlook, SlaState
from ..extensions import db
from ..models import Contract, ContractStatus, Plan, QueueEntry, QueueState, Technician, Ticket, TicketStatus
from ..services.queue import STATE_ID
from ..services.ticket_status import shown_sla_state

ON_TRACK, AT_RISK = SlaState.ON_TRACK.value, SlaState.AT_RISK.value

SLA_STATES = (
    ("on_track", "On track"),
    ("at_risk", "At risk"),
    ("breached", "Breached"),
    ("met", "Met"),
    ("best_effort", "Best effort"),
)
SLA_LABELS = dict(SLA_STATES)
BOARD_STATUSES = TicketStatus.WAITING | TicketStatus.ACTIVE | {TicketStatus.WAITING_ON_CLIENT}


def board_tag() -> str:
    """A fingerprint of what the board shows, in one small query, for the open board to poll.

    Every change that moves the queue bumps the queue generation; a change to an open ticket
    that does not (its SLA state refreshed, a title edited) moves its updated_at; a ticket leaving
    the board lowers the count of open ones.
    """
    row = db.session.execute(
        select(
            select(QueueState.generation).where(QueueState.id == STATE_ID).scalar_subquery(),
            func.count(Ticket.id), func.max(Ticket.updated_at),
        ).where(Ticket.status.in_(BOARD_STATUSES))
    ).one()
    raw = "|".join(str(value) for value in row)
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


@dataclass
class BoardRow:
    ticket: Ticket
    entry: Optional[QueueEntry]
    plan: Optional[Plan]

    @property
    def technician(self) -> Optional[Technician]:
        """The technician doing it, else the one the engine expects to send."""
        if self.ticket.technician is not None:
            return self.ticket.technician
        return self.entry.technician if self.entry is not None else None

    @property
    def expected_only(self) -> bool:
        return self.ticket.technician is None and self.technician is not None

    @property
    def sla_state(self) -> Optional[str]:
        """As the client reads it: at risk as soon as the plan's 90% bound passes the deadline."""
        return shown_sla_state(self.ticket, self.entry)

    @property
    def forecast_late(self) -> bool:
        """At risk by the plan's forecast while the SLA clock alone still says on track."""
        return self.sla_state != self.ticket.sla_state

    @property
    def at_risk(self) -> bool:
        return self.sla_state in ("at_risk", "breached") or bool(self.entry and self.entry.sla_at_risk)

    @property
    def due_at(self):
        if self.ticket.onsite_needed and self.ticket.arrival_due_at and not self.ticket.arrived_at:
            return self.ticket.arrival_due_at
        return self.ticket.response_due_at


@dataclass
class Board:
    waiting: list[BoardRow] = field(default_factory=list)
    active: list[BoardRow] = field(default_factory=list)
    unranked: list[BoardRow] = field(default_factory=list)
    total: int = 0


@dataclass(frozen=True)
class Filters:
    plan: str = ""
    state: str = ""
    technician: Optional[int] = None
    at_risk: bool = False

    @property
    def any(self) -> bool:
        return bool(self.plan or self.state or self.technician or self.at_risk)

    def keep(self, row: BoardRow) -> bool:
        if self.plan and (row.plan.slug if row.plan else "break-fix") != self.plan:
            return False
        if self.state and (row.sla_state or "") != self.state:
            return False
        if self.technician and (row.technician is None or row.technician.id != self.technician):
            return False
        if self.at_risk and not row.at_risk:
            return False
        return True


def _current_plans(organisation_ids: set[int]) -> dict[int, Plan]:
    """Each organisation's plan in force (active or past due); absent means break/fix."""
    if not organisation_ids:
        return {}
    contracts = db.session.scalars(
        select(Contract)
        .options(selectinload(Contract.plan))
        .where(
            Contract.organisation_id.in_(organisation_ids),
            Contract.status.in_([ContractStatus.ACTIVE, ContractStatus.PAST_DUE]),
        )
        .order_by(Contract.id)
    )
    return {c.organisation_id: c.plan for c in contracts}


def load_board(filters: Filters) -> Board:
    """Every waiting and active ticket: waiting ones in saved dispatch order, then work in hand."""
    rows = db.session.execute(
        select(Ticket, QueueEntry)
        .outerjoin(QueueEntry, QueueEntry.ticket_id == Ticket.id)
        .options(selectinload(Ticket.organisation), selectinload(Ticket.technician).selectinload(Technician.user))
        .where(Ticket.status.in_(BOARD_STATUSES))
    ).all()
    plans = _current_plans({t.organisation_id for t, _ in rows})
    board = Board(total=len(rows))
    for ticket, entry in rows:
        row = BoardRow(ticket, entry, ticket.sla_plan or plans.get(ticket.organisation_id))
        if not filters.keep(row):
            continue
        if entry is None:
            board.unranked.append(row)
        elif ticket.status in TicketStatus.WAITING and entry.position is not None:
            board.waiting.append(row)
        else:
            board.active.append(row)
    board.waiting.sort(key=lambda r: (r.entry.position, r.ticket.id))
    board.active.sort(key=lambda r: (r.ticket.status != TicketStatus.ON_SITE, r.due_at is None, r.due_at or r.ticket.opened_at, r.ticket.id))
    board.unranked.sort(key=lambda r: (r.ticket.opened_at, r.ticket.id))
    return board


def plan_choices() -> list[tuple[str, str]]:
    plans = db.session.scalars(select(Plan).order_by(Plan.display_order, Plan.id)).all()
    choices = [(p.slug, p.name) for p in plans]
    if not any(slug == "break-fix" for slug, _ in choices):
        choices.insert(0, ("break-fix", "Break/fix"))
    return choices


def my_jobs(technician: Technician) -> list[BoardRow]:
    """The technician's work: assigned open tickets first (the one in hand on top), then expected next."""
    rows = db.session.execute(
        select(Ticket, QueueEntry)
        .outerjoin(QueueEntry, QueueEntry.ticket_id == Ticket.id)
        .options(selectinload(Ticket.organisation))
        .where(
            Ticket.status.in_(TicketStatus.OPEN),
            (Ticket.technician_id == technician.id)
            | ((QueueEntry.technician_id == technician.id) & Ticket.technician_id.is_(None)),
        )
    ).all()
    jobs = [BoardRow(t, e, t.sla_plan) for t, e in rows]
    order = {
        TicketStatus.ON_SITE: 0, TicketStatus.IN_PROGRESS: 0, TicketStatus.EN_ROUTE: 1,
        TicketStatus.ASSIGNED: 2, TicketStatus.WAITING_ON_CLIENT: 3, TicketStatus.NEW: 4,
    }

    def key(row: BoardRow):
        position = row.entry.position if row.entry and row.entry.position is not None else 10**6
        eta = row.entry.eta_median if row.entry else None
        return (order.get(row.ticket.status, 5), row.ticket.technician_id is None, position,
                eta is None, eta or row.ticket.opened_at, row.ticket.id)

    jobs.sort(key=key)
    return jobs


@dataclass(frozen=True)
class WhatIfRow:
    """One ticket's saved place and estimate next to what the scenario would give it."""

    ticket: Ticket
    before_position: Optional[int]
    after_position: Optional[int]
    before_eta: Optional[datetime]
    after_eta: Optional[datetime]
    after_eta_p90: Optional[datetime]
    technician_name: Optional[str]
    # The deadline's state as the board shows it now, and as the scenario's estimate would make it.
    before_state: Optional[str] = None
    after_outlook: Optional[OwedOutlook] = None

    @property
    def after_state(self) -> Optional[str]:
        return self.after_outlook.state if self.after_outlook is not None else None

    @property
    def puts_at_risk(self) -> bool:
        """A promise on track now that the scenario would put at risk: what a dispatcher must see before
        moving a ticket ahead of others."""
        return self.before_state == ON_TRACK and self.after_state == AT_RISK

    @property
    def brings_on_track(self) -> bool:
        return self.before_state == AT_RISK and self.after_state == ON_TRACK

    @property
    def moved(self) -> bool:
        return self.before_position != self.after_position

    @property
    def minutes_sooner(self) -> Optional[int]:
        """Positive when the scenario brings the start or arrival forward."""
        if self.before_eta is None or self.after_eta is None:
            return None
        return round((self.before_eta - self.after_eta).total_seconds() / 60)

    @property
    def changed(self) -> bool:
        return self.moved or bool(self.minutes_sooner)


def compare_quotes(quotes: Sequence) -> list[WhatIfRow]:
    """Pair each quote of a what-if with the saved queue entry of its ticket, in the scenario's order."""
    ids = [q.ticket_id for q in quotes]
    tickets = {t.id: t for t in db.session.scalars(
        select(Ticket).options(selectinload(Ticket.organisation)).where(Ticket.id.in_(ids)))}
    entries = {e.ticket_id: e for e in db.session.scalars(select(QueueEntry).where(QueueEntry.ticket_id.in_(ids)))}
    rows = []
    for quote in quotes:
        ticket = tickets.get(quote.ticket_id)
        if ticket is None:
            continue
        entry = entries.get(quote.ticket_id)
        rows.append(WhatIfRow(
            ticket=ticket,
            before_position=entry.position if entry else None,
            after_position=quote.position,
            before_eta=entry.eta_median if entry else None,
            after_eta=quote.eta_median,
            after_eta_p90=quote.eta_p90,
            technician_name=quote.technician_name,
            before_state=shown_sla_state(ticket, entry),
            after_outlook=quote.outlook(ticket.sla_state or ON_TRACK),
        ))
    rows.sort(key=lambda r: (r.after_position is None, r.after_position or 0, r.ticket.id))
    return rows
