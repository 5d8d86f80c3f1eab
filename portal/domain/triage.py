"""Triage: the order in which waiting tickets are served, and the reasons in plain words.

Policy (see docs/ARCHITECTURE.md, "Triage and SLA policy"):
1. Contract clients come before break/fix clients, always (the "FastPass"), unless a
   dispatcher pins a ticket to a place by hand (an override, with a reason).
2. Within a class, by cost of delay: the cost of each hour of delay (points summed from
   business impact, revenue at risk per hour, the client's own deadline, a safety-critical
   flag), divided by the estimated hours of work (Smith's rule: the most cost removed per hour
   of a technician's time first, so quick wins go first when the cost is equal), times an SLA
   urgency factor that rises sharply as the slack before the SLA due runs out (1 once the
   work can no longer finish before the due time): "apparent tardiness cost".
3. Ties: earlier opened first, then lower id -- so the order is a strict total order.

A ticket's score depends only on the ticket itself, `now` and the weights, never on the other
tickets: an unrelated ticket can never flip two others' relative order.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Mapping, Optional, Sequence

from portal.domain.calendar import CoverageCalendar, as_utc, load_zone, repeated_hour_zone


class Impact(str, Enum):
    COMPANY = "company"
    DEPARTMENT = "department"
    PERSON = "person"


IMPACT_WORDS = {
    Impact.COMPANY: "whole office affected",
    Impact.DEPARTMENT: "one department affected",
    Impact.PERSON: "one person affected",
}

# Plain-words labels for the staff settings form, keyed by TriageWeights field name.
WEIGHT_LABELS: dict[str, str] = {
    "impact_company": "Points when the whole company is affected",
    "impact_department": "Points when one department is affected",
    "impact_person": "Points when one person is affected",
    "revenue_points_per_1000": "Points per $1,000 an hour of revenue at risk",
    "revenue_cap": "Most points revenue at risk can add",
    "deadline_max": "Points for a client deadline that is due now (or already passed)",
    "deadline_horizon_hours": "Hours ahead at which a client deadline starts to count",
    "safety_critical": "Points for safety-critical work (pharmacy, clinic)",
    "sla_max": "Points an hour added while a contract SLA can still be met (what a broken promise costs)",
    "cost_before_due_share": "Share of the cost of delay that counts even while the SLA due is far away",
    "sla_horizon_hours": "Hours of slack before the SLA due at which its urgency has fallen to about a third",
    "effort_floor_minutes": "Fewest minutes of work a ticket is counted as (so a tiny estimate cannot jump the queue)",
    "effort_cap_hours": "Most hours of work that count against a ticket",
}

# Weights of the earlier additive score, still accepted (and ignored) so that weights saved
# before the change load without an error.
RETIRED_WEIGHTS = frozenset({"effort_points_per_hour"})

# Horizons and effort bounds divide the score: a value near zero (1e-300) turned it into infinity or
# nothing at all. A minute is the least that means anything for an hour-scale queue.
_MINUTE_KEYS = {"deadline_horizon_hours": 1 / 60, "sla_horizon_hours": 1 / 60, "effort_cap_hours": 1 / 60,
                "effort_floor_minutes": 1.0}
# A share of the cost of delay: more than all of it (5 = 500%) would outweigh the SLA urgency it is added to.
_SHARE_KEYS = {"cost_before_due_share"}
_MAX_WEIGHT = 1_000_000.0


@dataclass(frozen=True)
class TriageWeights:
    """Staff-editable weights of the cost-of-delay score (points; see WEIGHT_LABELS)."""

    impact_company: float = 100.0
    impact_department: float = 25.0
    impact_person: float = 5.0
    revenue_points_per_1000: float = 50.0
    revenue_cap: float = 1000.0
    deadline_max: float = 200.0
    deadline_horizon_hours: float = 24.0
    safety_critical: float = 50.0
    sla_max: float = 100.0
    sla_horizon_hours: float = 1.0
    cost_before_due_share: float = 0.25
    effort_floor_minutes: float = 30.0
    effort_cap_hours: float = 8.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TriageWeights":
        """Validated weights from staff input; missing keys keep their defaults.

        Raises ValueError whose message starts with the offending key, so a form can show it
        next to the right field.
        """
        known = {f.name for f in fields(cls)}
        data = {key: value for key, value in data.items() if key not in RETIRED_WEIGHTS}
        for key in data:
            if key not in known:
                raise ValueError(f"{key}: unknown triage weight")
        values: dict[str, float] = {}
        for key in sorted(known):
            if key not in data:
                continue
            raw = data[key]
            if isinstance(raw, bool):
                raise ValueError(f"{key}: enter a number")
            try:
                number = float(Decimal(str(raw).strip())) if isinstance(raw, str) else float(raw)
            except (InvalidOperation, TypeError, ValueError):
                raise ValueError(f"{key}: enter a number") from None
            if not math.isfinite(number):
                raise ValueError(f"{key}: enter a finite number")
            if number < 0:
                raise ValueError(f"{key}: must not be negative")
            if key in _MINUTE_KEYS and number < _MINUTE_KEYS[key] * (1 - 1e-9):
                unit = "1" if key.endswith("_minutes") else "0.0167 (1/60)"
                raise ValueError(f"{key}: must be at least a minute ({unit})")
            if key in _SHARE_KEYS and number > 1:
                raise ValueError(f"{key}: must be a share between 0 and 1 (0.25 = a quarter)")
            if number > _MAX_WEIGHT:
                raise ValueError(f"{key}: must be at most {_MAX_WEIGHT:,.0f}")
            values[key] = number
        weights = cls(**values)
        if weights.impact_company < weights.impact_department:
            raise ValueError("impact_company: must be at least the department points")
        if weights.impact_department < weights.impact_person:
            raise ValueError("impact_department: must be at least the one-person points")
        if weights.effort_cap_hours * 60 < weights.effort_floor_minutes:
            raise ValueError("effort_cap_hours: must be at least the fewest minutes counted (effort_floor_minutes)")
        return weights


@dataclass(frozen=True)
class TriageTicket:
    id: int
    is_contract: bool
    plan_name: str
    impact: Impact
    revenue_per_hour: float
    client_deadline: Optional[datetime]
    safety_critical: bool
    sla_due: Optional[datetime]
    effort_minutes: float
    opened_at: datetime
    override_position: Optional[int] = None
    override_reason: Optional[str] = None
    # The client's own zone (its organisation's), when not the firm's: the client's reasons name its
    # deadlines in it, labelled, as its pages and emails do. Staff reasons keep the firm's clock.
    client_tz: Optional[str] = None


@dataclass(frozen=True)
class TriageResult:
    ticket_id: int
    rank: int
    score: float
    components: dict[str, float] = field(hash=False)
    client_reasons: tuple[str, ...]
    staff_reasons: tuple[str, ...]


def delay_cost_per_hour(result: TriageResult) -> float:
    """Points an hour of delay costs (impact, revenue, deadline, safety): what dispatch weighs lateness by."""
    return sum(result.components.get(part, 0.0) for part in ("impact", "revenue", "deadline", "safety"))


def promise_points(result: TriageResult) -> float:
    """Points a contract SLA still within reach is worth keeping: what dispatch weighs a broken promise by."""
    return result.components.get("sla", 0.0)


def describe_local_time(at: datetime, now: datetime, tz: str, labelled: bool = False) -> str:
    """"today 17:00", "tomorrow 09:00", "yesterday 16:30" or "Fri 27 Nov 09:00" in zone tz; `labelled`
    adds the zone ("today 14:00 PST") for a reader whose zone is not the firm's."""
    zone = load_zone(tz)
    local = as_utc(at, "at").astimezone(zone)
    delta, day, clock = _day_and_clock(local, as_utc(now, "now").astimezone(zone).date())
    if labelled and not repeated_hour_zone(local):
        clock = f"{clock} {local:%Z}"
    if delta == 0:
        return f"today {clock}"
    if delta == 1:
        return f"tomorrow {clock}"
    if delta == -1:
        return f"yesterday {clock}"
    return f"{day} {clock}"


