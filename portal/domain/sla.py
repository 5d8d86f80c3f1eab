"""SLA clocks: due times, pauses, states and compliance.

A contract promises a remote response and (when someone must come) an on-site arrival within
so many minutes of *covered* time from the moment the ticket was opened. Break/fix clients get
no promise: a best-effort target of the next business day, always flagged as such.
While a ticket waits on the client the clock stops; a pause moves the due times later by
exactly the covered time it lasted, and a pause can never make a deadline earlier.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Iterable, Optional, Sequence

from portal.domain.calendar import CoverageCalendar, as_utc


class SlaState(str, Enum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    MET = "met"
    BREACHED = "breached"
    BEST_EFFORT = "best_effort"


@dataclass(frozen=True)
class SlaTerms:
    """What the ticket's plan promises; `guaranteed` False means break/fix (best effort)."""

    guaranteed: bool
    response_minutes: Optional[int]
    onsite_minutes: Optional[int]
    calendar: CoverageCalendar


@dataclass(frozen=True)
class Pause:
    """A stretch while the ticket waited on the client; ended_at None = still waiting."""

    started_at: datetime
    ended_at: Optional[datetime]


@dataclass(frozen=True)
class DueTimes:
    response_due: Optional[datetime]
    arrival_due: Optional[datetime]
    best_effort: bool


def _merged_pauses(
    pauses: Sequence[Pause], clock_start: datetime, now: Optional[datetime]
) -> list[tuple[datetime, datetime]]:
    """Pauses as sorted, disjoint UTC intervals after the clock started; open ones end at now."""
    spans: list[tuple[datetime, datetime]] = []
    for index, pause in enumerate(pauses):
        start = as_utc(pause.started_at, f"pauses[{index}].started_at")
        if pause.ended_at is None:
            if now is None:
                raise ValueError("now is needed while a pause is still open")
            end = as_utc(now, "now")
        else:
            end = as_utc(pause.ended_at, f"pauses[{index}].ended_at")
        start = max(start, clock_start)
        if end > start:
            spans.append((start, end))
    spans.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _shift_for_pauses(
    due: datetime, pauses: list[tuple[datetime, datetime]], calendar: CoverageCalendar
) -> datetime:
    """Move `due` later by the covered time of each pause that began before the (moving) due.

    A pause that starts after the clock already ran out cannot rescue a breach, so it is ignored.
    """
    for start, end in pauses:
        if start >= due:
            break
        due = calendar.add(due, calendar.covered_minutes(start, end))
    return due


def best_effort_target(calendar: CoverageCalendar, start: datetime) -> datetime:
    """The start of the next business day: today's opening when `start` is before it (02:00 on a
    Tuesday aims for Tuesday 08:00, as the after-hours notice says), else the first covered moment
    of a later local day.

    Why: aiming a ticket opened at 00:05 for the day after, when one opened at 23:55 the evening
    before aims for this morning, told the client "we aim for Wed 08:00" beside "we will start
    today, Tue 08:00" and an estimate of Tue 08:00.
    """
    start = as_utc(start, "start")
    if not calendar.is_24x7:
        zone = calendar.zone
        day = start.astimezone(zone).date()
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        opening = calendar.next_covered(start)
        if (opening > start and opening.astimezone(zone).date() == day
                and calendar.covered_minutes(midnight, start) == 0):
            return opening
    return calendar.next_business_start(start)


def due_times(
    terms: SlaTerms,
    clock_start: datetime,
    onsite_needed: bool,
    pauses: Sequence[Pause] = (),
    now: Optional[datetime] = None,
) -> DueTimes:
    """Response and arrival due times for a ticket whose clock started at `clock_start`.

    Guaranteed plans: `minutes` of covered time after the start, shifted by pauses.
    Break/fix: the next business start after the start, flagged best_effort (never a promise).
    Arrival is only due when on-site work is needed.
    """
    start = as_utc(clock_start, "clock_start")
    calendar = terms.calendar
    spans = _merged_pauses(pauses, start, now)
    if not terms.guaranteed:
        target = _shift_for_pauses(best_effort_target(calendar, start), spans, calendar)
        return DueTimes(response_due=target, arrival_due=target if onsite_needed else None, best_effort=True)

    def promised(minutes: Optional[int], name: str) -> Optional[datetime]:
        if minutes is None:
            return None
        if minutes <= 0:
            raise ValueError(f"{name} must be a positive number of minutes")
        return _shift_for_pauses(calendar.add(start, minutes), spans, calendar)

    return DueTimes(
        response_due=promised(terms.response_minutes, "response_minutes"),
        arrival_due=promised(terms.onsite_minutes, "onsite_minutes") if onsite_needed else None,
        best_effort=False,
    )


