"""SLA clocks on stored tickets: which plan applies, due times, states, breaches, compliance.

The arithmetic is the domain's (`domain.sla`); this module decides which plan and pauses it
gets, writes the results on the ticket, records each breach once (with the due time and when
it was seen) and records a timeline event whenever the promise changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional

from sqlalchemy import or_, select, update
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ..domain.sla import (Compliance, DueTimes, MissedPromise, Pause, SlaOutcome, SlaState, SlaTerms, compliance,
                          due_times, missed_promises, settled_by, sla_state)
from ..extensions import db
from ..models import Contract, ContractStatus, Plan, Ticket, TicketEvent, TicketStatus
from . import settings

STATE_ORDER = {  # worst first: a ticket shows the worst of its response and arrival states
    SlaState.BREACHED: 0,
    SlaState.AT_RISK: 1,
    SlaState.ON_TRACK: 2,
    SlaState.MET: 3,
}


def current_plan(organisation_id: int) -> Optional[Plan]:
    """The plan of the contract in force (active or past due); None means break/fix."""
    contract = db.session.scalars(
        select(Contract)
        .options(selectinload(Contract.plan))
        .where(
            Contract.organisation_id == organisation_id,
            Contract.status.in_([ContractStatus.ACTIVE, ContractStatus.PAST_DUE]),
        )
        .order_by(Contract.id.desc())
    ).first()
    if contract is None or not contract.plan.is_contract:
        return None
    return contract.plan


def terms_for(plan: Optional[Plan]) -> SlaTerms:
    """A contract plan guarantees its minutes in its calendar; break/fix (None) guarantees nothing."""
    guaranteed = plan is not None and plan.is_contract
    return SlaTerms(
        guaranteed=guaranteed,
        response_minutes=plan.remote_response_minutes if guaranteed else None,
        onsite_minutes=plan.onsite_arrival_minutes if guaranteed else None,
        calendar=settings.plan_calendar(plan if guaranteed else None),
    )


def due_shown(ticket: Ticket) -> Optional[datetime]:
    """The deadline the client is waiting for: arrival when someone must come on site, else the remote response."""
    if ticket.onsite_needed and ticket.arrival_due_at is not None:
        return ticket.arrival_due_at
    return ticket.response_due_at or ticket.arrival_due_at


def response_beside(ticket: Ticket, shown: Optional[datetime]) -> tuple[Optional[datetime], Optional[datetime]]:
    """(missed, still owed): the remote response's due time when the deadline `shown` is the on-site one,
    according to whether the response was missed (and the arrival not yet) or is still owed."""
    if shown is None or ticket.response_due_at is None or shown == ticket.response_due_at:
        return None, None
    if ticket.response_breached_at is not None:
        # The due time it was missed at: a plan change since may have re-timed `response_due_at`.
        return (ticket.response_breached_at if ticket.arrival_breached_at is None else None), None
    if ticket.is_open and ticket.first_response_at is None:
        return None, ticket.response_due_at
    return None, None


def pauses_since(ticket: Ticket, clock_start: datetime) -> list[Pause]:
    """The ticket's waits on the client after the clock started (a pause before a rebase no longer counts)."""
    result = []
    for pause in ticket.pauses:
        if pause.ended_at is not None and pause.ended_at <= clock_start:
            continue
        result.append(Pause(max(pause.started_at, clock_start), pause.ended_at))
    return result


def compute_due(ticket: Ticket, plan: Optional[Plan], clock_start: datetime, now: datetime) -> DueTimes:
    return due_times(terms_for(plan), clock_start, ticket.onsite_needed, pauses_since(ticket, clock_start), now=now)


def _set_due(ticket: Ticket, due: DueTimes, keep_done: bool) -> None:
    """Write the due times; with `keep_done`, a response or arrival already made keeps the due time it was
    judged against. Why: it was made under the terms in force then; an owner tightening the plan's targets
    afterwards (re-timing open tickets on their own clock) must not turn a response made in time into a
    missed promise on the ticket, the client's timeline and the Promises kept report."""
    if not (keep_done and ticket.first_response_at is not None and ticket.response_due_at is not None):
        ticket.response_due_at = due.response_due
    if not (keep_done and ticket.arrived_at is not None and ticket.arrival_due_at is not None):
        ticket.arrival_due_at = due.arrival_due if ticket.onsite_needed else None
    ticket.sla_best_effort = due.best_effort