def _day_and_clock(local: datetime, today: date) -> tuple[int, str, str]:
    """(days after today, "Fri 27 Nov" with the year when not this year's, "09:00" with its zone in a
    repeated hour): the parts every sentence that names a local time is made of."""
    year = f" {local.year}" if local.year != today.year else ""
    day = f"{local:%a} {local.day} {local:%b}{year}"
    return (local.date() - today).days, day, f"{local:%H:%M}{repeated_hour_zone(local)}"


def _urgency(due: datetime, now: datetime, maximum: float, horizon_hours: float) -> tuple[float, float]:
    """Points rising linearly from 0 (horizon away) to `maximum` (due now or overdue)."""
    hours_left = (due - now) / timedelta(hours=1)
    if hours_left <= 0:
        return maximum, hours_left
    if hours_left >= horizon_hours:
        return 0.0, hours_left
    return maximum * (1 - hours_left / horizon_hours), hours_left


@dataclass(frozen=True)
class _Scored:
    ticket: TriageTicket
    score: float
    components: dict[str, float]
    staff_parts: tuple[str, ...]
    client_parts: tuple[str, ...]
    key: tuple


def _check_ticket(ticket: TriageTicket) -> Impact:
    try:
        impact = Impact(ticket.impact)
    except ValueError:
        raise ValueError(f"ticket {ticket.id}: impact must be company, department or person") from None
    for name in ("revenue_per_hour", "effort_minutes"):
        value = float(getattr(ticket, name))
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"ticket {ticket.id}: {name} must be a number of at least 0")
    if ticket.override_position is not None and ticket.override_position < 1:
        raise ValueError(f"ticket {ticket.id}: override_position must be 1 or more")
    return impact


