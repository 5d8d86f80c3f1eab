"""Who goes where next: each waiting ticket's place, technician and arrival estimate.

The dispatcher is greedy list scheduling in triage order. Taking the tickets as triage ranked
them, each goes to the eligible technician (right skill; the pinned one if a dispatcher
pinned it) who can start it soonest. A start must fall in the technician's availability
(shifts plus on-call periods) and in the ticket's coverage (its plan's hours: a break/fix
ticket opened at night waits for the next business morning). On-site work adds the drive
from the technician's current location, which is the site of the job before; the drive starts
when the technician sets off in their own covered time (off shift until 08:00: there at 08:00
plus the drive).

Estimates are honest ranges, not a fixed margin. Every job duration and drive is a
lognormal given by its median and p90. Along one technician's chain the means and variances
of the random parts add up; the sum is read back as a lognormal (Fenton-Wilkinson) to give
the median and 90% bound. Calendars bend time monotonically (a job that would start at 18:30
starts at 08:00 next day), so each quantile is pushed through the calendar; when they push
part of the range, the moments are recomputed from a few quantile points pushed through the
calendar, so a long wait for covered time absorbs the uncertainty before it.

When a job must wait for its ticket's covered hours (a break/fix job booked for 08:00 on a
technician on call tonight), the idle time before it is kept as a gap that later tickets
with other coverage may fill if they are done (90% bound) before the booked job starts.

Tickets that will open later and be ranked higher will overtake the ones waiting now. Given
an optional ArrivalForecast (how many tickets open an hour, how big a job is), each estimate
adds the expected overtaking delay and its Poisson spread; without it the range covers only
effort and travel. docs/BENCHMARKS.md shows what each gives against a simulation.

A ticket's `position` is its place among the waiting tickets in the order they are expected
to start (by median start), so a ticket triaged lower can still be started earlier by a free
specialist. `sla_at_risk` is set when the 90% bound passes the SLA deadline: a one-in-ten
chance of a breach is a risk the dispatcher should see.

Cost: technicians sit in one heap per skill (and one for everybody) keyed by when they can
next start; each ticket looks only at the few technicians at the top of its heap, so
10,000 tickets and 500 technicians take well under a second. The function reads its inputs
and returns new values; it never changes them, which makes what-if quotes free of side effects.
"""
from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Callable, Collection, Hashable, Mapping, Optional, Sequence

from portal.domain.calendar import CoverageCalendar
from portal.domain.effort import Z90, EffortEstimate
from portal.domain.travel import Location, TravelModel

# Plans look at most this far ahead; beyond it a ticket has "no covered time" (a year).
HORIZON_MINUTES = 366 * 24 * 60.0
# Technicians examined per ticket at most (fully evaluated / looked at in the heap).
MAX_EVALUATED = 8
MAX_EXAMINED = 32
_EPS = 1e-6
_DAY = 24 * 60.0
# Quantile points used to recompute a chain's moments after a calendar pushed part of it.
_STANDARD_NORMAL = NormalDist()
_QUAD_Z = tuple(_STANDARD_NORMAL.inv_cdf((k + 0.5) / 9) for k in range(9))


@dataclass(frozen=True)
class TechnicianInput:
    id: int
    name: str
    skills: frozenset[str]
    availability: CoverageCalendar
    free_at: datetime
    free_at_p90: datetime
    location: Optional[Location]


@dataclass(frozen=True)
class DispatchTicket:
    id: int
    required_skill: Optional[str]
    onsite: bool
    site: Optional[Location]
    effort: EffortEstimate
    coverage: CoverageCalendar
    sla_due: Optional[datetime]
    pinned_technician_id: Optional[int] = None


