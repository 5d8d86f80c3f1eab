"""The live queue: triage then dispatch over every waiting ticket, saved so pages and the API only read.

`recompute(now)` runs one at a time per database: it starts by updating the single
`queue_state` row, which is a row lock on PostgreSQL (other workers' recomputes wait for it)
and the write lock on SQLite. Everything it reads afterwards was committed before it got the
lock, and a change committed meanwhile triggers its own recompute after this one, so no
update is lost. Serialization failures, deadlocks and a busy SQLite file are retried.

`quote(...)` and `quote_upgrade(...)` run the very same computation on modified inputs and
write nothing: the what-if panels of clients and dispatchers.

SQL per recompute is bounded (a fixed number of statements, whatever the number of tickets):
tickets, plans, technicians with shifts and on-call periods, effort history, the previous
entries and the bulk writes.
"""
from __future__ import annotations

import logging
import random
import time as _time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Optional, Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import selectinload

from ..domain.calendar import CoverageCalendar, day_span_minutes
from ..domain.dispatch import (
    ArrivalEstimate, ArrivalForecast, DispatchTicket, TechnicianInput, forecast_from_history, improve_near_term,
    plan_dispatch,
)
from ..domain.effort import EffortEstimate, EffortModel
from ..domain.sla import ARRIVAL, RESPONSE, OwedOutlook, SlaState, due_times, owed_outlook, owed_promises
from ..domain.travel import Location, TravelModel
from ..domain.triage import (
    Impact, TriageResult, TriageTicket, TriageWeights, delay_cost_per_hour, promise_points, rank_tickets,
)
from ..extensions import db
from ..models import (
    OnCallPeriod,
    Plan,
    QueueEntry,
    QueueState,
    Technician,
    Ticket,
    TicketEvent,
    TicketStatus,
    TimeOff,
)
from . import notifications, settings, sla
from .organisations import known_zone

log = logging.getLogger("portal.queue")
STATE_ID = 1
MAX_ATTEMPTS = 8
HISTORY_LIMIT = 2000
FORECAST_DAYS = 28
ON_CALL_HORIZON = timedelta(days=31)
RETRY_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


# --- inputs as plain values -----------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFacts:
    """What the engines need to know about one open ticket (a snapshot: what-ifs replace fields freely)."""

    id: int
    organisation_id: int
    status: str
    is_contract: bool
    plan_name: str
    plan_slug: Optional[str]
    impact: Impact
    revenue_per_hour: float
    client_deadline: Optional[datetime]
    safety_critical: bool
    sla_due: Optional[datetime]
    best_effort: bool
    effort: EffortEstimate
    opened_at: datetime
    override_position: Optional[int]
    override_reason: Optional[str]
    required_skill: Optional[str]
    onsite: bool
    site: Optional[Location]
    coverage: CoverageCalendar
    technician_id: Optional[int]
    # Which promise `sla_due` is (ARRIVAL on site, else RESPONSE), and the remote response still owed
    # beside an on-site arrival: judged against when the technician sets off.
    due_promise: str = RESPONSE
    response_owed: Optional[datetime] = None
    client_tz: Optional[str] = None


@dataclass(frozen=True)
class QueueInputs:
    now: datetime
    tz: str
    weights: TriageWeights
    waiting: tuple[TicketFacts, ...]
    technicians: tuple[TechnicianInput, ...]
    technician_names: dict[int, str]
    travel: TravelModel
    forecast: Optional[ArrivalForecast] = None


@dataclass(frozen=True)
class Placed:
    facts: TicketFacts
    triage: TriageResult
    estimate: ArrivalEstimate


@dataclass(frozen=True)
class Quote:
    ticket_id: int
    position: Optional[int]
    ahead: Optional[int]
    eta_median: Optional[datetime]
    eta_p90: Optional[datetime]
    technician_name: Optional[str]
    sla_due: Optional[datetime]
    best_effort: bool
    sla_at_risk: bool = False
    note: str = ""
    due_promise: str = RESPONSE
    response_owed: Optional[datetime] = None
    set_off_median: Optional[datetime] = None
    set_off_p90: Optional[datetime] = None

    def outlook(self, clock_state: str = SlaState.ON_TRACK.value) -> OwedOutlook:
        """What this quote's own estimate says of each promise it would owe (`domain.sla.owed_promises`),
        made no better than the ticket's SLA clock (`clock_state`; on track for a clock an upgrade restarts):
        a plan quoting "on site by 10:00" must not hide a remote response due at 08:30 that its
        technician sets off too late for, nor a dispatcher's preview a promise it would break."""
        if self.best_effort or self.sla_due is None:
            return owed_outlook(clock_state, [])
        return owed_outlook(clock_state, owed_promises(
            self.due_promise, self.sla_due, self.eta_median, self.eta_p90, flagged=self.sla_at_risk,
            response_owed=self.response_owed, set_off_median=self.set_off_median, set_off_p90=self.set_off_p90))