def apply_plan(ticket: Ticket, plan: Optional[Plan], clock_start: datetime, now: datetime,
               keep_done: bool = False) -> None:
    """Put the ticket under `plan` (None = break/fix) with its clock started at `clock_start`; no commit.
    `keep_done`: targets already met keep their due time (the same plan's terms changed, same clock)."""
    guaranteed = plan if plan is not None and plan.is_contract else None
    promised = ticket.sla_plan if ticket.sla_plan_id is not None and not ticket.sla_best_effort else None
    if promised is not None and (guaranteed is None or guaranteed.id != promised.id):
        # A promise already overdue when the plan changes is broken, not restarted or forgotten: a clock
        # round may not have seen it yet.
        refresh_ticket(ticket, now)
    due = compute_due(ticket, guaranteed, clock_start, now)
    if guaranteed is not None:
        ticket.sla_promise_ended_at = None
        ticket.sla_promise_plan = None
    elif promised is not None:
        # The guarantee ends here: what was kept or broken by now still counts (`_outcome`), the rest is not owed.
        ticket.sla_promise_ended_at = clock_start
        ticket.sla_promise_plan = promised
    ticket.sla_plan = guaranteed
    ticket.sla_plan_id = guaranteed.id if guaranteed is not None else None
    ticket.sla_clock_start = clock_start
    _set_due(ticket, due, keep_done and not due.best_effort)
    ticket.sla_state = ticket_state(ticket, now).value


def recompute_due(ticket: Ticket, now: datetime) -> None:
    """After a pause or a change of on-site need: same plan, same clock start, new due times (a response
    or arrival already made keeps the due time it was judged against)."""
    if ticket.sla_clock_start is None:
        apply_plan(ticket, ticket.sla_plan, ticket.opened_at, now)
        return
    due = compute_due(ticket, ticket.sla_plan, ticket.sla_clock_start, now)
    _set_due(ticket, due, keep_done=not due.best_effort)


def _one_state(due: Optional[datetime], minutes: Optional[int], ticket: Ticket, done_at: Optional[datetime],
               now: datetime, share: float) -> SlaState:
    calendar = settings.plan_calendar(ticket.sla_plan)
    return sla_state(due, minutes, ticket.sla_clock_start or ticket.opened_at, calendar, now, done_at,
                     at_risk_share=share, best_effort=ticket.sla_best_effort)


def ticket_state(ticket: Ticket, now: datetime, share: Optional[float] = None) -> SlaState:
    """The worst of the response and (when on-site work is needed) arrival states; best effort for break/fix.
    A ticket closed without work reads as its figures count it: met only for a promise the technician
    kept, breached for one missed before, and otherwise not judged (best effort: nothing was owed)."""
    if ticket.sla_best_effort:
        return SlaState.BEST_EFFORT
    if ticket.response_breached_at or ticket.arrival_breached_at:
        return SlaState.BREACHED
    if ticket.sla_promise_ended_at is not None:
        figures = compliance([_outcome(ticket)], now)
        if _missed_count(figures):
            return SlaState.BREACHED
        return SlaState.MET if figures.responses_total or figures.arrivals_total else SlaState.BEST_EFFORT
    share = settings.at_risk_share() if share is None else share
    plan = ticket.sla_plan
    states = [
        _one_state(ticket.response_due_at, plan.remote_response_minutes if plan else None, ticket,
                   ticket.first_response_at or ticket.resolved_at, now, share)
    ]
    if ticket.onsite_needed and ticket.arrival_due_at is not None:
        states.append(
            _one_state(ticket.arrival_due_at, plan.onsite_arrival_minutes if plan else None, ticket,
                       ticket.arrived_at or ticket.resolved_at, now, share)
        )
    return min(states, key=lambda s: STATE_ORDER.get(s, 9))


