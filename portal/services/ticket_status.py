"""What a client may know about its tickets, in one shape for the status page, live.json and the API.

Why one read model: the page, its live updates and the JSON API must never disagree, and a
client must never see another organisation's data. Everything here is scoped by
organisation id and reads the stored queue (QueueEntry) rather than re-running the engines.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

import functools
import hashlib

from sqlalchemy import Select, bindparam, func, select, tuple_, union_all
from sqlalchemy.orm import aliased, joinedload

from ..domain.dispatch import OFF_DUTY_NOTE
from ..domain import sla as sla_rules
from ..domain.sla import OwedOutlook, SlaState
from ..domain.triage import holidays_words
from ..extensions import db
from ..models import Organisation, QueueEntry, QueueState, Technician, Ticket, TicketEvent, TicketStatus, User
from . import queue, settings, sla

# Work has started (or the ball is with the client): the ticket no longer has a place in line.
NO_PLACE = TicketStatus.ACTIVE | {TicketStatus.WAITING_ON_CLIENT} | TicketStatus.DONE
# The dispatch engine's words when a ticket must wait for its plan's covered hours.
COVERAGE_NOTE = "Outside the hours this ticket is covered"


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str
    message: str


@dataclass(frozen=True)
class TicketStatusView:
    """One ticket as its organisation sees it (the API body is `as_json()`)."""

    id: int
    title: str
    status: str
    status_label: str
    position: Optional[int]
    ahead: Optional[int]
    eta_median: Optional[datetime]
    eta_p90: Optional[datetime]
    eta_kind: str  # "arrival" (on site) or "remote_start"
    waits_for_coverage: bool
    note: str
    sla_due_at: Optional[datetime]
    sla_state: Optional[str]
    sla_best_effort: bool
    technician: Optional[str]  # assigned by a dispatcher or taken by the technician
    likely_technician: Optional[str]  # the dispatch plan's pick while nobody is assigned (not a promise)
    reasons: tuple[str, ...]
    updated_at: datetime
    opened_at: datetime
    is_open: bool
    generation: int
    timeline: tuple[TimelineItem, ...] = field(default=())
    waits_for_skill: bool = False  # nobody with the job's skill is on duty now (the on-call may not have it)
    # The remote response's due time when that target was missed while the on-site deadline shown
    # is still ahead: "missed" beside a deadline not yet reached would read as a mistake.
    response_missed_due_at: Optional[datetime] = None
    # The remote response's due time while it is still owed on an on-site ticket (the deadline shown
    # is the arrival's, later): the client should see the nearer promise too.
    response_pending_due_at: Optional[datetime] = None
    client_deadline: Optional[datetime] = None  # the client's own ("payroll at 17:00"), not the contract's
    resolved_at: Optional[datetime] = None
    follows_ticket_id: Optional[int] = None  # the done ticket this one reports again
    # The public holidays that close a working day before the estimate ("Thu 26 Nov is Thanksgiving Day, a
    # public holiday"): why the wait is longer than a client expects.
    holidays_closed: str = ""
    # What the dispatch plan expects of the promises still owed (`sla_outlook`): the worst one and why.
    sla_outlook: Optional[OwedOutlook] = None
    # Promises missed under the contract before the ticket went best effort (it ended, was suspended or
    # moved to break/fix): ("response" or "arrival", the due time missed). Best effort does not undo them.
    missed_before_best_effort: tuple[tuple[str, datetime], ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The API's ticket body: ISO 8601 datetimes with their offset."""
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "position": self.position,
            "ahead": self.ahead,
            "eta": {"median": _iso(self.eta_median), "p90": _iso(self.eta_p90), "kind": self.eta_kind},
            "sla": {"due_at": _iso(self.sla_due_at), "state": self.sla_state, "best_effort": self.sla_best_effort,
                    "response_missed_due_at": _iso(self.response_missed_due_at),
                    "response_due_at": _iso(self.response_pending_due_at),
                    "at_risk": self._at_risk_json()},
            "client_deadline": _iso(self.client_deadline),
            "technician": self.technician,
            "reasons": list(self.reasons),
            "follows_ticket_id": self.follows_ticket_id,
            "opened_at": _iso(self.opened_at),
            "resolved_at": _iso(self.resolved_at),
            "updated_at": _iso(self.updated_at),
        }


    def _at_risk_json(self) -> Optional[dict[str, Any]]:
        """The promise the dispatch plan expects to slip, for a tool that must tell a response at risk
        (the technician sets off late) from an arrival at risk; None while every promise owed is on track."""
        worst = self.sla_outlook.worst if self.sla_outlook is not None else None
        if worst is None:
            return None
        return {"promise": worst.promise, "due_at": _iso(worst.due), "expected_at": _iso(worst.expected),
                "likely_missed": worst.outlook == sla_rules.Outlook.LIKELY_MISSED}