def _location(lat: Optional[float], lon: Optional[float]) -> Optional[Location]:
    return Location(lat, lon) if lat is not None and lon is not None else None


def _outstanding_due(ticket: Ticket) -> Optional[datetime]:
    """The promise still to keep: arrival for on-site work, else the remote response; none for best effort."""
    if ticket.sla_best_effort:
        return None
    if ticket.onsite_needed and ticket.arrival_due_at is not None and ticket.arrived_at is None:
        return ticket.arrival_due_at
    if ticket.first_response_at is None:
        return ticket.response_due_at
    return None


def _coverage(plan: Optional[Plan]) -> CoverageCalendar:
    """When a ticket may be served: its plan's hours; a contract with after-hours emergencies is served any time."""
    if plan is not None and plan.is_contract and plan.after_hours_emergencies:
        return CoverageCalendar.always()
    return settings.plan_calendar(plan if plan is not None and plan.is_contract else None)


def _effort(model: EffortModel, ticket: Ticket, plan_slug: Optional[str]) -> EffortEstimate:
    learned = model.estimate(ticket.category, plan_slug)
    if ticket.effort_minutes:
        spread = learned.p90_minutes / learned.median_minutes if learned.median_minutes > 0 else 1.5
        return EffortEstimate(float(ticket.effort_minutes), float(ticket.effort_minutes) * max(spread, 1.0))
    return learned


def _history(now: datetime) -> tuple[EffortModel, Optional[ArrivalForecast]]:
    """What the firm's resolved and recent tickets say: how long jobs take, and how fast new ones
    open (the forecast that lets each range allow for tickets opened later that overtake).

    No forecast before the first resolved ticket: the size of a typical job is not known yet.
    """
    rows = db.session.execute(
        select(Ticket.category, Plan.slug, Ticket.first_response_at, Ticket.arrived_at, Ticket.resolved_at)
        .outerjoin(Plan, Ticket.sla_plan_id == Plan.id)
        .where(Ticket.resolved_at.is_not(None), Ticket.first_response_at.is_not(None))
        .order_by(Ticket.resolved_at.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    history = []
    jobs = []
    for category, slug, responded, arrived, resolved in rows:
        started = arrived or responded
        history.append((category, slug, (resolved - started).total_seconds() / 60.0))
        jobs.append(max(0.0, (resolved - responded).total_seconds() / 60.0))  # the drive included
    model = EffortModel.learn(history)
    if not jobs:
        return model, None
    since = now - timedelta(days=FORECAST_DAYS)
    openings = db.session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.opened_at >= since, Ticket.opened_at <= now)
    )
    return model, forecast_from_history(int(openings or 0), FORECAST_DAYS, sum(jobs) / len(jobs))


def _load_open_tickets() -> list[Ticket]:
    return list(
        db.session.scalars(
            select(Ticket)
            .options(selectinload(Ticket.organisation), selectinload(Ticket.sla_plan), selectinload(Ticket.requester))
            .where(Ticket.status.in_(TicketStatus.OPEN))
            .order_by(Ticket.id)
        )
    )


def _facts(ticket: Ticket, model: EffortModel) -> TicketFacts:
    plan = ticket.sla_plan
    org = ticket.organisation
    is_contract = plan is not None and plan.is_contract
    due = _outstanding_due(ticket)
    return TicketFacts(
        id=ticket.id,
        organisation_id=ticket.organisation_id,
        status=ticket.status,
        is_contract=is_contract,
        plan_name=plan.name if is_contract else "Break/Fix",
        plan_slug=plan.slug if plan is not None else None,
        impact=Impact(ticket.impact) if ticket.impact in Impact._value2member_map_ else Impact.PERSON,
        revenue_per_hour=float(ticket.revenue_at_risk_per_hour or 0),
        client_deadline=ticket.client_deadline,
        safety_critical=ticket.safety_critical,
        sla_due=due,
        best_effort=ticket.sla_best_effort,
        effort=_effort(model, ticket, plan.slug if plan is not None else None),
        opened_at=ticket.opened_at,
        override_position=ticket.override_position,
        override_reason=ticket.override_reason,
        required_skill=ticket.required_skill,
        onsite=ticket.onsite_needed,
        site=_location(org.latitude, org.longitude),
        coverage=_coverage(plan),
        technician_id=ticket.technician_id,
        due_promise=ARRIVAL if due is not None and due == ticket.arrival_due_at and ticket.onsite_needed else RESPONSE,
        response_owed=sla.response_beside(ticket, due)[1],
        client_tz=org.timezone if known_zone(org.timezone) else None,
    )