def _score(ticket: TriageTicket, weights: TriageWeights, now: datetime, tz: str) -> _Scored:
    """Cost-of-delay score of one ticket: depends on nothing but the ticket, now and weights."""
    impact = _check_ticket(ticket)
    opened = as_utc(ticket.opened_at, f"ticket {ticket.id} opened_at")
    client_tz = ticket.client_tz if ticket.client_tz is not None and ticket.client_tz != tz else None

    def both_times(at: datetime) -> tuple[str, str]:
        """(staff's words, the client's words) for one time."""
        firm = describe_local_time(at, now, tz)
        return firm, firm if client_tz is None else describe_local_time(at, now, client_tz, labelled=True)

    staff: list[str] = []
    client: list[str] = []
    if ticket.is_contract:
        staff.append(f"class: contract ({ticket.plan_name}) - served before break/fix")
        # Named after the client's own plan: "Priority contract" read as the Priority plan to
        # Premium and Essentials clients.
        client.append(f"{ticket.plan_name} contract: served before break/fix calls")
    else:
        staff.append(f"class: break/fix ({ticket.plan_name}) - served after contract clients")
        client.append("Break/fix (no contract): served after contract clients")

    impact_points = {
        Impact.COMPANY: weights.impact_company,
        Impact.DEPARTMENT: weights.impact_department,
        Impact.PERSON: weights.impact_person,
    }[impact]
    staff.append(f"impact {impact.value}: +{impact_points:.1f}")
    client.append(IMPACT_WORDS[impact])

    revenue = float(ticket.revenue_per_hour)
    revenue_points = min(weights.revenue_cap, revenue / 1000 * weights.revenue_points_per_1000)
    if revenue > 0:
        staff.append(f"revenue at risk ${revenue:,.0f}/h: +{revenue_points:.1f}")
        client.append(f"${revenue:,.0f} an hour of revenue at risk")

    deadline_points = 0.0
    if ticket.client_deadline is not None:
        deadline = as_utc(ticket.client_deadline, f"ticket {ticket.id} client_deadline")
        deadline_points, hours = _urgency(deadline, now, weights.deadline_max, weights.deadline_horizon_hours)
        when, client_when = both_times(deadline)
        if hours <= 0:
            staff.append(f"client deadline passed ({when}): +{deadline_points:.1f}")
            client.append(f"deadline {client_when} has passed")
        else:
            staff.append(f"client deadline in {hours:.1f} h ({when}): +{deadline_points:.1f}")
            client.append(f"deadline {client_when}")

    safety_points = weights.safety_critical if ticket.safety_critical else 0.0
    if ticket.safety_critical:
        staff.append(f"safety-critical: +{safety_points:.1f}")
        client.append("safety-critical")

    rate = impact_points + revenue_points + deadline_points + safety_points
    staff.append(f"cost of delay: {rate:.1f} points an hour")

    effort_minutes = float(ticket.effort_minutes)
    effort_hours = min(max(effort_minutes, weights.effort_floor_minutes) / 60, weights.effort_cap_hours)
    staff.append(f"effort {effort_minutes:.0f} min: / {effort_hours:.2f} h")
    if 0 < effort_minutes <= 30:
        client.append(f"quick fix (about {effort_minutes:.0f} min)")

    # Slack = hours left until the SLA due. The SLA is met when the technician arrives (on site) or
    # starts (remote), so the work itself does not eat into it. With slack to spare the urgency
    # decays exponentially (about a third per `sla_horizon_hours`); with none left it is 1 and the
    # order falls back to pure cost per hour of work. A ticket with no due time counts as one
    # horizon of slack.
    slack = weights.sla_horizon_hours
    promise_points = 0.0
    if ticket.sla_due is not None:
        sla_due = as_utc(ticket.sla_due, f"ticket {ticket.id} sla_due")
        hours = (sla_due - now) / timedelta(hours=1)
        slack = hours
        when, client_when = both_times(sla_due)
        if hours <= 0:
            staff.append(f"SLA overdue since {when}")
        else:
            staff.append(f"SLA due in {hours:.1f} h ({when})")
        if ticket.is_contract:
            client.append(f"contract target {'was ' if hours <= 0 else ''}due {client_when}")
            if hours > 0:
                # A promise still within reach is worth keeping: once broken, it is lost anyway
                # and only the cost of delay is left.
                promise_points = weights.sla_max
                staff.append(f"contract SLA still within reach: +{promise_points:.1f}")
        else:
            client.append(f"aiming for {client_when} (best effort, not a guarantee)")
    urgency = math.exp(-max(0.0, slack) / weights.sla_horizon_hours)
    staff.append(f"SLA urgency: x{urgency:.3f}")

    components = {
        "impact": impact_points,
        "revenue": revenue_points,
        "deadline": deadline_points,
        "safety": safety_points,
        "sla": promise_points,
        "effort_hours": effort_hours,
        "sla_urgency": urgency,
    }
    # Idle staff and lost revenue cost money from the first minute, not only past the SLA due:
    # a share of the cost of delay always counts, the rest (and the promise) with the urgency.
    score = (rate * (weights.cost_before_due_share + urgency) + promise_points * urgency) / effort_hours
    staff.append(f"score {score:.1f}")
    key = (0 if ticket.is_contract else 1, -score, opened, ticket.id)
    return _Scored(ticket, score, components, tuple(staff), tuple(client), key)