def _iso(value: Optional[datetime]) -> Optional[str]:
    return value.isoformat() if value is not None else None


def sla_outlook(ticket: Ticket, entry: Optional[QueueEntry]) -> OwedOutlook:
    """The one judgement of a ticket's promises still owed: the SLA clock's state made no better than
    what the dispatch plan expects of each promise.

    Why: the clock goes "at risk" only once most of the target's time has passed, while the plan
    may know at once that the technician will arrive after the deadline (their 90% bound is past
    it), or, on an on-site job whose remote response is still owed, set off after the response is
    due (the technician's first action is the response). A page reading "around Fri 08:00" beside
    "due Thu 10:58, on track" would contradict itself; the client's pages, emails, the API and the
    staff's board and ticket page all show this state.
    """
    promises: list[sla_rules.PromiseOutlook] = []
    if entry is not None and ticket.status not in TicketStatus.DONE and not ticket.sla_best_effort:
        due = sla.due_shown(ticket)
        if due is not None:
            shown = sla_rules.ARRIVAL if ticket.onsite_needed and due == ticket.arrival_due_at else sla_rules.RESPONSE
            promises = sla_rules.owed_promises(
                shown, due, entry.eta_median, entry.eta_p90, flagged=entry.sla_at_risk,
                response_owed=sla.response_beside(ticket, due)[1],
                set_off_median=entry.set_off_median, set_off_p90=entry.set_off_p90)
    return sla_rules.owed_outlook(ticket.sla_state, promises)


def shown_sla_state(ticket: Ticket, entry: Optional[QueueEntry]) -> Optional[str]:
    """The state shown everywhere (`sla_outlook`)."""
    return sla_outlook(ticket, entry).state


def _view(ticket: Ticket, entry: Optional[QueueEntry], timeline: tuple[TimelineItem, ...] = ()) -> TicketStatusView:
    placed = entry is not None and ticket.status not in NO_PLACE
    planned = entry.technician if entry is not None and ticket.technician is None else None
    # Waiting tickets carry the dispatch estimate; an en-route ticket the arrival given when the technician set off.
    estimated = entry is not None and ticket.status not in TicketStatus.DONE
    due = sla.due_shown(ticket)
    response_missed, response_owed = sla.response_beside(ticket, due)
    outlook = sla_outlook(ticket, entry)
    closed = ""
    if estimated and entry is not None and entry.eta_median is not None:
        closed = holidays_words(settings.business_calendar().holidays_closed(entry.computed_at, entry.eta_median))
    return TicketStatusView(
        id=ticket.id,
        title=ticket.title,
        status=ticket.status,
        status_label=ticket.status_label,
        position=entry.position if placed else None,
        ahead=entry.ahead if placed else None,
        eta_median=entry.eta_median if estimated else None,
        eta_p90=entry.eta_p90 if estimated else None,
        eta_kind="arrival" if ticket.onsite_needed else "remote_start",
        waits_for_coverage=bool(entry is not None and COVERAGE_NOTE in (entry.note or "")),
        holidays_closed=closed,
        waits_for_skill=bool(estimated and entry is not None and OFF_DUTY_NOTE in (entry.note or "")),
        note=(entry.note or "") if entry is not None else "",
        sla_due_at=due,
        response_missed_due_at=response_missed,
        response_pending_due_at=response_owed,
        client_deadline=ticket.client_deadline if ticket.is_open else None,
        sla_state=outlook.state,
        sla_outlook=outlook,
        sla_best_effort=ticket.sla_best_effort,
        technician=ticket.technician.user.first_name if ticket.technician is not None else None,
        likely_technician=planned.user.first_name if planned is not None and ticket.is_open else None,
        reasons=tuple(entry.client_reasons or ()) if entry is not None and ticket.is_open else (),
        updated_at=max(ticket.updated_at, entry.computed_at) if entry is not None else ticket.updated_at,
        opened_at=ticket.opened_at,
        is_open=ticket.is_open,
        follows_ticket_id=ticket.follows_ticket_id,
        generation=entry.generation if entry is not None else 0,
        timeline=timeline,
        resolved_at=ticket.resolved_at,
        missed_before_best_effort=_missed_before_best_effort(ticket),
    )