def _remaining(effort: EffortEstimate, started: Optional[datetime], now: datetime) -> tuple[float, float]:
    """Minutes of work left on a job in hand (median, p90), given how long it has run."""
    elapsed = (now - started).total_seconds() / 60.0 if started else 0.0
    left = effort.remaining_after(elapsed)
    return left.median_minutes, left.p90_minutes


def _technicians(now: datetime, tz: str, active_jobs: Sequence[tuple[Ticket, TicketFacts]],
                 travel: TravelModel) -> tuple[list[TechnicianInput], dict[int, str]]:
    """Active technicians with their shifts (weekly, firm time zone, no public holidays) plus on-call periods,
    minus their time off, free when their current jobs' remaining work (and drive, if en route) is done."""
    techs = list(
        db.session.scalars(
            select(Technician)
            .options(selectinload(Technician.user), selectinload(Technician.shifts))
            .where(Technician.active.is_(True))
            .order_by(Technician.id)
        )
    )
    periods = db.session.scalars(
        select(OnCallPeriod).where(OnCallPeriod.ends_at > now, OnCallPeriod.starts_at < now + ON_CALL_HORIZON)
    ).all()
    on_call: dict[int, list[tuple[datetime, datetime]]] = {}
    for period in periods:
        on_call.setdefault(period.technician_id, []).append((period.starts_at, period.ends_at))
    away: dict[int, list[tuple[datetime, datetime]]] = {}
    for off in db.session.scalars(select(TimeOff).where(TimeOff.ends_at > now)):
        away.setdefault(off.technician_id, []).append((off.starts_at, off.ends_at))
    jobs: dict[int, list[tuple[Ticket, TicketFacts]]] = {}
    for ticket, facts in active_jobs:
        if ticket.technician_id is not None:
            jobs.setdefault(ticket.technician_id, []).append((ticket, facts))
    holidays = settings.firm_holidays()
    result: list[TechnicianInput] = []
    names: dict[int, str] = {}
    for tech in techs:
        weekly: dict[int, list] = {}
        for shift in tech.shifts:
            first, last = day_span_minutes(shift.starts, shift.ends)
            if last > first:
                weekly.setdefault(shift.weekday, []).append((shift.starts, shift.ends))
        try:
            availability = CoverageCalendar(tz, weekly, holidays=holidays, extra=on_call.get(tech.id, ()),
                                            excluded=away.get(tech.id, ()))
        except ValueError as error:  # overlapping shifts typed by hand: skip the technician, say why
            log.warning("technician %s has unusable shifts: %s", tech.id, error)
            continue
        location = _location(
            tech.current_latitude if tech.current_latitude is not None else tech.home_latitude,
            tech.current_longitude if tech.current_longitude is not None else tech.home_longitude,
        )
        busy_median = busy_p90 = 0.0
        for ticket, facts in jobs.get(tech.id, []):
            started = ticket.arrived_at if ticket.status == TicketStatus.ON_SITE else ticket.first_response_at
            if ticket.status == TicketStatus.EN_ROUTE:
                drive = travel.estimate(location, facts.site)
                busy_median += drive.median_minutes
                busy_p90 += drive.p90_minutes
                started = None
            median, p90 = _remaining(facts.effort, started, now)
            busy_median += median
            busy_p90 += p90
            if facts.onsite and facts.site is not None and ticket.status in (TicketStatus.EN_ROUTE, TicketStatus.ON_SITE):
                location = facts.site
        names[tech.id] = tech.user.first_name
        result.append(TechnicianInput(
            id=tech.id, name=tech.name, skills=frozenset(tech.skills or ()), availability=availability,
            free_at=now + timedelta(minutes=busy_median), free_at_p90=now + timedelta(minutes=busy_p90),
            location=location,
        ))
    return result, names


@dataclass
class Loaded:
    """The loaded state: the engines' inputs plus the ORM tickets the writer needs."""

    inputs: QueueInputs
    tickets: dict[int, Ticket]
    other_open: list[Ticket]