def rank_tickets(
    tickets: Sequence[TriageTicket], weights: TriageWeights, now: datetime, tz: str
) -> list[TriageResult]:
    """All waiting tickets in serving order, each with its score and reasons.

    Overrides: a ticket with override_position p is placed p-th among all tickets (or last if
    there are fewer); the others keep their relative order. Two tickets pinned to the same
    place keep their natural order, one right after the other (pins never swap places).
    """
    now = as_utc(now, "now")
    load_zone(tz)
    seen: set[int] = set()
    for ticket in tickets:
        if ticket.id in seen:
            raise ValueError(f"ticket {ticket.id} appears twice")
        seen.add(ticket.id)
    scored = sorted((_score(t, weights, now, tz) for t in tickets), key=lambda s: s.key)
    natural_place = {s.ticket.id: index for index, s in enumerate(scored, start=1)}
    free = [s for s in scored if s.ticket.override_position is None]
    pinned = sorted(
        (s for s in scored if s.ticket.override_position is not None),
        key=lambda s: (s.ticket.override_position, s.key),
    )
    # Pinned places, in pin order: clamp to the list, bump clashes to the next place, and pull
    # back from the end so every pinned ticket gets its own place.
    count, slots, previous = len(scored), [], 0
    for item in pinned:
        previous = max(min(item.ticket.override_position, count), previous + 1)
        slots.append(previous)
    for index in range(len(slots)):
        slots[index] = min(slots[index], count - (len(slots) - 1 - index))
    placed: list[Optional[_Scored]] = [None] * count
    for item, slot in zip(pinned, slots):
        placed[slot - 1] = item
    remaining = iter(free)
    order = [item if item is not None else next(remaining) for item in placed]

    results = []
    for rank, item in enumerate(order, start=1):
        staff = list(item.staff_parts)
        client = list(item.client_parts)
        ticket = item.ticket
        if ticket.override_position is not None:
            reason = (ticket.override_reason or "").strip()
            staff.append(
                f"override: pinned at place {ticket.override_position} "
                f"(natural place {natural_place[ticket.id]})" + (f": {reason}" if reason else "")
            )
            # No number: the client's place is the order of expected start (dispatch), which a pin
            # does not always change, so "Placed at position 7" could sit under "1st in line".
            client.insert(0, "Moved in the queue by our dispatcher" + (f": {reason}" if reason else ""))
        results.append(
            TriageResult(
                ticket_id=ticket.id,
                rank=rank,
                score=item.score,
                components=dict(item.components),
                client_reasons=tuple(client),
                staff_reasons=tuple(staff),
            )
        )
    return results