@dataclass(frozen=True)
class ArrivalForecast:
    """How fast new tickets open, from recent history (optional input to plan_dispatch).

    A ticket's wait is not only the work queued ahead of it now: tickets opened later that
    triage ranks higher (a contract client's outage, an outbreak) will be served first. With
    a forecast, each estimate allows for the expected overtaking and its spread.
    """

    tickets_per_hour: float
    mean_job_minutes: float  # effort plus travel of a typical ticket

    def __post_init__(self) -> None:
        for name in ("tickets_per_hour", "mean_job_minutes"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number, 0 or more")


def forecast_from_history(openings: int, days: int, mean_job_minutes: float) -> ArrivalForecast:
    """The arrival forecast from how many tickets opened over the last `days` days (counted by the
    caller, e.g. in SQL, so a busy month is not read row by row on every recompute)."""
    if days <= 0:
        raise ValueError("days must be 1 or more")
    return ArrivalForecast(openings / (days * 24.0), mean_job_minutes)


@dataclass(frozen=True)
class ArrivalEstimate:
    ticket_id: int
    position: int
    ahead: int
    technician_id: Optional[int]
    median: Optional[datetime]
    p90: Optional[datetime]
    sla_at_risk: bool
    waits_for_coverage: bool
    note: str
    # When the technician is expected to set off for an on-site job (the start less the drive), or to
    # start remote work: the technician's first action, which is the ticket's response.
    set_off_median: Optional[datetime] = None
    set_off_p90: Optional[datetime] = None


def _quantile(mean: float, var: float, z: float) -> float:
    """Quantile of a non-negative sum with this mean and variance, read as a lognormal."""
    if var <= 0.0 or mean <= 0.0:
        return mean if mean > 0.0 else 0.0
    s2 = math.log1p(var / (mean * mean))
    return math.exp(math.log(mean) - s2 / 2.0 + z * math.sqrt(s2))


class _Cover:
    """One calendar's covered stretches as minutes after `now`, discovered lazily in order.

    The calendar's own arithmetic walks intervals; the dispatcher asks "first covered minute
    at or after x" hundreds of thousands of times, so the stretches up to the furthest point
    asked about are read once and then answered by bisection.
    """

    __slots__ = ("cal", "now", "starts", "ends", "frontier", "exhausted", "last")

    def __init__(self, cal: CoverageCalendar, now: datetime) -> None:
        self.cal = cal
        self.now = now
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.frontier = 0.0  # coverage is known exactly on [0, frontier)
        self.exhausted = False
        self.last = (math.inf, -math.inf)  # the stretch answered last: most questions repeat it

    def _dt(self, minutes: float) -> datetime:
        return self.now + timedelta(minutes=minutes)

    def _minutes(self, at: datetime) -> float:
        return (at - self.now).total_seconds() / 60.0

    def _covered(self, a: float, b: float) -> float:
        return self.cal.covered_minutes(self._dt(a), self._dt(b))

    def _stretch_end(self, s: float, until: float) -> float:
        """End of the covered stretch that starts at the covered minute `s`.

        A stretch still running a day past `until` (a 24x7 rota) is cut there; the next
        discovery continues it, so nobody walks a year of calendar to answer about tomorrow.

        From a window [s, s+t) with t at least the stretch's length, covered(s, s+t) is the
        stretch plus whatever later coverage the window reaches; iterating t = covered(s, s+t)
        shrinks the window onto the stretch and stops exactly at its end (2-3 calls for shifts).
        """
        lo, span = s, _DAY
        while True:
            if lo - s > HORIZON_MINUTES:
                return math.inf
            if lo > until + _DAY:
                return lo
            total = self._covered(lo, lo + span)
            if total < span - _EPS:
                break
            lo += span
            span *= 2
        length = total
        for _ in range(100):
            shorter = self._covered(lo, lo + length)
            if shorter >= length - _EPS:
                return lo + max(length, _EPS)
            length = shorter
        return lo + max(length, _EPS)

    def _discover(self, until: float) -> None:
        while self.frontier <= until and not self.exhausted:
            try:
                s = self._minutes(self.cal.next_covered(self._dt(self.frontier)))
            except ValueError:
                s = math.inf
            if s > HORIZON_MINUTES:
                self.exhausted = True
                self.frontier = math.inf
                return
            e = max(self._stretch_end(s, until), s + _EPS)
            if self.ends and s <= self.ends[-1] + _EPS:
                self.ends[-1] = e
            else:
                self.starts.append(s)
                self.ends.append(e)
            self.frontier = e
            if e == math.inf:
                self.exhausted = True

    def at_or_after(self, x: float) -> tuple[float, float]:
        """(first covered minute >= x, end of that covered stretch); (inf, inf) when none."""
        last = self.last
        if last[0] <= x < last[1]:
            return x, last[1]
        if x == math.inf:
            return math.inf, math.inf
        if x >= self.frontier:
            self._discover(x)
        i = bisect_right(self.starts, x) - 1
        if i >= 0 and x < self.ends[i]:
            self.last = (self.starts[i], self.ends[i])
            return x, self.ends[i]
        if i + 1 < len(self.starts):
            self.last = (self.starts[i + 1], self.ends[i + 1])
            return self.starts[i + 1], self.ends[i + 1]
        return math.inf, math.inf


def _both(x: float, a: _Cover, b: _Cover) -> tuple[float, float]:
    """First minute >= x covered by both calendars, and how long both stay covered."""
    for _ in range(200):
        s1, e1 = a.at_or_after(x)
        s2, e2 = b.at_or_after(s1)
        if s2 == s1:
            return s1, min(e1, e2)
        x = s2
    return math.inf, math.inf


def _arrival(free: float, drive: float, tech: _Cover, ticket: _Cover) -> tuple[float, float]:
    """(start, start had the ticket's hours not mattered) of a job the technician can leave for at `free`.

    The technician sets off in their own covered time and the drive comes after it: a job
    planned for a technician off shift until 08:00 starts at 08:00 plus the drive, not at 08:00
    (the drive is not made overnight). The start must also be covered by both calendars; when it
    is not (the shift ends on the road, or the client's hours have not begun), the technician sets
    off later, as late as still reaches the next minute covered by both.
    """
    leave = tech.at_or_after(free)[0]
    ready = start = leave + drive
    for attempt in range(50):
        covered = _both(start, tech, ticket)[0]
        if attempt == 0:
            ready = tech.at_or_after(start)[0]
            if covered == start:
                return start, start
        if covered == start or covered == math.inf:
            return covered, ready
        leave = tech.at_or_after(max(leave, covered - drive))[0]
        start = leave + drive
    return math.inf, math.inf


# An idle stretch shorter than this is not worth offering to another ticket.
MIN_GAP_MINUTES = 15.0


class _Gap:
    """Idle time before a job that waits for its ticket's covered hours.

    A technician on call tonight who is booked for a break/fix job at 08:00 tomorrow is free
    until then; a 24x7 ticket triaged lower may use that time if it is done (90% bound, plus
    the drive to the booked job) before the booked job must start.
    """

    __slots__ = ("chain", "from50", "from90", "location", "next_start", "next_site", "blocked", "version", "alive")

    def __init__(self, chain: "_Chain", from50: float, from90: float, location: Optional[Location],
                 next_start: float, next_site: Optional[Location], blocked: int) -> None:
        self.chain = chain
        self.from50 = from50
        self.from90 = from90
        self.location = location
        self.next_start = next_start
        self.next_site = next_site
        # Tickets with the same coverage as the one waiting cannot start in this gap either.
        self.blocked = blocked
        self.version = 0
        self.alive = True


class _Chain:
    """A technician's day as planned so far: when they are next free, as a distribution.

    Free time = anchor + a random part with `mean` and `var` (minutes). `key` is the earliest
    they could start anything after their chain (median free time pushed into their
    availability), their order in the heaps; idle gaps inside the chain are indexed separately.
    """

    __slots__ = ("tech", "cover", "anchor", "mean", "var", "location", "version", "key", "gaps")

    def __init__(self, tech: TechnicianInput, cover: _Cover, now: datetime) -> None:
        self.tech = tech
        self.cover = cover
        self.anchor = 0.0
        busy = (tech.free_at - now).total_seconds() / 60.0
        busy90 = (tech.free_at_p90 - now).total_seconds() / 60.0
        if busy > 0:
            rest = EffortEstimate(busy, max(busy, busy90))
            self.mean, self.var = rest.mean_minutes, rest.variance
        else:
            self.mean, self.var = 0.0, 0.0
        self.location = tech.location
        self.version = 0
        self.gaps: list[_Gap] = []
        self.key = 0.0
        self.rekey()

    def rekey(self) -> None:
        self.key = self.cover.at_or_after(self.anchor + _quantile(self.mean, self.var, 0.0))[0]


@dataclass
class _Option:
    chain: _Chain
    median: float
    p90: float
    mean: float  # moments of the random part of the start, after adding the drive
    var: float
    tech_ready: float  # median minute the technician could start, ignoring the ticket's hours
    gap: Optional[_Gap] = None
    drive50: float = 0.0  # the drive before the start at each bound (0 for remote work)
    drive90: float = 0.0

    @property
    def waits(self) -> bool:
        return self.median > self.tech_ready + _EPS


def _evaluate(chain: _Chain, ticket: DispatchTicket, cover: _Cover, travel: TravelModel) -> _Option:
    """The technician's start for the ticket at the end of their chain."""
    mean, var = chain.mean, chain.var
    if ticket.onsite:
        drive = travel.estimate(chain.location, ticket.site)
        mean += drive.mean_minutes
        var += drive.variance
    s50, ready, drive50 = _start_at(chain, mean, var, 0.0, cover)
    s90, _, drive90 = _start_at(chain, mean, var, Z90, cover) if var > 0.0 else (s50, ready, drive50)
    if s90 < s50:
        s90, drive90 = s50, drive50
    return _Option(chain, s50, s90, mean, var, ready, drive50=drive50, drive90=drive90)


def _start_at(chain: _Chain, mean: float, var: float, z: float, cover: _Cover) -> tuple[float, float, float]:
    """(start, start ignoring the ticket's hours, drive) at standard normal point `z` of a job whose free
    time plus drive has these moments.

    The sum's quantile less the quantile of the technician's free time alone is the drive's part
    at that point, which comes after the technician sets off (`_arrival`): they set off at the
    start less the drive."""
    free = chain.anchor + _quantile(chain.mean, chain.var, z)
    drive = chain.anchor + _quantile(mean, var, z) - free
    return (*_arrival(free, drive, chain.cover, cover), drive)


def _evaluate_with_gaps(chain: _Chain, ticket: DispatchTicket, cover: _Cover, travel: TravelModel) -> _Option:
    """The technician's best start: at the end of their chain or in one of their idle gaps."""
    best = _evaluate(chain, ticket, cover, travel)
    for gap in chain.gaps:
        if gap.from50 < best.median and gap.blocked != id(cover):
            option = _in_gap(gap, ticket, cover, travel)
            if option is not None and (option.median, option.p90) < (best.median, best.p90):
                best = option
    return best


def _in_gap(gap: _Gap, ticket: DispatchTicket, cover: _Cover, travel: TravelModel) -> Optional[_Option]:
    chain = gap.chain
    drive50 = drive90 = 0.0
    if ticket.onsite:
        drive = travel.estimate(gap.location, ticket.site)
        drive50, drive90 = drive.median_minutes, drive.p90_minutes
    s50, ready = _arrival(gap.from50, drive50, chain.cover, cover)
    s90 = max(s50, _arrival(gap.from90, drive90, chain.cover, cover)[0])
    done90 = s90 + ticket.effort.p90_minutes
    if gap.next_site is not None:
        here = ticket.site if ticket.onsite else gap.location
        done90 += travel.estimate(here, gap.next_site).p90_minutes
    if done90 > gap.next_start:
        return None
    return _Option(chain, s50, s90, 0.0, 0.0, ready, gap, drive50, drive90)


def _commit(option: _Option, ticket: DispatchTicket, cover: _Cover, shortest_job: float) -> Optional[_Gap]:
    """Book the ticket on the option's technician: their chain (or gap) now includes the job.

    Idle time shorter than `shortest_job` (the smallest 90% bound of any waiting job, at
    least MIN_GAP_MINUTES) could never be used, so it is not kept as a gap. Returns the gap
    that was opened or changed, for the caller's index.
    """
    chain = option.chain
    if option.gap is not None:  # the chain's tail (and so its heap entries) stays as it was
        gap = option.gap
        gap.from50 = option.median + ticket.effort.median_minutes
        gap.from90 = option.p90 + ticket.effort.p90_minutes
        if ticket.onsite and ticket.site is not None:
            gap.location = ticket.site
        gap.version += 1
        if gap.next_start - gap.from90 < shortest_job:
            chain.gaps.remove(gap)
            gap.alive = False
        return gap
    chain.version += 1
    mean, var, anchor = option.mean, option.var, chain.anchor
    if var <= 0.0:
        new_anchor, new_mean, new_var = option.median, 0.0, 0.0
    else:
        lo = anchor + _quantile(mean, var, _QUAD_Z[0] * 1.2)
        hi = anchor + _quantile(mean, var, _QUAD_Z[-1] * 1.2)
        leave = anchor + _quantile(chain.mean, chain.var, _QUAD_Z[0] * 1.2)
        start, until = _both(lo, chain.cover, cover)
        off, on_until = chain.cover.at_or_after(leave)
        if start == lo and until >= hi and off == leave and on_until >= hi:
            new_anchor, new_mean, new_var = anchor, mean, var
        else:
            raw = [anchor + _quantile(mean, var, z) for z in _QUAD_Z]
            pushed = [_start_at(chain, mean, var, z, cover)[0] for z in _QUAD_Z]
            new_anchor = pushed[0]
            offsets = [p - new_anchor for p in pushed]
            new_mean = sum(offsets) / len(offsets)
            spread = sum((o - new_mean) ** 2 for o in offsets) / len(offsets)
            raw_mean = sum(raw) / len(raw)
            raw_spread = sum((r - raw_mean) ** 2 for r in raw) / len(raw)
            # The nine points understate the spread of the whole distribution; scale back up.
            new_var = spread * (var / raw_spread) if raw_spread > 0 else spread
    if option.waits and option.median - option.tech_ready >= shortest_job:
        # Idle until the ticket's covered hours begin: offer that time to later tickets.
        free50 = chain.cover.at_or_after(anchor + _quantile(chain.mean, chain.var, 0.0))[0]
        free90 = chain.cover.at_or_after(anchor + _quantile(chain.mean, chain.var, Z90))[0]
        next_site = ticket.site if ticket.onsite else None
        opened = _Gap(chain, free50, max(free50, free90), chain.location, option.median, next_site, id(cover))
        chain.gaps.append(opened)
    else:
        opened = None
    chain.anchor = new_anchor
    chain.mean = new_mean + ticket.effort.mean_minutes
    chain.var = new_var + ticket.effort.variance
    if ticket.onsite and ticket.site is not None:
        chain.location = ticket.site
    chain.rekey()
    return opened


_ANY = object()

# Said of a ticket that could be worked now but waits for a technician with its skill to come on duty
# (the on-call technician may not have it): the estimate is then a shift's start, not a queue.
OFF_DUTY_NOTE = "Nobody with the skill this job needs is on duty now: the estimate is for the first who comes on."


def plan_dispatch(
    tickets_in_order: Sequence[DispatchTicket],
    technicians: Sequence[TechnicianInput],
    now: datetime,
    travel: TravelModel,
    forecast: Optional[ArrivalForecast] = None,
) -> list[ArrivalEstimate]:
    """Plan every waiting ticket; results come back in the order the tickets were given.

    With a `forecast`, estimates also allow for tickets not yet opened that will overtake.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    planned, chains, cover_of = _schedule(tickets_in_order, technicians, now, travel, {})

    if forecast is not None and forecast.tickets_per_hour > 0 and chains:
        _allow_for_overtaking(planned, tickets_in_order, forecast, len(chains), cover_of)

    order = sorted(
        range(len(planned)),
        key=lambda k: (planned[k][0].median if planned[k][0] is not None else math.inf, k),
    )
    position = [0] * len(planned)
    for place, k in enumerate(order, start=1):
        position[k] = place

    results: list[ArrivalEstimate] = []
    for k, (ticket, (option, waits, note)) in enumerate(zip(tickets_in_order, planned)):
        if option is None:
            results.append(
                ArrivalEstimate(ticket.id, position[k], position[k] - 1, None, None, None,
                                ticket.sla_due is not None, False, note)
            )
            continue
        median = now + timedelta(minutes=option.median)
        set_off = now + timedelta(minutes=max(0.0, option.median - option.drive50))
        notes = [note] if note else []
        if waits:
            notes.append("Outside the hours this ticket is covered: work starts when covered time begins.")
        if option.p90 == math.inf:
            # The technician's covered time (e.g. a last on-call night) ends before the 90% bound: no
            # honest bound to show, and no deadline can be called safe.
            p90 = set_off_p90 = None
            at_risk = ticket.sla_due is not None
            notes.append("No 90% bound: the technician's covered time ends before it.")
        else:
            p90 = now + timedelta(minutes=option.p90)
            set_off_p90 = max(set_off, now + timedelta(minutes=max(0.0, option.p90 - option.drive90)))
            at_risk = ticket.sla_due is not None and p90 > ticket.sla_due
            if at_risk:
                notes.append("The 90% bound is past the SLA deadline.")
        results.append(
            ArrivalEstimate(ticket.id, position[k], position[k] - 1, option.chain.tech.id, median, p90,
                            at_risk, waits, " ".join(notes), set_off, set_off_p90)
        )
    return results


def _schedule(
    tickets_in_order: Sequence[DispatchTicket],
    technicians: Sequence[TechnicianInput],
    now: datetime,
    travel: TravelModel,
    covers: dict[int, _Cover],
):
    """The greedy plan: for each ticket (in order) its option (technician, start) or None, and why.

    `covers` holds the calendars' covered stretches already read (keyed by calendar); a caller
    that plans the same tickets many times (improve_near_term) passes the same dict each time.
    """

    def cover_of(cal: CoverageCalendar) -> _Cover:
        found = covers.get(id(cal))
        if found is None:
            found = covers[id(cal)] = _Cover(cal, now)
        return found

    chains: list[_Chain] = []
    by_id: dict[int, _Chain] = {}
    # Entries: (when free, number of skills, index, version). Among technicians free at the
    # same time the least versatile goes first, keeping the all-rounders for what only they can do.
    heaps: dict[object, list[tuple[float, int, int, int]]] = {_ANY: []}
    for index, tech in enumerate(technicians):
        if tech.id in by_id:
            raise ValueError(f"technician {tech.id} is listed twice")
        chain = _Chain(tech, cover_of(tech.availability), now)
        chains.append(chain)
        by_id[tech.id] = chain
        for group in (_ANY, *tech.skills):
            heaps.setdefault(group, []).append((chain.key, len(tech.skills), index, 0))
    for heap in heaps.values():
        heapq.heapify(heap)
    index_of = {id(chain): i for i, chain in enumerate(chains)}

    def reschedule(chain: _Chain) -> None:
        i = index_of[id(chain)]
        entry = (chain.key, len(chain.tech.skills), i, chain.version)
        for group in (_ANY, *chain.tech.skills):
            heapq.heappush(heaps[group], entry)

    # Idle gaps by skill group and by the coverage that caused them (which cannot use them).
    gap_heaps: dict[object, dict[int, list[tuple[float, int, int, _Gap]]]] = {}
    gap_serial = [0]

    def index_gap(gap: _Gap) -> None:
        if not gap.alive:
            return
        gap_serial[0] += 1
        entry = (gap.from50, gap_serial[0], gap.version, gap)
        for group in (_ANY, *gap.chain.tech.skills):
            heapq.heappush(gap_heaps.setdefault(group, {}).setdefault(gap.blocked, []), entry)

    shortest_job = max(MIN_GAP_MINUTES, min((t.effort.p90_minutes for t in tickets_in_order), default=0.0))
    on_duty: dict[object, bool] = {}

    def anyone_on_duty(group: object) -> bool:
        """Is a technician of this skill group within their hours now (busy or not)?"""
        if group not in on_duty:
            on_duty[group] = any(chains[i].cover.at_or_after(0.0)[0] <= _EPS for _key, _n, i, _v in heaps[group])
        return on_duty[group]

    planned: list[tuple[Optional[_Option], bool, str]] = []
    for ticket in tickets_in_order:
        cover = cover_of(ticket.coverage)
        best: Optional[_Option] = None
        note = ""
        if ticket.pinned_technician_id is not None:
            chain = by_id.get(ticket.pinned_technician_id)
            if chain is None:
                note = "The technician this ticket is pinned to is not on the roster."
            else:
                best = _evaluate_with_gaps(chain, ticket, cover, travel)
        else:
            group = _ANY if ticket.required_skill is None else ticket.required_skill
            heap = heaps.get(group)
            if not heap:
                note = f"No technician on the roster has the skill {ticket.required_skill!r}."
            else:
                best = _best_in_heap(heap, chains, ticket, cover, travel)
                if group in gap_heaps:
                    best = _best_in_gaps(gap_heaps[group], ticket, cover, travel, best)
                if (best is not None and ticket.required_skill is not None and cover.at_or_after(0.0)[0] <= _EPS
                        and not anyone_on_duty(group)):
                    note = OFF_DUTY_NOTE
        if best is not None and best.median == math.inf:
            best = None
            note = "No technician is available in time this ticket is covered within a year."
        waits = False
        if best is not None:
            waits = best.waits
            changed = _commit(best, ticket, cover, shortest_job)
            if best.gap is None:
                reschedule(best.chain)
            if changed is not None:
                index_gap(changed)
        planned.append((best, waits, note))
    return planned, chains, cover_of


def _best_in_heap(
    heap: list[tuple[float, int, int, int]],
    chains: list[_Chain],
    ticket: DispatchTicket,
    cover: _Cover,
    travel: TravelModel,
) -> Optional[_Option]:
    """The technician in this skill group who can start the ticket soonest.

    Technicians come off the heap in order of when they can next start; a start is never
    earlier than that key, so the search stops once the next key is no better than the best
    found (or no start can beat the ticket's own first covered minute). Technicians not taken
    go back on the heap unchanged.
    """
    floor = cover.at_or_after(0.0)[0]
    best: Optional[_Option] = None
    taken: list[tuple[float, int, int, int]] = []
    evaluated = 0
    while heap and len(taken) < MAX_EXAMINED and evaluated < MAX_EVALUATED:
        key, _skills, i, version = heap[0]
        chain = chains[i]
        if version != chain.version:
            heapq.heappop(heap)
            continue
        if best is not None and key >= best.median:
            break
        taken.append(heapq.heappop(heap))
        if best is not None and ticket.onsite:
            # Cheap bound first: the drive alone may rule this technician out.
            if key + travel.minutes(chain.location, ticket.site) >= best.median:
                continue
        option = _evaluate(chain, ticket, cover, travel)
        evaluated += 1
        if best is None or (option.median, option.p90) < (best.median, best.p90):
            best = option
        if best.median <= floor + _EPS:
            break
    for entry in taken:
        heapq.heappush(heap, entry)
    return best


MAX_GAPS_EVALUATED = 6


def _best_in_gaps(
    by_cover: dict[int, list[tuple[float, int, int, _Gap]]],
    ticket: DispatchTicket,
    cover: _Cover,
    travel: TravelModel,
    best: Optional[_Option],
) -> Optional[_Option]:
    """A start in some technician's idle gap, if it beats `best` (gaps in order of their start)."""
    evaluated = 0
    for blocked, heap in by_cover.items():
        if blocked == id(cover):
            continue
        taken = []
        while heap and evaluated < MAX_GAPS_EVALUATED:
            from50, _serial, version, gap = heap[0]
            if not gap.alive or version != gap.version:
                heapq.heappop(heap)
                continue
            if best is not None and from50 >= best.median:
                break
            taken.append(heapq.heappop(heap))
            option = _in_gap(gap, ticket, cover, travel)
            evaluated += 1
            if option is not None and (best is None or (option.median, option.p90) < (best.median, best.p90)):
                best = option
        for entry in taken:
            heapq.heappush(heap, entry)
    return best


def _allow_for_overtaking(
    planned: list[tuple[Optional[_Option], bool, str]],
    tickets: Sequence[DispatchTicket],
    forecast: ArrivalForecast,
    technicians: int,
    cover_of,
) -> None:
    """Stretch each estimate by the work of tickets expected to open and overtake it.

    A newcomer ranks ahead of the ticket k-th of n in triage order with chance about
    (k+1)/(n+1) (the queue as a sample of what arrives). Newcomers arrive as a Poisson stream;
    each overtaking one adds its job shared over the roster. The expected delay grows the wait
    (which lets more overtake: a geometric series, capped), its Poisson variance widens the
    range, and both bounds are pushed back into covered time.
    """
    n = len(tickets)
    rate = forecast.tickets_per_hour / 60.0
    job = forecast.mean_job_minutes / technicians
    second_moment = 2.0 * job * job  # exponential-like job sizes: E[X^2] = 2 E[X]^2
    # Walk each technician's jobs in the order they will do them, so that stretched estimates
    # stay in that order (a later job never shows an earlier time than the one before it).
    by_start = sorted((k for k, item in enumerate(planned) if item[0] is not None),
                      key=lambda k: (planned[k][0].median, k))
    floor: dict[int, tuple[float, float]] = {}
    for k in by_start:
        option = planned[k][0]
        assert option is not None
        previous = floor.get(id(option.chain), (0.0, 0.0))
        if option.median <= 0.0:
            floor[id(option.chain)] = (max(previous[0], option.median), max(previous[1], option.p90))
            continue
        share = (k + 1) / (n + 1)
        load = min(rate * share * job, 0.6)
        count = rate * share * option.median
        delay = count * job / (1.0 - load)
        spread = (option.p90 - option.median) / Z90
        sd = math.sqrt(spread * spread + count * second_moment / (1.0 - load) ** 2)
        # The overtaking delay is skewed (often none, sometimes a burst): its median, by the
        # Wilson-Hilferty approximation for a gamma with this mean and variance, is below its mean.
        shape = count / 2.0  # mean^2 / variance of a compound Poisson with E[X^2] = 2 E[X]^2
        typical = delay * max(0.0, 1.0 - 1.0 / (9.0 * shape)) ** 3 if shape > 0 else 0.0
        cover = cover_of(tickets[k].coverage)
        median = _both(option.median + typical, option.chain.cover, cover)[0]
        p90 = _both(option.median + delay + Z90 * sd, option.chain.cover, cover)[0]
        if median == math.inf:  # a forecast so heavy it runs past the horizon: keep the plan
            median, p90 = option.median, option.p90
        elif p90 == math.inf:
            p90 = max(option.p90, median)
        if median < previous[0]:
            median = _both(previous[0], option.chain.cover, cover)[0]
        if p90 < max(median, previous[1]):
            p90 = _both(max(median, previous[1]), option.chain.cover, cover)[0]
        if median == math.inf or p90 == math.inf:  # nothing covered after the previous job: keep the plan
            median, p90 = option.median, option.p90
        option.median, option.p90 = median, p90
        floor[id(option.chain)] = (median, p90)


# The near-term step: how far it looks, and how many plans it may try for one recompute.
NEAR_TERM_MIN_WINDOW = 12
NEAR_TERM_MAX_WINDOW = 20
NEAR_TERM_MAX_PLANS = 300
# How many technicians (the first free with the skill) a ticket may be given to by the near-term step.
NEAR_TERM_CHOICES = 4
_TIE = 1e-9


def _near_term_cost(
    tickets: Sequence[DispatchTicket], technicians: Sequence[TechnicianInput], now: datetime,
    travel: TravelModel, cost_per_hour: Mapping[int, float], covers: dict,
    promise: Mapping[int, float], dues: Mapping[int, float],
) -> tuple[float, float, float, dict[int, tuple[float, float, int]]]:
    """(cost of the hours past the SLA due, cost of the hours waited, promises expected broken,
    each ticket's planned start as (median, 90% bound, technician id)) of the greedy plan.

    The first two are `cost_per_hour` x hours on median starts: the weighted lateness the firm
    is judged on (docs/BENCHMARKS.md), and what idle staff and lost revenue cost before the due
    time. The third is `promise` (what breaking a ticket's SLA promise costs, once) x the chance
    the start misses the due, read from the plan's median and 90% bound: a start planned a few
    minutes before the due is a coin toss, not a kept promise.
    """
    late = waited = broken = 0.0
    starts: dict[int, tuple[float, float, int]] = {}
    planned = _schedule(tickets, technicians, now, travel, covers)[0]
    for ticket, (option, _waits, _note) in zip(tickets, planned):
        if option is None:
            continue
        cost = cost_per_hour.get(ticket.id, 0.0)
        start = option.median
        starts[ticket.id] = (start, option.p90, option.chain.tech.id)
        waited += cost * max(0.0, start) / 60.0
        due = dues[ticket.id]
        if due != math.inf:
            if start > due:
                late += cost * (start - due) / 60.0
            stake = promise.get(ticket.id, 0.0)
            if stake:
                broken += stake * _chance_late(start, option.p90, due)
    return late, waited, broken, starts


def _chance_late(median: float, p90: float, due: float) -> float:
    """Chance a start with this median and 90% bound comes after `due` (normal between the two)."""
    spread = (p90 - median) / Z90
    if not 0.0 < spread < math.inf:  # no spread known: the median decides
        return 1.0 if median > due else 0.0
    return 1.0 - _STANDARD_NORMAL.cdf((due - median) / spread)


def _movable_runs(head: Sequence[DispatchTicket], group: Mapping[int, Hashable], fixed: Collection[int]):
    """Stretches [lo, hi) of neighbours that may be reordered among themselves: one group, no pin."""
    runs, start = [], None
    for k in range(len(head) + 1):
        free = k < len(head) and head[k].id not in fixed
        if free and start is not None and group.get(head[k].id) == group.get(head[start].id):
            continue
        if start is not None and k - start >= 2:
            runs.append((start, k))
        start = k if free else None
    return runs


def _earliest_due_first(head: Sequence[DispatchTicket], runs: Sequence[tuple[int, int]],
                        dues: Mapping[int, float]) -> list[DispatchTicket]:
    """The near-term jobs with each movable run in order of SLA due (stable: ties keep triage's order)."""
    plan = list(head)
    for lo, hi in runs:
        plan[lo:hi] = sorted(head[lo:hi], key=lambda t: dues[t.id])
    return plan


def improve_near_term(
    tickets_in_order: Sequence[DispatchTicket],
    technicians: Sequence[TechnicianInput],
    now: datetime,
    travel: TravelModel,
    cost_per_hour: Mapping[int, float],
    group: Mapping[int, Hashable],
    fixed: Collection[int] = frozenset(),
    window: Optional[int] = None,
    share_before_due: float = 0.0,
    max_plans: int = NEAR_TERM_MAX_PLANS,
    promise: Optional[Mapping[int, float]] = None,
    fastpass: Collection[int] = frozenset(),
) -> list[DispatchTicket]:
    """The triage order with the next few jobs reordered (or given to another technician) where
    that lowers the expected cost of delay.

    Why: a fixed order followed greedily cannot see that, say, two short urgent jobs done
    before a long one keep two promises instead of one, nor that the all-rounder who is free
    first is better kept for the job only they can do. This looks only at the near term (the
    first `window` tickets: two per technician, at least 12, at most 20), and only when the
    triage order's plan has a job expected past its SLA due or a promise at risk. It then tries
    two kinds of move, keeping one when it lowers the planned cost of delay (local search, first
    improvement, repeated until no move helps or `max_plans` plans were tried; once from the
    triage order and once from each run of neighbours in order of SLA due, keeping the cheaper
    result):
    - move one ticket to another place among its neighbours of the same `group` (contract
      with contract, break/fix with break/fix);
    - give one ticket to another technician with its skill (one of the NEAR_TERM_CHOICES who
      are free first), where the greedy plan would give it to whoever can start it soonest.
    A ticket in `fixed` (a dispatcher's pin) is never moved nor jumped, and a ticket already
    given to a technician keeps them. The cost of delay is as triage weighs it: `cost_per_hour`
    x (hours past the SLA due + `share_before_due` x hours waited), on median times, plus each
    ticket's `promise` (the points triage gives a contract SLA still within reach) x the chance
    its start misses the due. A ticket given to another technician must still start by its due at
    its 90% bound (or that bound must be no later than before), and a ticket in `fastpass` (a
    contract client's) is never given to a technician who starts it later while one who could have
    taken it starts a ticket outside `fastpass` (break/fix) before it. Only the technicians that could
    take these jobs soonest are planned: for each skill, the `window` earliest free. Returns a
    new list (tickets given to a technician come back with `pinned_technician_id` set); the
    inputs are not changed.
    """
    order = list(tickets_in_order)
    if not order or not technicians:
        return order
    if window is None:
        window = min(max(2 * len(technicians), NEAR_TERM_MIN_WINDOW), NEAR_TERM_MAX_WINDOW)
    size = min(len(order), window)
    if size < 2:
        return order
    crew: dict[int, TechnicianInput] = {}
    by_skill: dict[object, list[TechnicianInput]] = {}
    for tech in technicians:
        for skill in (_ANY, *tech.skills):
            by_skill.setdefault(skill, []).append(tech)
    for skill, members in by_skill.items():
        by_skill[skill] = sorted(members, key=lambda t: (t.free_at, len(t.skills), t.id))[:size]
        for tech in by_skill[skill]:
            crew.setdefault(tech.id, tech)
    pinned_ids = {t.pinned_technician_id for t in order[:size] if t.pinned_technician_id is not None}
    for tech in technicians:
        if tech.id in pinned_ids:
            crew.setdefault(tech.id, tech)
    team = list(crew.values())
    head = order[:size]
    covers: dict[int, _Cover] = {}  # calendars read once for every plan tried
    promise = promise or {}
    # Minutes from now to each SLA due (none: never late), read once for every plan tried.
    dues = {t.id: (t.sla_due - now).total_seconds() / 60.0 if t.sla_due is not None else math.inf for t in head}

    def cost(plan: list[DispatchTicket]) -> tuple[float, dict[int, tuple[float, float, int]]]:
        late, waited, broken, starts = _near_term_cost(plan, team, now, travel, cost_per_hour, covers, promise,
                                                       dues)
        return late + share_before_due * waited + broken, starts

    late, waited, broken, starts = _near_term_cost(head, team, now, travel, cost_per_hour, covers, promise, dues)
    runs = _movable_runs(head, group, fixed)
    if late + broken <= _TIE:
        return order
    skills = {tech.id: tech.skills for tech in team}
    needs = {t.id: t.required_skill for t in head}

    def jumps_the_fastpass(given: int, before: float, starts: Mapping[int, tuple[float, float, int]]) -> bool:
        """The contract ticket `given` now starts later while a break/fix job starts before it on a
        technician who could have taken it: the break/fix client would be served first."""
        if given not in fastpass:
            return False
        after = starts.get(given, (math.inf, math.inf, 0))[0]
        if after <= before + _TIE:
            return False
        skill = needs.get(given)
        return any(
            other not in fastpass and start < after - _TIE and (skill is None or skill in skills.get(tech_id, ()))
            for other, (start, _p90, tech_id) in starts.items()
        )

    choices = {
        t.id: [tech.id for tech in by_skill.get(_ANY if t.required_skill is None else t.required_skill, [])
               [:NEAR_TERM_CHOICES]]
        for t in head if t.id not in fixed and t.pinned_technician_id is None
    }
    # Two starts, each searched with half the budget: triage's order, and each run in order of
    # SLA due. Moving one ticket at a time stops at the best plan near where it began; from
    # triage's order alone, a long job due soon can stay behind shorter work whose promises each
    # single move would break (tests/domain/test_dispatch_near_term.py).
    budget, triage_cost = max_plans - 1, late + share_before_due * waited + broken
    starts_from = [(head, triage_cost, starts, budget)]
    by_due = _earliest_due_first(head, runs, dues)
    if budget > 1 and [t.id for t in by_due] != [t.id for t in head]:
        budget -= 1
        starts_from = [(head, triage_cost, starts, budget // 2), (by_due, *cost(by_due), budget - budget // 2)]
    costed: dict = {}
    best_cost, best_head = math.inf, head
    for plan, plan_cost, plan_starts, allowed in starts_from:
        search = _NearTermSearch(cost, plan_cost, plan_starts, dues, allowed, jumps_the_fastpass, costed)
        while True:
            plan = search.reorder(plan, runs)
            if not search.reassign(plan, choices):
                break
        if search.best < best_cost - _TIE:
            best_cost, best_head = search.best, plan
    return best_head + order[size:]



class _NearTermSearch:
    """First-improvement local search over near-term plans, within a budget of plans tried."""

    def __init__(self, cost: Callable[[list[DispatchTicket]], tuple[float, dict[int, tuple[float, float, int]]]],
                 best: float, starts: dict[int, tuple[float, float, int]], dues: Mapping[int, float], budget: int,
                 jumps_the_fastpass: Optional[Callable[[int, float, Mapping[int, tuple[float, float, int]]], bool]] = None,
                 costed: Optional[dict] = None) -> None:
        self.cost = cost
        self.jumps_the_fastpass = jumps_the_fastpass or (lambda _given, _before, _starts: False)
        self.best = best
        self.starts = starts
        self.dues = dues
        self.budget = budget
        # Plans already costed in this search, by (ticket, technician given) in order: moving
        # ticket i to place i+1 and ticket i+1 to place i give the same plan, and a pass after an
        # improvement meets many plans again (about a fifth of those tried in the simulation).
        # Searches from other starts of one recompute may share it.
        self.costed: dict[tuple[tuple[int, Optional[int]], ...], tuple[float, dict[int, tuple[float, float, int]]]] = (
            {} if costed is None else costed)

    def _better(self, candidate: list[DispatchTicket], given: Optional[int] = None) -> bool:
        """True (and kept) when the candidate plan costs less; a ticket `given` to another
        technician must not have its 90% bound later than before unless that bound is still by
        its due: it may wait a little for the specialist, but is never made late (or later), nor
        left to the luck of a job that may run on, so that others, break/fix ones among them,
        take the technicians it could have had. No plan may leave out a job the plan it replaces
        starts. (On the median alone, a start planned minutes
        before the due passed; requiring 90% kept more contract promises in the simulation, at
        lower lateness: docs/BENCHMARKS.md.)"""
        self.budget -= 1
        key = tuple((t.id, t.pinned_technician_id) for t in candidate)
        if key not in self.costed:
            self.costed[key] = self.cost(candidate)
        cost, starts = self.costed[key]
        if not self.starts.keys() <= starts.keys():
            return False
        if given is not None:
            before = self.starts.get(given, (math.inf, math.inf, 0))
            after = starts.get(given, (math.inf, math.inf, 0))[1]
            if after > max(before[1], self.dues[given]) + _TIE:
                return False
            if self.jumps_the_fastpass(given, before[0], starts):
                return False
        if cost < self.best - _TIE:
            self.best, self.starts = cost, starts
            return True
        return False

    def reorder(self, head: list[DispatchTicket], runs: Sequence[tuple[int, int]]) -> list[DispatchTicket]:
        """Move single tickets within their runs until no move helps."""
        improved = True
        while improved and self.budget > 0:
            improved = False
            for lo, hi in runs:
                for i in range(lo, hi):
                    for j in range(lo, hi):
                        if i == j or self.budget <= 0:
                            continue
                        candidate = head[:i] + head[i + 1:]
                        candidate.insert(j, head[i])
                        if self._better(candidate):
                            head, improved = candidate, True
        return head

    def reassign(self, head: list[DispatchTicket], choices: Mapping[int, Sequence[int]]) -> bool:
        """Give tickets (in place) to other technicians where that helps; True when one moved."""
        moved = False
        for k in range(len(head)):
            for tech_id in choices.get(head[k].id, ()):
                if self.budget <= 0:
                    return moved
                if head[k].pinned_technician_id == tech_id:
                    continue
                candidate = list(head)
                candidate[k] = replace(head[k], pinned_technician_id=tech_id)
                if self._better(candidate, given=head[k].id):
                    head[k] = candidate[k]
                    moved = True
        return moved