def load(now: datetime) -> Loaded:
    """Read everything the engines need (no writes)."""
    tz = settings.firm_timezone()
    travel = settings.travel_model()
    model, forecast = _history(now)
    tickets = _load_open_tickets()
    waiting: list[TicketFacts] = []
    active: list[tuple[Ticket, TicketFacts]] = []
    other: list[Ticket] = []
    for ticket in tickets:
        facts = _facts(ticket, model)
        if ticket.status in TicketStatus.WAITING:
            waiting.append(facts)
        else:
            other.append(ticket)
            if ticket.status in TicketStatus.ACTIVE:
                active.append((ticket, facts))
    technicians, names = _technicians(now, tz, active, travel)
    inputs = QueueInputs(now=now, tz=tz, weights=settings.triage_weights(), waiting=tuple(waiting),
                         technicians=tuple(technicians), technician_names=names, travel=travel,
                         forecast=forecast)
    return Loaded(inputs, {t.id: t for t in tickets}, other)


# --- the computation (pure given the inputs) ------------------------------------------------------------


def compute(inputs: QueueInputs) -> list[Placed]:
    """Triage, then dispatch in triage order; the result is in queue order (position 1 first)."""
    if not inputs.waiting:
        return []
    triage_input = [
        TriageTicket(
            id=f.id, is_contract=f.is_contract, plan_name=f.plan_name, impact=f.impact,
            revenue_per_hour=f.revenue_per_hour, client_deadline=f.client_deadline,
            safety_critical=f.safety_critical, sla_due=f.sla_due, effort_minutes=f.effort.median_minutes,
            opened_at=f.opened_at, override_position=f.override_position, override_reason=f.override_reason,
            client_tz=f.client_tz,
        )
        for f in inputs.waiting
    ]
    ranked = rank_tickets(triage_input, inputs.weights, inputs.now, inputs.tz)
    by_id = {f.id: f for f in inputs.waiting}
    rank_of = {r.ticket_id: r for r in ranked}
    queue = [
        DispatchTicket(
            id=f.id, required_skill=f.required_skill, onsite=f.onsite, site=f.site, effort=f.effort,
            coverage=f.coverage, sla_due=f.sla_due, pinned_technician_id=f.technician_id,
        )
        for f in (by_id[r.ticket_id] for r in ranked)
    ]
    # The next few jobs may swap where that lowers the expected cost of delay; pins and
    # contract-before-break/fix stay as triage set them.
    queue = improve_near_term(
        queue, inputs.technicians, inputs.now, inputs.travel,
        {r.ticket_id: delay_cost_per_hour(r) for r in ranked},
        {f.id: f.is_contract for f in inputs.waiting},
        fixed={f.id for f in inputs.waiting if f.override_position is not None},
        share_before_due=inputs.weights.cost_before_due_share,
        promise={r.ticket_id: promise_points(r) for r in ranked},
        fastpass={f.id for f in inputs.waiting if f.is_contract},
    )
    ordered = [by_id[d.id] for d in queue]
    estimates = plan_dispatch(queue, inputs.technicians, inputs.now, inputs.travel, inputs.forecast)
    placed = [Placed(f, rank_of[f.id], e) for f, e in zip(ordered, estimates)]
    placed.sort(key=lambda p: (p.estimate.position, p.triage.rank))
    return placed


# --- recompute and save ----------------------------------------------------------------------------------


def _retryable(error: Exception) -> bool:
    if isinstance(error, IntegrityError):  # two workers creating the queue_state row at once
        return True
    original = getattr(error, "orig", None)
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if sqlstate in RETRY_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and "locked" in str(original).lower()


def _lock_state() -> int:
    """Take the queue lock (row lock / SQLite write lock) by bumping the generation; returns the new one."""
    bumped = db.session.execute(
        update(QueueState).where(QueueState.id == STATE_ID).values(generation=QueueState.generation + 1)
        .execution_options(synchronize_session=False)
    )
    if bumped.rowcount == 0:
        db.session.execute(insert(QueueState).values(id=STATE_ID, generation=1, waiting_count=0))
    return int(db.session.scalar(select(QueueState.generation).where(QueueState.id == STATE_ID)))


def recompute(now: datetime, pin_changed: Optional[int] = None, plan_changed: Optional[int] = None) -> int:
    """Re-run triage and dispatch over every open ticket and save the result; returns the generation.

    `pin_changed`: the ticket whose pin a dispatcher just set or lifted, which is then the reason
    the timelines give for the moves. `plan_changed`: the organisation whose contract just changed,
    whose own tickets then give that as the reason they moved (an emergency upgrade)."""
    db.session.commit()  # start from a fresh transaction: the lock must be the first thing it does
    for attempt in range(MAX_ATTEMPTS):
        try:
            generation = _lock_state()
            _save(load(now), now, generation, pin_changed, plan_changed)
            db.session.commit()
            return generation
        except DBAPIError as error:
            db.session.rollback()
            if attempt == MAX_ATTEMPTS - 1 or not _retryable(error):
                raise
            log.info("queue recompute retried after %s", type(error.orig).__name__ if error.orig else error)
            _time.sleep(random.uniform(0.01, 0.05) * (2 ** attempt))
    raise AssertionError("unreachable")