@dataclass(frozen=True)
class AfterHoursDecision:
    covered_now: bool
    page_on_call: bool
    next_business_at: Optional[datetime]
    message: str
    # When the on-call cover ends, set only if that is before the response is due (or within
    # ON_CALL_HANDOVER_MARGIN of it): the dispatchers are alerted too, to find cover, and the client is told so.
    cover_ends_at: Optional[datetime] = None

    @property
    def alert_dispatchers(self) -> bool:
        return self.cover_ends_at is not None


# An on-call technician who goes off duty less than this after the response is due cannot be counted on
# to answer it: a page at 06:55 to someone whose call ends at 07:00 is not a response by 07:25.
ON_CALL_HANDOVER_MARGIN = timedelta(minutes=15)

PAGED_MESSAGE = "After hours: your contract covers emergencies, so the on-call technician has been paged."
NOBODY_ON_CALL_MESSAGE = ("After hours: your contract covers emergencies. No technician is on call right now, "
                          "so our dispatchers have been alerted to find one.")


def after_hours_decision(
    now: datetime,
    is_contract: bool,
    after_hours_emergencies: bool,
    plan_calendar: CoverageCalendar,
    business_calendar: CoverageCalendar,
    on_call: bool = True,
    on_call_ends_at: Optional[datetime] = None,
    response_due_at: Optional[datetime] = None,
) -> AfterHoursDecision:
    """What happens to a ticket opened at `now`.

    In business hours: queued as usual. Outside them, a contract with after-hours emergencies
    (or a plan whose own calendar covers this moment, e.g. 24x7) pages the on-call technician;
    everyone else is told plainly when work starts: the next covered moment of their plan.
    `on_call` False: the rota has nobody at `now`, so the page goes to the dispatchers and the
    client is told that, not that a technician was paged. `on_call_ends_at`: when the on-call cover
    under way at `now` ends; if that is before `response_due_at` plus ON_CALL_HANDOVER_MARGIN (or,
    with no response due, within the margin of `now`), the technician is paged and the dispatchers
    alerted to find cover, and the client is told when the technician goes off duty and when the
    day shift begins, not that the technician is on it (unless the day shift begins before the cover
    ends: then there is no gap).
    """
    now = as_utc(now, "now")
    if business_calendar.is_covered(now):
        return AfterHoursDecision(True, False, None, "Within business hours: your ticket is in the queue now.")
    plan_covered = plan_calendar.is_covered(now)
    if is_contract and (after_hours_emergencies or plan_covered):
        if not on_call:
            return AfterHoursDecision(True, True, None, NOBODY_ON_CALL_MESSAGE)
        day_shift_at = business_calendar.next_covered(now)
        if on_call_ends_at is not None and on_call_cover_too_short(now, on_call_ends_at, response_due_at, day_shift_at):
            message = _cover_ending_message(now, on_call_ends_at, day_shift_at, business_calendar)
            return AfterHoursDecision(True, True, None, message, cover_ends_at=on_call_ends_at)
        return AfterHoursDecision(True, True, None, PAGED_MESSAGE)
    if plan_covered:
        return AfterHoursDecision(True, False, None, "Your plan covers this time: your ticket is in the queue now.")
    next_at = plan_calendar.next_covered(now)
    local = business_calendar.local(next_at)
    when = f"{local:%a} {local.day} {local:%b %Y %H:%M}"
    if local.date() == business_calendar.local(now).date():
        # Before opening time the next business day is today: "next business day, Wed 25 Nov" read
        # on Wed 25 Nov looked like a mistake.
        message = f"Outside business hours: we will start when the next business day begins: today, {when}."
    else:
        closed = holidays_words(plan_calendar.holidays_closed(now, next_at))
        message = (f"Outside business hours{f' ({closed})' if closed else ''}: "
                   f"we will start on the next business day, {when}.")
    return AfterHoursDecision(False, False, next_at, message)