def sla_state(
    due: Optional[datetime],
    target_minutes: Optional[int],
    clock_start: datetime,
    calendar: CoverageCalendar,
    now: datetime,
    done_at: Optional[datetime],
    at_risk_share: float = 0.25,
    best_effort: bool = False,
) -> SlaState:
    """Where one clock (response or arrival) stands.

    Met/breached once done (done exactly at the due time is met); breached once `now` is past
    the due; at risk when no more than `at_risk_share` of the target's covered time is left.
    Best-effort targets (or no target) are never judged: they were never promised.
    """
    if not 0 <= at_risk_share <= 1:
        raise ValueError("at_risk_share must be between 0 and 1")
    if best_effort or due is None:
        return SlaState.BEST_EFFORT
    due = as_utc(due, "due")
    now = as_utc(now, "now")
    if done_at is not None:
        return SlaState.MET if as_utc(done_at, "done_at") <= due else SlaState.BREACHED
    if now > due:
        return SlaState.BREACHED
    start = as_utc(clock_start, "clock_start")
    total = float(target_minutes) if target_minutes else calendar.covered_minutes(start, due)
    left = calendar.covered_minutes(now, due)
    if total <= 0 or left <= at_risk_share * total:
        return SlaState.AT_RISK
    return SlaState.ON_TRACK


@dataclass(frozen=True)
class SlaOutcome:
    response_due: Optional[datetime]
    responded_at: Optional[datetime]
    arrival_due: Optional[datetime]
    arrived_at: Optional[datetime]


@dataclass(frozen=True)
class Compliance:
    responses_total: int
    responses_on_time: int
    arrivals_total: int
    arrivals_on_time: int

    @property
    def response_share(self) -> Optional[float]:
        """Share of judged responses on time; None when nothing could be judged yet."""
        return self.responses_on_time / self.responses_total if self.responses_total else None

    @property
    def arrival_share(self) -> Optional[float]:
        return self.arrivals_on_time / self.arrivals_total if self.arrivals_total else None


def _judge(due: Optional[datetime], done: Optional[datetime], now: datetime) -> Optional[bool]:
    """True on time, False late (or overdue and still not done), None not judgeable yet."""
    if due is None:
        return None
    due = as_utc(due, "due")
    if done is not None:
        return as_utc(done, "done") <= due
    if now > due:
        return False
    return None


def compliance(outcomes: Iterable[SlaOutcome], now: datetime) -> Compliance:
    """Share of promised responses and arrivals delivered on time.

    A promise still running is not counted yet; one already overdue counts as missed even
    before the technician gets there, so an open breach cannot hide from the figures.
    """
    now = as_utc(now, "now")
    r_total = r_ok = a_total = a_ok = 0
    for outcome in outcomes:
        verdict = _judge(outcome.response_due, outcome.responded_at, now)
        if verdict is not None:
            r_total += 1
            r_ok += verdict
        verdict = _judge(outcome.arrival_due, outcome.arrived_at, now)
        if verdict is not None:
            a_total += 1
            a_ok += verdict
    return Compliance(r_total, r_ok, a_total, a_ok)


def settled_by(due: Optional[datetime], done: Optional[datetime], acted: Optional[datetime],
               ended: datetime) -> tuple[Optional[datetime], Optional[datetime]]:
    """One promise of a ticket no longer owed its guarantee since `ended`: the (due, done) still judged.

    `done` is what the ticket counts as done (the response, else the resolution); `acted` only the
    response or arrival itself, since a ticket closed without work (a duplicate) has not kept anything.
    Why: a promise made and broken stays broken, even if the contract ends or the ticket turns out
    to be a duplicate afterwards; one kept by the technician before then stays kept; one not yet due
    then was no longer owed (best effort, or carried by the original ticket) and is not judged.
    """
    if due is None:
        return None, None
    due, ended = as_utc(due, "due"), as_utc(ended, "ended")
    if acted is not None and as_utc(acted, "acted") <= min(due, ended):
        return due, acted
    if due < ended:
        return due, done
    return None, None


@dataclass(frozen=True)
class MissedPromise:
    """A response or arrival not delivered by its due time: `done` is None while it still is not."""

    which: str  # "response" or "arrival"
    due: datetime
    done: Optional[datetime]
    late_by: timedelta