def _move_reason(ticket_id: int, old: int, new: int, left_ahead: int, arrived_urgent: int, arrived_sooner: int,
                 pin_changed: Optional[int], own_pin: Optional[str], own_plan_changed: bool = False) -> str:
    """Why a ticket moved, in the client's words.

    When a dispatcher set or lifted a pin (`pin_changed`, the ticket whose pin it was), that is the
    reason: the pin's own reason for that ticket, "our dispatcher moved another ticket" for the
    others (never another ticket's reason, nor that a deadline came nearer). Otherwise a pin in
    force is not the reason for a move: what changed is (tickets ahead started or closed, newcomers).
    A newcomer ahead is "more urgent" only when triage ranks it higher; one ranked lower is ahead
    because a free technician can start it sooner (the place is the order of expected starts).
    A ticket whose own organisation's contract just changed (`own_plan_changed`) moved because of it.
    """
    if pin_changed == ticket_id:
        if own_pin is None:
            return "our dispatcher returned it to its usual place"
        return f"placed there by our dispatcher: {own_pin}" if own_pin else "placed there by our dispatcher"
    if pin_changed is not None:
        return "our dispatcher moved another ticket " + ("ahead of yours" if new > old else "behind yours")
    if own_plan_changed:
        # the client's own upgrade (or a contract that ended) moved it, not other tickets or technicians
        return "your organisation's plan changed"
    # Every place of the move is accounted for: what left ahead, what came in ahead, and existing
    # tickets that crossed it (the rest), so "11th to 13th" is never explained by one ticket.
    crossed = (new - old) - (arrived_urgent + arrived_sooner - left_ahead)
    later = [
        _count(arrived_urgent, "more urgent ticket{s} came in"),
        _count(arrived_sooner, "new ticket{s}, not more urgent than yours, can be started sooner by a free "
                               "technician with the right skills"),
        _count(crossed, "waiting ticket{s} went ahead of yours: {their} deadline{s} came nearer or a free "
                        "specialist can start {them} sooner"),
    ]
    earlier = [
        _count(left_ahead, "ticket{s} ahead of yours {were} started or closed"),
        _count(-crossed, "ticket{s} ahead of yours {are} now behind it: a technician became free sooner than "
                         "planned or {their} priority changed"),
    ]
    parts = [part for part in (later + earlier if new > old else earlier + later) if part]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _count(number: int, words: str) -> str:
    """'1 ticket ... was', '2 tickets ... were'; nothing for none (or a count in the other direction)."""
    if number <= 0:
        return ""
    one = number == 1
    return f"{number} " + words.format(s="" if one else "s", were="was" if one else "were", are="is" if one else "are",
                                       their="its" if one else "their", them="it" if one else "them")


def _ranked_lower_ahead(ranks: list[int]) -> list[int]:
    """For each ticket in queue order, how many placed before it have a lower triage rank (a larger
    number): a Fenwick tree over the ranks, O(n log n) for a queue of any length."""
    size = max(ranks, default=0)
    tree = [0] * (size + 1)
    result = []
    for seen, rank in enumerate(ranks):
        at_or_above, i = 0, rank
        while i > 0:
            at_or_above += tree[i]
            i -= i & -i
        result.append(seen - at_or_above)
        i = rank
        while i <= size:
            tree[i] += 1
            i += i & -i
    return result