def _breach(ticket: Ticket, which: str, due: datetime, done_at: Optional[datetime], now: datetime) -> None:
    words = "Remote response" if which == "response" else "Technician arrival"
    # The firm's local time in the (public) message, as everywhere on the client's pages; the detail keeps ISO.
    late = f"done at {settings.firm_clock(done_at)}" if done_at else f"still pending at {settings.firm_clock(now)}"
    ticket.events.append(
        TicketEvent(
            at=now, kind=f"sla_breached_{which}", public=True,
            message=f"{words} target missed: it was due {settings.firm_clock(due)} ({late}).",
            detail={"due_at": due.isoformat(), "done_at": done_at.isoformat() if done_at else None,
                    "seen_at": now.isoformat()},
        )
    )


def record_breaches(ticket: Ticket, now: datetime) -> list[str]:
    """Record each missed target once: the breach time is the due time; the event says when it was seen."""
    if ticket.sla_best_effort:
        return []
    found = []
    checks = [("response", ticket.response_due_at, ticket.first_response_at or ticket.resolved_at, "response_breached_at")]
    if ticket.onsite_needed:
        checks.append(("arrival", ticket.arrival_due_at, ticket.arrived_at or ticket.resolved_at, "arrival_breached_at"))
    for which, due, done_at, column in checks:
        if due is None or getattr(ticket, column) is not None:
            continue
        if (done_at is not None and done_at > due) or (done_at is None and now > due and ticket.status != TicketStatus.WAITING_ON_CLIENT):
            setattr(ticket, column, due)
            _breach(ticket, which, due, done_at, now)
            found.append(which)
    return found


def refresh_ticket(ticket: Ticket, now: datetime, share: Optional[float] = None) -> list[str]:
    """Bring one ticket's due times (open pause), breaches and state up to `now`; no commit."""
    if any(p.ended_at is None for p in ticket.pauses):
        recompute_due(ticket, now)
    found = record_breaches(ticket, now)
    state = ticket_state(ticket, now, share).value
    if ticket.sla_state != state:
        ticket.sla_state = state
    return found


@dataclass(frozen=True)
class RefreshResult:
    tickets: int
    breaches: int


# What the clock's passing rewrites on a ticket: bookkeeping, not a change anybody made.
REFRESHED = ("response_due_at", "arrival_due_at", "sla_best_effort", "response_breached_at", "arrival_breached_at",
             "sla_state")


def refresh_states(now: datetime) -> RefreshResult:
    """Refresh every open ticket's SLA state and record new breaches; commits.

    Written without moving the ticket's version: the version is what a dispatcher's form or a
    technician's tap was drawn against, and an ORM update bumped it on every round (`flask alerts
    check --loop`, each minute) for a ticket waiting on the client, whose due times slide while the
    clock is paused, so every action on it from a page over a minute old was refused as 'changed by
    someone else'. Each ticket's write is still guarded by the version it was read at: a ticket a
    person changed meanwhile is left as they saved it (with no breach event) until the next round.
    """
    share = settings.at_risk_share()
    tickets = db.session.scalars(
        select(Ticket)
        .options(selectinload(Ticket.pauses), selectinload(Ticket.sla_plan))
        .where(Ticket.status.in_(TicketStatus.OPEN))
        .order_by(Ticket.id)
    ).all()
    breaches = sum(_refresh_unversioned(ticket, now, share) for ticket in tickets)
    db.session.commit()
    return RefreshResult(len(tickets), breaches)


def _refresh_unversioned(ticket: Ticket, now: datetime, share: float) -> int:
    """`refresh_ticket`, saved by one UPDATE guarded by the version read; returns the breaches recorded."""
    with db.session.no_autoflush:  # a flush before the guarded UPDATE would write the row versioned, or the breach
        before = {name: getattr(ticket, name) for name in REFRESHED}
        found = refresh_ticket(ticket, now, share)
        changed = {name: getattr(ticket, name) for name in REFRESHED if getattr(ticket, name) != before[name]}
        if not changed:
            return len(found)
        added = [event for event in ticket.events if event.id is None] if found else []
        for name in changed:  # nothing left for the ORM to flush (and version) on the ticket row
            set_committed_value(ticket, name, before[name])
        table = Ticket.__table__
        saved = db.session.execute(
            update(table).where(table.c.id == ticket.id, table.c.version == ticket.version).values(**changed)
        ).rowcount == 1
        if saved:
            for name, value in changed.items():
                set_committed_value(ticket, name, value)
            return len(found)
        for event in added:  # the ticket moved on meanwhile: the next round judges it afresh
            ticket.events.remove(event)
            if event in db.session:
                db.session.expunge(event)
        return 0