def missed_promises(outcome: SlaOutcome, now: datetime) -> list[MissedPromise]:
    """The promises of one ticket that `compliance` counts as missed, with how late each was (or is, at `now`).

    Why a second function: the firm's report lists each miss beside the shares, and both must judge alike.
    """
    now = as_utc(now, "now")
    missed = []
    for which, due, done in (("response", outcome.response_due, outcome.responded_at),
                             ("arrival", outcome.arrival_due, outcome.arrived_at)):
        if _judge(due, done, now) is False:
            assert due is not None
            due = as_utc(due, "due")
            done = as_utc(done, "done") if done is not None else None
            missed.append(MissedPromise(which, due, done, (done or now) - due))
    return missed


# --- the outlook of promises still owed, from the dispatch plan's estimate -------------------------------------


class Outlook(int, Enum):
    """What the dispatch estimate says of one promise still owed; a larger value is worse."""

    ON_TRACK = 0
    AT_RISK = 1  # the 90% bound is past the due time
    LIKELY_MISSED = 2  # the median is past it: more likely missed than kept


def estimate_outlook(median: Optional[datetime], p90: Optional[datetime], due: Optional[datetime]) -> Outlook:
    """One promise against the moment its action is expected (median and 90% bound); no estimate or
    no due time says nothing (on track)."""
    if median is None or due is None:
        return Outlook.ON_TRACK
    if median > due:
        return Outlook.LIKELY_MISSED
    if p90 is not None and p90 > due:
        return Outlook.AT_RISK
    return Outlook.ON_TRACK


RESPONSE = "response"
ARRIVAL = "arrival"


@dataclass(frozen=True)
class PromiseOutlook:
    """One promise still owed: which (RESPONSE or ARRIVAL), its due time, when its action is expected (the
    technician setting off or starting remote work for the response, reaching the site for the arrival)
    and what that says."""

    promise: str
    due: datetime
    expected: Optional[datetime]
    outlook: Outlook


def promise_outlook(promise: str, due: datetime, median: Optional[datetime], p90: Optional[datetime],
                    flagged: bool = False) -> PromiseOutlook:
    """`flagged`: the dispatch plan already calls this promise at risk (e.g. no 90% bound at all)."""
    outlook = estimate_outlook(median, p90, due)
    if flagged:
        outlook = max(outlook, Outlook.AT_RISK)
    return PromiseOutlook(promise, due, median, outlook)


def owed_promises(shown: str, due: datetime, median: Optional[datetime], p90: Optional[datetime], *,
                  flagged: bool = False, response_owed: Optional[datetime] = None,
                  set_off_median: Optional[datetime] = None,
                  set_off_p90: Optional[datetime] = None) -> list[PromiseOutlook]:
    """Each promise a plan's estimate can judge: the deadline shown (`shown`: ARRIVAL on site, else
    RESPONSE) against the arrival or start, and a remote response still owed beside an on-site
    arrival (`response_owed`) against when the technician sets off, their first action.

    Why one place: the ticket page, the staff alerts and the upgrade panel's quote for each plan
    must judge a ticket's promises alike, or a plan could be sold on a response its own estimate
    already sees slipping."""
    promises = [promise_outlook(shown, due, median, p90, flagged=flagged)]
    if response_owed is not None and set_off_median is not None:
        promises.append(promise_outlook(RESPONSE, response_owed, set_off_median, set_off_p90))
    return promises


@dataclass(frozen=True)
class OwedOutlook:
    """The state shown for a ticket's promises still owed, and the promise that sets it (None: all on track)."""

    state: str  # an SlaState value
    worst: Optional[PromiseOutlook]
    promises: tuple[PromiseOutlook, ...] = ()  # every promise judged, in due order

    @property
    def outlook(self) -> Outlook:
        return self.worst.outlook if self.worst is not None else Outlook.ON_TRACK


_CLOCK_ORDER = {SlaState.ON_TRACK.value: 0, SlaState.AT_RISK.value: 1}


def owed_outlook(clock_state: Optional[str], promises: Sequence[PromiseOutlook]) -> OwedOutlook:
    """The worse of the clock's state and each owed promise's estimate.

    Why: the clock goes "at risk" only once most of a target's time has passed, while the plan may
    know at once that the technician sets off after the response is due (or arrives after the
    arrival is due). The state is never better than any promise's own: an estimate at risk or
    likely missed makes an on-track clock "at risk"; met, breached and best effort stay as they are.
    The worst promise is named; on a tie the earlier due time (the response, for an on-site job).
    """
    worst = None
    promises = tuple(sorted(promises, key=lambda p: p.due))
    for p in promises:
        if p.outlook > Outlook.ON_TRACK and (worst is None or p.outlook > worst.outlook):
            worst = p
    state = clock_state
    if worst is not None and clock_state == SlaState.ON_TRACK.value:
        state = SlaState.AT_RISK.value
    return OwedOutlook(state, worst, promises)