def _en_route_arrivals(ticket_ids: list[int], now: datetime) -> dict[int, tuple[Optional[datetime], Optional[datetime]]]:
    """Each technician's arrival: the estimate given when they set off (the 'en route' event), read
    as given how long the drive has lasted so far.

    Why: a drive past the time given is not over; "expected around 10:29" read at 10:42 is neither
    true nor useful. The drive is a lognormal (the median and 90% bound given at the start) and what
    is left of it comes from `EffortEstimate.remaining_after`, as for a job in hand.
    """
    if not ticket_ids:
        return {}
    rows = db.session.execute(
        select(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.detail)
        .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind == "status")
        .order_by(TicketEvent.id)
    ).all()
    given: dict[int, tuple[datetime, Optional[str], Optional[str]]] = {}
    for ticket_id, at, detail in rows:
        if isinstance(detail, dict) and detail.get("to") == TicketStatus.EN_ROUTE:
            given[ticket_id] = (at, detail.get("arrival_median"), detail.get("arrival_p90"))
    found: dict[int, tuple[Optional[datetime], Optional[datetime]]] = {}
    for ticket_id, (left_at, median_text, p90_text) in given.items():
        median = datetime.fromisoformat(median_text) if median_text else None
        p90 = datetime.fromisoformat(p90_text) if p90_text else None
        if median is not None and p90 is not None and median > left_at and p90 >= median and now > left_at:
            drive = EffortEstimate((median - left_at).total_seconds() / 60.0, (p90 - left_at).total_seconds() / 60.0)
            rest = drive.remaining_after((now - left_at).total_seconds() / 60.0)
            median, p90 = now + timedelta(minutes=rest.median_minutes), now + timedelta(minutes=rest.p90_minutes)
        found[ticket_id] = (median, p90)
    return found


ACTIVE_NOTES = {
    TicketStatus.EN_ROUTE: "Your technician is on the way.",
    TicketStatus.ON_SITE: "Your technician is on site.",
    TicketStatus.IN_PROGRESS: "A technician is working on it remotely.",
    TicketStatus.WAITING_ON_CLIENT: "Waiting on you: the SLA clock is paused until you answer.",
}


def _save(loaded: Loaded, now: datetime, generation: int, pin_changed: Optional[int] = None,
          plan_changed: Optional[int] = None) -> None:
    placed = compute(loaded.inputs)
    old = {e.ticket_id: e for e in db.session.scalars(select(QueueEntry))}
    old_waiting = sorted(
        (e for e in old.values() if e.position is not None), key=lambda e: (e.position, e.ticket_id)
    )
    new_ids = {p.facts.id for p in placed}
    # Prefix counts: how many tickets ahead (old order) left the queue; how many newcomers ahead (new order).
    left_before: dict[int, int] = {}
    count = 0
    for e in old_waiting:
        left_before[e.ticket_id] = count
        if e.ticket_id not in new_ids:
            count += 1
    old_waiting_ids = {e.ticket_id for e in old_waiting}
    # Newcomers by (place, triage rank): few per recompute, so each moved ticket looks at them all.
    newcomers = [(p.estimate.position, p.triage.rank) for p in placed if p.facts.id not in old_waiting_ids]

    never_placed = [p.facts.id for p in placed if p.facts.id not in old]
    triaged_before = set(
        db.session.scalars(
            select(TicketEvent.ticket_id).where(TicketEvent.ticket_id.in_(never_placed), TicketEvent.kind == "triaged")
        )
    ) if never_placed else set()

    rows: list[dict] = []
    events: list[dict] = []
    names = loaded.inputs.technician_names
    lower_ahead = _ranked_lower_ahead([p.triage.rank for p in placed])
    for p, lower in zip(placed, lower_ahead):
        t, e = p.triage, p.estimate
        reasons = list(t.client_reasons)
        if lower:
            # The place is the order of expected starts: say why tickets triaged below this one are
            # ahead of it, or "served before break/fix calls" would read as untrue beside them.
            reasons.append(f"{lower} of the tickets ahead {'ranks' if lower == 1 else 'rank'} below yours but can be "
                           "started sooner, by a technician free earlier or with the skill they need")
        row = dict(
            ticket_id=p.facts.id, organisation_id=p.facts.organisation_id, position=e.position, ahead=e.ahead,
            technician_id=e.technician_id if e.technician_id in names else None,
            eta_median=e.median, eta_p90=e.p90, set_off_median=e.set_off_median, set_off_p90=e.set_off_p90,
            sla_at_risk=e.sla_at_risk, score=float(t.score), note=e.note,
            client_reasons=reasons, staff_reasons=list(t.staff_reasons), computed_at=now,
            generation=generation,
        )
        rows.append(row)
        before = old.get(p.facts.id)
        ticket = loaded.tickets[p.facts.id]
        place = notifications.place_words(e.position, e.ahead)
        why = "; ".join(t.client_reasons)
        if before is None and p.facts.id not in triaged_before:
            events.append(dict(ticket_id=p.facts.id, at=now, kind="triaged", public=True,
                               message=f"Triaged: {place}" + (f" Why: {why}." if why else ""),
                               detail={"position": e.position, "ahead": e.ahead, "reasons": list(t.client_reasons),
                                       "staff_reasons": list(t.staff_reasons), "score": float(t.score)}))
            from . import tickets as ticket_service

            decision = ticket_service.decide_after_hours(ticket, ticket.opened_at)
            notifications.ticket_received(ticket, QueueEntry(**row), now,
                                          after_hours_message="" if decision.message.startswith("Within")
                                          else decision.message)
        elif before is not None and before.position is None:
            events.append(dict(ticket_id=p.facts.id, at=now, kind="re-ranked", public=True,
                               message=f"Back in the queue: {place}",
                               detail={"from": None, "to": e.position}))
        elif before is not None and before.position != e.position:
            own_pin = (p.facts.override_reason or "") if p.facts.override_position is not None else None
            ahead = [rank for place, rank in newcomers if place < e.position]
            reason = _move_reason(p.facts.id, before.position, e.position, left_before.get(p.facts.id, 0),
                                  sum(1 for rank in ahead if rank < t.rank), sum(1 for rank in ahead if rank > t.rank),
                                  pin_changed, own_pin,
                                  own_plan_changed=plan_changed is not None and p.facts.organisation_id == plan_changed)
            events.append(dict(
                ticket_id=p.facts.id, at=now, kind="re-ranked", public=True,
                message=f"Moved from {notifications.ordinal(before.position)} to {notifications.ordinal(e.position)} "
                        f"in line: {reason}.",
                detail={"from": before.position, "to": e.position, "reason": reason},
            ))

    arrivals = _en_route_arrivals([t.id for t in loaded.other_open if t.status == TicketStatus.EN_ROUTE], now)
    for ticket in loaded.other_open:
        median, p90 = arrivals.get(ticket.id, (None, None))
        rows.append(dict(
            ticket_id=ticket.id, organisation_id=ticket.organisation_id, position=None, ahead=None,
            technician_id=ticket.technician_id, eta_median=median, eta_p90=p90, set_off_median=None,
            set_off_p90=None, sla_at_risk=False, score=0.0,
            note=ACTIVE_NOTES.get(ticket.status, ""), client_reasons=[], staff_reasons=[], computed_at=now,
            generation=generation,
        ))

    db.session.execute(delete(QueueEntry).execution_options(synchronize_session=False))
    if rows:
        db.session.execute(QueueEntry.__table__.insert(), rows)  # Core executemany: no ORM bookkeeping
    if events:
        db.session.execute(TicketEvent.__table__.insert(), events)
    db.session.execute(
        update(QueueState).where(QueueState.id == STATE_ID)
        .values(computed_at=now, waiting_count=len(placed))
        .execution_options(synchronize_session=False)
    )
    db.session.expire_all()