def close_without_work(ticket: Ticket, now: datetime) -> None:
    """A ticket closed without work (a duplicate, nothing to do) owes nothing more from `now`; no commit.

    Why: its closing is not a response, so it must not count as a promise kept (the original ticket
    carries the promise), yet a promise it had already missed when closed stays missed: the client
    waited past the due time all the same. Call after `record_breaches`, which records that miss.
    """
    if not ticket.sla_best_effort and ticket.sla_promise_ended_at is None:
        ticket.sla_promise_ended_at = now
        ticket.sla_promise_plan = ticket.sla_plan


def _due_words(ticket: Ticket) -> str:
    if ticket.sla_best_effort:
        return "best effort, no guarantee"
    # The firm's local time, as on every client page (the message is public); the detail keeps ISO.
    parts = []
    if ticket.response_due_at:
        parts.append(f"response due {settings.firm_clock(ticket.response_due_at)}")
    if ticket.onsite_needed and ticket.arrival_due_at:
        parts.append(f"arrival due {settings.firm_clock(ticket.arrival_due_at)}")
    return ", ".join(parts)


def rebase_organisation(organisation_id: int, now: datetime, why: str) -> int:
    """A contract change: every open ticket of the organisation goes under the plan now in force, its clock
    restarting at the change; each gets a timeline event. Commits, then re-runs the queue. Returns the count.

    A ticket already under the plan in force keeps its clock: a change that leaves the plan as it was
    (a card payment failing and the contract past due, "still served while Stripe retries", then the
    payment going through; the same plan paid another way) must not push its deadlines later, nor let a
    target about to be missed start over unmissed.
    """
    plan = current_plan(organisation_id)
    plan_id = plan.id if plan is not None else None
    tickets = [
        ticket for ticket in db.session.scalars(
            select(Ticket)
            .options(selectinload(Ticket.pauses), selectinload(Ticket.sla_plan))
            .where(Ticket.organisation_id == organisation_id, Ticket.status.in_(TicketStatus.OPEN))
            .order_by(Ticket.id)
        ).all()
        if ticket.sla_plan_id != plan_id
    ]
    if not tickets:
        db.session.commit()
        return 0
    for ticket in tickets:
        before = {"plan": ticket.sla_plan.name if ticket.sla_plan else "Break/Fix", "due": _due_words(ticket)}
        apply_plan(ticket, plan, now, now)
        record_breaches(ticket, now)
        name = plan.name if plan is not None else "Break/Fix"
        ticket.events.append(
            TicketEvent(
                at=now, kind="sla_rebased", public=True,
                message=f"{why}: now under {name} ({_due_words(ticket)}).",
                detail={"before": before, "plan": name, "why": why,
                        "response_due_at": ticket.response_due_at.isoformat() if ticket.response_due_at else None,
                        "arrival_due_at": ticket.arrival_due_at.isoformat() if ticket.arrival_due_at else None},
            )
        )
    db.session.commit()
    from . import queue

    queue.recompute(now, plan_changed=organisation_id)
    return len(tickets)