def _missed_before_best_effort(ticket: Ticket) -> tuple[tuple[str, datetime], ...]:
    if not ticket.sla_best_effort or ticket.sla_promise_ended_at is None:
        return ()
    missed = [("response", ticket.response_breached_at), ("arrival", ticket.arrival_breached_at)]
    return tuple((which, due) for which, due in missed if due is not None)


def _entries(ticket_ids: list[int]) -> dict[int, QueueEntry]:
    if not ticket_ids:
        return {}
    # The planned technician's name is shown: load it with the entry, not one lazy query per row.
    rows = db.session.scalars(select(QueueEntry).where(QueueEntry.ticket_id.in_(ticket_ids))
                              .options(joinedload(QueueEntry.technician).joinedload(Technician.user)))
    return {row.ticket_id: row for row in rows}


def public_timeline(ticket_id: int) -> tuple[TimelineItem, ...]:
    """Only public events: staff notes and alerts never reach the client."""
    # Only the shown columns: no ORM objects, and the events' JSON detail is never decoded.
    events = db.session.execute(
        select(TicketEvent.at, TicketEvent.kind, TicketEvent.message)
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.public.is_(True))
        .order_by(TicketEvent.at, TicketEvent.id)
    )
    return tuple(TimelineItem(at=at, kind=kind, message=message) for at, kind, message in events)


# Bump when the wording or shape of what a client is shown changes, so old ETags stop matching.
CHANGE_TAG_VERSION = "4"


@functools.cache
def _change_tag_query() -> Select:
    """Built once per process: constructing the aliased joins costs more than running the query."""
    assigned, assigned_user = aliased(Technician), aliased(User)
    planned, planned_user = aliased(Technician), aliased(User)
    return (
        select(
            Ticket.version, Ticket.updated_at, Ticket.status, Ticket.sla_state,
            select(QueueState.generation).where(QueueState.id == queue.STATE_ID).scalar_subquery(),
            select(func.max(TicketEvent.id)).where(TicketEvent.ticket_id == Ticket.id, TicketEvent.public.is_(True))
            .correlate(Ticket).scalar_subquery(),
            assigned_user.full_name, planned_user.full_name,
            # live.json's phrases give times in the organisation's zone: a new zone is a new answer.
            Organisation.timezone,
        )
        .select_from(Ticket)
        .join(Organisation, Organisation.id == Ticket.organisation_id)
        .outerjoin(assigned, assigned.id == Ticket.technician_id)
        .outerjoin(assigned_user, assigned_user.id == assigned.user_id)
        .outerjoin(QueueEntry, QueueEntry.ticket_id == Ticket.id)
        .outerjoin(planned, planned.id == QueueEntry.technician_id)
        .outerjoin(planned_user, planned_user.id == planned.user_id)
        .where(Ticket.id == bindparam("ticket_id"), Ticket.organisation_id == bindparam("organisation_id"))
    )


def change_tag(organisation_id: int, ticket_id: int) -> Optional[str]:
    """A cheap fingerprint of everything the ticket's view reads, in one small query; None = no such ticket here.

    Why: live.json and the API are polled; an unchanged ticket must answer 304 without loading the
    timeline or presenting anything. The view reads the ticket row (its version and updated_at move
    on every change), the stored queue (rewritten only by a recompute, which bumps the queue
    generation), its public events and the technicians' names; each has a term here, and so has the
    organisation's time zone, which the client's phrases are written in.
    """
    row = db.session.execute(_change_tag_query(), {"ticket_id": ticket_id, "organisation_id": organisation_id}).first()
    if row is None:
        return None
    raw = "|".join(str(value) for value in (CHANGE_TAG_VERSION, ticket_id, *row))
    return hashlib.sha1(raw.encode()).hexdigest()