# --- reading the saved queue ---------------------------------------------------------------------------------


def entry_for(ticket_id: int) -> Optional[QueueEntry]:
    return db.session.get(QueueEntry, ticket_id)


def entries_for_organisation(organisation_id: int) -> dict[int, QueueEntry]:
    return {
        e.ticket_id: e
        for e in db.session.scalars(select(QueueEntry).where(QueueEntry.organisation_id == organisation_id))
    }


def waiting_count() -> int:
    """How many tickets wait in the queue (the length a client may see, without whose they are)."""
    return int(db.session.scalar(select(func.count()).select_from(QueueEntry).where(QueueEntry.position.is_not(None))) or 0)


def generation() -> int:
    return int(db.session.scalar(select(QueueState.generation).where(QueueState.id == STATE_ID)) or 0)


# --- what-if ------------------------------------------------------------------------------------------------------


def _quotes(placed: list[Placed], names: dict[int, str]) -> list[Quote]:
    return [
        Quote(
            ticket_id=p.facts.id, position=p.estimate.position, ahead=p.estimate.ahead,
            eta_median=p.estimate.median, eta_p90=p.estimate.p90,
            technician_name=names.get(p.estimate.technician_id) if p.estimate.technician_id is not None else None,
            sla_due=p.facts.sla_due, best_effort=p.facts.best_effort, sla_at_risk=p.estimate.sla_at_risk,
            note=p.estimate.note, due_promise=p.facts.due_promise, response_owed=p.facts.response_owed,
            set_off_median=p.estimate.set_off_median, set_off_p90=p.estimate.set_off_p90,
        )
        for p in placed
    ]