def _outcome(t: Ticket) -> SlaOutcome:
    """The ticket's targets as `ticket_state` and `record_breaches` judge them: a ticket resolved
    by the client before a target was due did not miss it, and a breach once recorded
    stays missed, judged against the due time it was missed at (breach time = due time), even after
    a plan change restarted the clock with a later due time: the ticket still reads 'breached'.
    Once its promises ended (contract ended, or closed without work) only those kept by a response
    or arrival, or missed, before then are judged (`domain.sla.settled_by`)."""
    response_due = t.response_breached_at or t.response_due_at
    responded = t.first_response_at or t.resolved_at
    arrival_due = (t.arrival_breached_at or t.arrival_due_at) if t.onsite_needed else None
    arrived = (t.arrived_at or t.resolved_at) if t.onsite_needed else None
    if t.sla_promise_ended_at is not None:
        response_due, responded = settled_by(response_due, responded, t.first_response_at, t.sla_promise_ended_at)
        arrival_due, arrived = settled_by(arrival_due, arrived, t.arrived_at if t.onsite_needed else None,
                                          t.sla_promise_ended_at)
    return SlaOutcome(response_due=response_due, responded_at=responded, arrival_due=arrival_due, arrived_at=arrived)


# Tickets that were promised something: guaranteed now, or until their promises ended.
PROMISED = or_(Ticket.sla_best_effort.is_(False), Ticket.sla_promise_ended_at.is_not(None))


def _promised(t: Ticket) -> bool:
    return not t.sla_best_effort or t.sla_promise_ended_at is not None


def outcomes_for(tickets: Iterable[Ticket]) -> list[SlaOutcome]:
    """The outcomes of tickets that were promised something (best effort alone promises nothing to judge)."""
    return [_outcome(t) for t in tickets if _promised(t)]


def compliance_for(organisation_id: int, since: datetime, now: datetime) -> Compliance:
    """Share of guaranteed responses and arrivals on time for tickets opened since `since`."""
    tickets = db.session.scalars(
        select(Ticket).where(
            Ticket.organisation_id == organisation_id,
            Ticket.opened_at >= since,
            Ticket.opened_at <= now,
            PROMISED,
        )
    ).all()
    return compliance(outcomes_for(tickets), now)


@dataclass(frozen=True)
class PromiseReport:
    """How the firm kept its guaranteed deadlines over a period: in all, per plan, per client, and each miss."""

    total: Compliance
    by_plan: list[tuple[str, Compliance]]
    by_organisation: list[tuple[str, int, Compliance]]  # name, id, figures; most misses first
    missed: list[tuple[Ticket, MissedPromise]]  # latest due first


def _missed_count(figures: Compliance) -> int:
    return (figures.responses_total - figures.responses_on_time) + (figures.arrivals_total - figures.arrivals_on_time)


def promise_report(since: datetime, now: datetime) -> PromiseReport:
    """Every organisation's guaranteed tickets opened since `since`, judged as each client's own
    dashboard judges them (`compliance_for`), so the firm and its clients never read two figures."""
    tickets = db.session.scalars(
        select(Ticket).options(selectinload(Ticket.organisation), selectinload(Ticket.sla_plan),
                               selectinload(Ticket.sla_promise_plan)).where(
            Ticket.opened_at >= since, Ticket.opened_at <= now, PROMISED)
        .order_by(Ticket.id)
    ).all()
    judged = [(ticket, _outcome(ticket)) for ticket in tickets]
    plans: dict[str, list[SlaOutcome]] = {}
    organisations: dict[tuple[str, int], list[SlaOutcome]] = {}
    missed: list[tuple[Ticket, MissedPromise]] = []
    for ticket, outcome in judged:
        plan = ticket.sla_plan or ticket.sla_promise_plan  # the plan the promise was made on
        plans.setdefault(plan.name if plan else "No plan", []).append(outcome)
        organisations.setdefault((ticket.organisation.name, ticket.organisation_id), []).append(outcome)
        missed.extend((ticket, miss) for miss in missed_promises(outcome, now))
    by_organisation = [(name, org_id, compliance(outcomes, now)) for (name, org_id), outcomes in organisations.items()]
    by_organisation.sort(key=lambda row: (-_missed_count(row[2]), row[0]))
    missed.sort(key=lambda row: row[1].due, reverse=True)
    return PromiseReport(
        total=compliance([outcome for _, outcome in judged], now),
        by_plan=sorted(((name, compliance(outcomes, now)) for name, outcomes in plans.items()), key=lambda r: r[0]),
        by_organisation=by_organisation,
        missed=missed,
    )