def ticket_view(organisation_id: int, ticket_id: int, with_timeline: bool = False) -> Optional[TicketStatusView]:
    """None when the organisation has no such ticket (callers answer 404: it does not exist for them)."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.organisation_id != organisation_id:
        return None
    entry = _entries([ticket.id]).get(ticket.id)
    return _view(ticket, entry, public_timeline(ticket.id) if with_timeline else ())


DONE_LISTED = 200


@dataclass(frozen=True)
class DoneKey:
    """A place in the history of resolved and closed tickets, which is ordered newest first by the
    time each ended, then by id: the last ticket of a page, after which the next page starts."""

    resolved_at: datetime
    ticket_id: int


@dataclass(frozen=True)
class TicketListing:
    """Every open ticket, and the newest `done_limit` resolved or closed ones (`more_done`: older ones exist,
    from `next_after` on)."""

    views: list[TicketStatusView]
    done_limit: int
    more_done: bool
    next_after: Optional[DoneKey] = None


def _done_order(ticket: Ticket) -> tuple[datetime, int]:
    return ticket.resolved_at, ticket.id


def tickets_for(organisation_id: int, open_only: Optional[bool] = None, done_limit: int = DONE_LISTED,
                after: Optional[DoneKey] = None) -> TicketListing:
    """The organisation's tickets: open ones in queue order first, then the most recently ended resolved
    and closed ones; with `after`, only the resolved and closed ones that ended before that place.

    Why the cap is on the history only: an open ticket is work still owed to the client, and a
    busy organisation's old outage must never drop off its list because newer ones were fixed.
    Why the history is ordered by end time and id: neither changes while a ticket stays done, so
    walking it page by page (keyset, `after`) neither repeats nor skips a ticket; one that ends
    meanwhile goes to the top, before the first page. One statement whatever the counts: the open
    tickets and one page of history (one more than shown, to know if older ones exist, read
    backwards along the index on organisation, end time and id).
    """
    owned = Ticket.organisation_id == organisation_id
    history = select(Ticket).where(owned, Ticket.status.in_(TicketStatus.DONE), Ticket.resolved_at.is_not(None))
    if after is not None:
        # The plain bound lets any planner seek the index; the row comparison breaks ties on id.
        history = history.where(Ticket.resolved_at <= after.resolved_at,
                                tuple_(Ticket.resolved_at, Ticket.id) < tuple_(after.resolved_at, after.ticket_id))
    history = history.order_by(Ticket.resolved_at.desc(), Ticket.id.desc()).limit(done_limit + 1)
    waiting = select(Ticket).where(owned, Ticket.status.in_(TicketStatus.OPEN))
    if open_only is True:
        statement = waiting
    elif open_only is False or after is not None:
        statement = history
    else:
        # SQLite takes ORDER BY and LIMIT in a compound query only on the whole: the page is a subquery.
        statement = select(Ticket).from_statement(union_all(waiting, select(history.subquery())))
    tickets = list(db.session.scalars(statement))
    done = sorted((t for t in tickets if not t.is_open), key=_done_order, reverse=True)
    more_done = len(done) > done_limit
    done = done[:done_limit]
    entries = _entries([t.id for t in tickets if t.is_open] + [t.id for t in done])
    big = 10**9
    open_views = sorted((_view(t, entries.get(t.id)) for t in tickets if t.is_open),
                        key=lambda v: (v.position if v.position is not None else big, -v.opened_at.timestamp(), -v.id))
    views = open_views + [_view(t, entries.get(t.id)) for t in done]
    next_after = DoneKey(*_done_order(done[-1])) if more_done and done else None
    return TicketListing(views, done_limit, more_done, next_after)


def queue_length() -> int:
    """How many tickets wait in line (all organisations: only the count is shown, never whose).

    Read from the queue state the last recompute saved (a one-row lookup) rather than counting
    the stored queue on every page view; both are written in the same transaction.
    """
    return int(db.session.scalar(select(QueueState.waiting_count).where(QueueState.id == queue.STATE_ID)) or 0)