def _on_plan(facts: TicketFacts, plan: Plan, now: datetime, onsite: bool) -> TicketFacts:
    """The ticket as if its organisation moved to `plan` now (the clock restarts, as on a real upgrade)."""
    terms = sla.terms_for(plan)
    due = due_times(terms, now, onsite, (), now=now)
    is_contract = plan.is_contract
    arrival = not due.best_effort and onsite and due.arrival_due is not None
    outstanding = None if due.best_effort else (due.arrival_due if arrival else due.response_due)
    return replace(
        facts, is_contract=is_contract, plan_name=plan.name if is_contract else "Break/Fix", plan_slug=plan.slug,
        sla_due=outstanding, best_effort=due.best_effort, coverage=_coverage(plan),
        due_promise=ARRIVAL if arrival else RESPONSE, response_owed=due.response_due if arrival else None,
    )


def _scenario(inputs: QueueInputs, ticket: TicketFacts, plan: Optional[Plan], extra_technician: bool,
              move_to: Optional[int]) -> QueueInputs:
    waiting = list(inputs.waiting)
    technicians = list(inputs.technicians)
    names = dict(inputs.technician_names)
    if plan is not None:
        waiting = [_on_plan(f, plan, inputs.now, f.onsite) if f.organisation_id == ticket.organisation_id else f
                   for f in waiting]
    if move_to is not None:
        waiting = [replace(f, override_position=move_to, override_reason="what-if") if f.id == ticket.id else f
                   for f in waiting]
    if extra_technician:
        extra_id = min([t.id for t in technicians] + [0]) - 1
        skills = frozenset().union(*(t.skills for t in technicians)) if technicians else frozenset()
        technicians.append(TechnicianInput(
            id=extra_id, name="One more technician", skills=skills, availability=settings.business_calendar(),
            free_at=inputs.now, free_at_p90=inputs.now, location=None,
        ))
        names[extra_id] = "One more technician"
    return replace(inputs, waiting=tuple(waiting), technicians=tuple(technicians), technician_names=names)


def quote(ticket_id: int, now: datetime, *, plan_id: Optional[int] = None, extra_technician: bool = False,
          move_to: Optional[int] = None) -> list[Quote]:
    """The queue if the ticket's organisation were on another plan, one more technician were on shift, or the
    ticket were moved; every waiting ticket's quote in the scenario's order. Writes nothing.

    Empty when the ticket is not waiting (work started, or closed). For staff: clients use quote_upgrade.
    """
    loaded = load(now)
    facts = next((f for f in loaded.inputs.waiting if f.id == ticket_id), None)
    if facts is None:
        return []
    plan = db.session.get(Plan, plan_id) if plan_id is not None else None
    if plan_id is not None and plan is None:
        raise ValueError("plan_id: there is no such plan")
    scenario = _scenario(loaded.inputs, facts, plan, extra_technician, move_to)
    return _quotes(compute(scenario), scenario.technician_names)


@dataclass(frozen=True)
class UpgradeQuotes:
    """The ticket as things stand and on each paid plan, all from one run at the same instant.

    Why the baseline is computed here rather than read from the saved queue: the saved estimate is
    from the last recompute, so beside quotes run now it could read a minute earlier than any plan,
    as if upgrading made the technician later.
    """

    current: Optional[Quote]
    plans: list[tuple[Plan, Quote]]

    def sooner(self, quote: Quote) -> bool:
        """Whether the plan's quote serves the ticket sooner than now: an earlier place or arrival (by more
        than the minute the pages show). Without an estimate to compare, it may: the plan stays on offer."""
        now = self.current
        if now is None or now.position is None or quote.position is None or quote.position < now.position:
            return True
        if quote.eta_median is None or now.eta_median is None:
            return True
        return quote.eta_median < now.eta_median - timedelta(minutes=1)


def quote_upgrade(ticket_id: int, now: datetime) -> UpgradeQuotes:
    """For each paid active plan, this ticket's place and estimate if its organisation took the plan now."""
    loaded = load(now)
    facts = next((f for f in loaded.inputs.waiting if f.id == ticket_id), None)
    if facts is None:
        return UpgradeQuotes(None, [])
    current = next((q for q in _quotes(compute(loaded.inputs), loaded.inputs.technician_names)
                    if q.ticket_id == ticket_id), None)
    plans = db.session.scalars(
        select(Plan).where(Plan.active.is_(True), Plan.is_contract.is_(True), Plan.monthly_price > 0)
        .order_by(Plan.display_order, Plan.id)
    ).all()
    result = []
    for plan in plans:
        scenario = _scenario(loaded.inputs, facts, plan, False, None)
        mine = [q for q in _quotes(compute(scenario), scenario.technician_names) if q.ticket_id == ticket_id]
        if mine:
            result.append((plan, mine[0]))
    return UpgradeQuotes(current, result)