def holidays_words(closed: Sequence[tuple[date, str]]) -> str:
    """"Thu 26 Nov is Thanksgiving Day, a public holiday": a Thursday 10:00 read as "outside business
    hours", or Wednesday evening's "next business day" read as Friday, with no reason given."""
    days = [f"{day:%a %d %b} ({name})" for day, name in closed]
    if not days:
        return ""
    if len(days) == 1:
        day, name = closed[0]
        return f"{day:%a %d %b} is {name}, a public holiday"
    return f"{', '.join(days[:-1])} and {days[-1]} are public holidays"


def on_call_cover_too_short(now: datetime, cover_ends_at: datetime, response_due_at: Optional[datetime],
                            day_shift_at: Optional[datetime] = None) -> bool:
    """Does the on-call cover under way at `now` end before the response is due, or less than
    ON_CALL_HANDOVER_MARGIN after it (with no response due: within the margin of `now`)? A day shift
    that begins before the cover ends leaves no gap."""
    ends = as_utc(cover_ends_at, "cover_ends_at")
    if day_shift_at is not None and as_utc(day_shift_at, "day_shift_at") <= ends:
        return False
    deadline = as_utc(response_due_at, "response_due_at") if response_due_at is not None else as_utc(now, "now")
    return ends < deadline + ON_CALL_HANDOVER_MARGIN


def _at_local(at: datetime, calendar: CoverageCalendar, today: date) -> str:
    """"at 07:00" today, "tomorrow at 08:00", "on Mon 30 Nov at 08:00"."""
    delta, day, clock = _day_and_clock(calendar.local(at), today)
    if delta == 0:
        return f"at {clock}"
    if delta == 1:
        return f"tomorrow at {clock}"
    return f"on {day} at {clock}"


def _cover_ending_message(now: datetime, cover_ends_at: datetime, day_shift_at: datetime,
                          business_calendar: CoverageCalendar) -> str:
    """Who was told and what happens next, when the on-call technician goes off duty before the
    response is due: "has been paged" alone promised a technician who would be gone in five minutes."""
    today = business_calendar.local(now).date()
    return ("After hours: your contract covers emergencies. The on-call technician has been paged but goes off duty "
            f"{_at_local(cover_ends_at, business_calendar, today)}, so our dispatchers have also been alerted to find "
            f"cover; the day shift begins {_at_local(day_shift_at, business_calendar, today)}.")
