"""Staff use cases that are not ticket changes: technicians, weekly shifts, the on-call rota, plans.

Each function validates, saves and commits in one transaction, then re-runs the dispatch
queue when the change can move a ticket (who works when and where, what a plan promises):
the board and the clients' pages must never show a queue computed from stale staffing.
Ticket changes themselves (override, assign, status) belong to `services.tickets`.
"""
from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Callable, Optional
from zoneinfo import ZoneInfo

import stripe
from sqlalchemy import func, select
from sqlalchemy.orm.exc import StaleDataError

from ..auth import hash_password
from ..domain.calendar import day_span_minutes, run_at
from ..extensions import db
from ..models import OnCallPeriod, Plan, Role, Shift, Technician, Ticket, TicketEvent, TicketStatus, TimeOff, User
from . import accounts, billing, queue, settings, sla
from .errors import Refusal

log = logging.getLogger("portal.staff")

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SKILL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_ON_CALL = timedelta(days=31)
MAX_TIME_OFF = timedelta(days=366)


class StaffError(Refusal):
    """A staffing or plan change refused, in words fit for the dispatcher."""


def _requeue(now: datetime) -> None:
    """Re-run triage and dispatch after a staffing or plan change (commits its own result)."""
    queue.recompute(now)


# --- technicians ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TechnicianData:
    skills: tuple[str, ...]
    home_zone: Optional[str]
    home_latitude: Optional[float]
    home_longitude: Optional[float]
    active: bool = True


def parse_skills(text: str) -> tuple[str, ...]:
    """'Network, printer  server' -> ('network', 'printer', 'server'); refuses odd words."""
    words = [w.strip().lower() for w in re.split(r"[,\s]+", text or "") if w.strip()]
    bad = [w for w in words if not SKILL_PATTERN.match(w)]
    if bad:
        raise StaffError(
            f"Skills are single words of letters, digits, '-' or '_' (not: {', '.join(bad)}).", "skills"
        )
    return tuple(dict.fromkeys(words))


def _check_location(data: TechnicianData) -> None:
    if (data.home_latitude is None) != (data.home_longitude is None):
        raise StaffError("Give both the home latitude and longitude, or neither.", "home_latitude")
    if data.home_latitude is not None and not -90 <= data.home_latitude <= 90:
        raise StaffError("Latitude must be between -90 and 90.", "home_latitude")
    if data.home_longitude is not None and not -180 <= data.home_longitude <= 180:
        raise StaffError("Longitude must be between -180 and 180.", "home_longitude")


def technicians(include_inactive: bool = True) -> list[Technician]:
    query = select(Technician).join(User, Technician.user_id == User.id).order_by(User.full_name, User.email)
    if not include_inactive:
        query = query.where(Technician.active.is_(True))
    return list(db.session.scalars(query))


def technician_for_user(user: User) -> Optional[Technician]:
    return db.session.scalars(select(Technician).where(Technician.user_id == user.id)).first()


def staff_users_without_technician() -> list[User]:
    """Staff accounts that could become technicians (an owner may also go on site)."""
    taken = select(Technician.user_id)
    return list(
        db.session.scalars(
            select(User)
            .where(User.role.in_(Role.STAFF), User.active.is_(True), User.id.not_in(taken))
            .order_by(User.full_name, User.email)
        )
    )


def create_technician(
    data: TechnicianData,
    now: datetime,
    *,
    user_id: Optional[int] = None,
    email: Optional[str] = None,
    full_name: Optional[str] = None,
) -> Technician:
    """Make a technician of an existing staff account, or of a new technician account.

    A new account gets an unguessable password and a reset link by email, so nobody ever
    chooses or sees a colleague's password.
    """
    _check_location(data)
    new_user: Optional[User] = None
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is None or user.role not in Role.STAFF:
            raise StaffError("Choose a staff account.", "user_id")
        if technician_for_user(user) is not None:
            raise StaffError("That account is already a technician.", "user_id")
    else:
        email = accounts.normalise_email(email or "")
        if not email:
            raise StaffError("Choose an existing staff account or give the new technician's email.", "email")
        if not (full_name or "").strip():
            raise StaffError("Give the new technician's name.", "full_name")
        existing = accounts.find_user(email)
        if existing is not None and existing.is_staff:
            raise StaffError("That address already has a staff account: choose it in the list instead.", "email")
        if existing is not None:
            raise StaffError("That address belongs to a client's account, which cannot be a technician: "
                             "give the technician's work address.", "email")
        user = User(
            email=email,
            full_name=full_name.strip(),
            role=Role.TECHNICIAN,
            password_hash=hash_password(secrets.token_urlsafe(32)),
            created_at=now,
        )
        db.session.add(user)
        new_user = user
    tech = Technician(
        user=user,
        skills=list(data.skills),
        home_zone=(data.home_zone or "").strip() or None,
        home_latitude=data.home_latitude,
        home_longitude=data.home_longitude,
        active=data.active,
    )
    db.session.add(tech)
    db.session.commit()
    if new_user is not None:
        # The reset email is the new technician's way in (its own small transaction).
        accounts.request_password_reset(new_user.email, now)
    _requeue(now)
    return tech


@dataclass(frozen=True)
class TechnicianSaved:
    """What a deactivation changed, for the dispatcher to check."""

    on_call_released: int = 0  # on-call periods removed (or, one under way, ended now)
    tickets_returned: int = 0  # waiting tickets given back to the engine to place on someone else
    jobs_in_hand: int = 0  # tickets they are working on: left with them, for the dispatcher to decide


def update_technician(technician_id: int, data: TechnicianData, now: datetime) -> TechnicianSaved:
    """Save the technician. A deactivation takes them off the rota and off the queue.

    An inactive technician is never paged, so their periods to come are removed (one under way
    ends now): left in place they would read as cover on the rota page and refuse the
    replacement's periods as overlaps while nobody answers the pager. Tickets assigned to them
    but not started go back to the engine (kept, they would wait for nobody, with no estimate);
    jobs in hand stay theirs and are counted, since only the dispatcher knows who takes them over.
    """
    tech = db.session.get(Technician, technician_id)
    if tech is None:
        raise StaffError("No such technician.")
    _check_location(data)
    tech.skills = list(data.skills)
    tech.home_zone = (data.home_zone or "").strip() or None
    tech.home_latitude = data.home_latitude
    tech.home_longitude = data.home_longitude
    saved = TechnicianSaved()
    if tech.active and not data.active:
        released = 0
        for period in db.session.scalars(select(OnCallPeriod).where(
                OnCallPeriod.technician_id == tech.id, OnCallPeriod.ends_at > now)):
            if period.starts_at < now:
                period.ends_at = now
            else:
                db.session.delete(period)
            released += 1
        theirs = db.session.scalars(select(Ticket).where(
            Ticket.technician_id == tech.id, Ticket.status.in_(TicketStatus.OPEN))).all()
        returned = [t for t in theirs if t.status in TicketStatus.WAITING]
        from . import tickets

        for ticket in returned:
            tickets.release_technician(ticket, None, now, f"{tech.name} is no longer active")
        saved = TechnicianSaved(released, len(returned), len(theirs) - len(returned))
    tech.active = data.active
    db.session.commit()
    _requeue(now)
    return saved


# --- weekly shifts ----------------------------------------------------------------------------


def add_shift(technician_id: int, weekday: int, starts: time, ends: time, now: datetime) -> Shift:
    """A weekly on-duty interval; it must end after it starts and overlap none of the same day."""
    tech = db.session.get(Technician, technician_id)
    if tech is None:
        raise StaffError("No such technician.")
    if weekday not in range(7):
        raise StaffError("Choose a day of the week.", "weekday")
    first, last = day_span_minutes(starts, ends)
    if last <= first:
        raise StaffError("The shift must end after it starts; a night shift ends at 00:00 (midnight) and goes on "
                         "with a shift from 00:00 the next day.", "ends")
    for other in tech.shifts:
        other_first, other_last = day_span_minutes(other.starts, other.ends)
        if other.weekday == weekday and other_first < last and first < other_last:
            raise StaffError(
                f"Overlaps the {WEEKDAYS[weekday]} shift {other.starts:%H:%M}–{other.ends_label}.", "starts"
            )
    shift = Shift(technician=tech, weekday=weekday, starts=starts, ends=ends)
    db.session.add(shift)
    db.session.commit()
    _requeue(now)
    return shift


def delete_shift(technician_id: int, shift_id: int, now: datetime) -> Optional[str]:
    """Remove the shift; returns what the dispatcher must know when it was the technician's last
    hours while open tickets are assigned to them (they get no estimate and wait)."""
    shift = db.session.get(Shift, shift_id)
    if shift is None or shift.technician_id != technician_id:
        raise StaffError("No such shift.")
    db.session.delete(shift)
    db.session.commit()
    _requeue(now)
    tech = db.session.get(Technician, technician_id)
    if tech is None or not never_on_duty(tech, now):
        return None
    held = db.session.scalars(select(Ticket.id).where(Ticket.technician_id == tech.id,
                                                      Ticket.status.in_(TicketStatus.OPEN)).order_by(Ticket.id)).all()
    if not held:
        return None
    return (f"{tech.name} has no shifts left and no on-call period to come, so "
            f"{', '.join(f'#{number}' for number in held)} assigned to them "
            f"{'has' if len(held) == 1 else 'have'} no estimate and wait{'s' if len(held) == 1 else ''} for them: "
            "add their shifts, or assign someone else.")


def never_on_duty(tech: Technician, now: datetime) -> bool:
    """No weekly shift and no on-call period to come: the engine can plan nothing for them."""
    if tech.shifts:
        return False
    return db.session.scalars(select(OnCallPeriod.id).where(
        OnCallPeriod.technician_id == tech.id, OnCallPeriod.ends_at > now)).first() is None


# --- time off ---------------------------------------------------------------------------------


def _check_period(starts_at: datetime, ends_at: datetime, now: datetime, noun: str, longest: timedelta,
                  too_long: str) -> None:
    """A stretch of the rota (time off, an on-call period) must end after it starts, not be over, and not be
    longer than `longest`: the refusals name the end field, which is what the dispatcher corrects."""
    if ends_at <= starts_at:
        raise StaffError(f"The {noun} must end after it starts.", "ends_at")
    if ends_at <= now:
        raise StaffError(f"That {noun} is already over.", "ends_at")
    if ends_at - starts_at > longest:
        raise StaffError(too_long, "ends_at")


def time_off_ahead(technician_id: int, now: datetime) -> list[TimeOff]:
    """The technician's time off that has not ended yet, soonest first."""
    return list(db.session.scalars(select(TimeOff).where(
        TimeOff.technician_id == technician_id, TimeOff.ends_at > now).order_by(TimeOff.starts_at)))


def _away_runs(now: datetime) -> dict[int, tuple[datetime, datetime]]:
    """Technician id -> the unbroken run of time off they are in at `now` (first start, last end).

    Periods that touch (the next begins when, or within a minute of when, one ends) are one absence:
    someone off 1-5 Dec and 5-9 Dec is away until 9 Dec (`domain.calendar.run_at`).
    """
    away_ids = select(TimeOff.technician_id).where(TimeOff.starts_at <= now, TimeOff.ends_at > now)
    periods: dict[int, list[tuple[datetime, datetime]]] = {}
    for tech_id, starts_at, ends_at in db.session.execute(select(
            TimeOff.technician_id, TimeOff.starts_at, TimeOff.ends_at).where(TimeOff.technician_id.in_(away_ids))):
        periods.setdefault(tech_id, []).append((starts_at, ends_at))
    runs = {tech_id: run_at(theirs, now) for tech_id, theirs in periods.items()}
    return {tech_id: run for tech_id, run in runs.items() if run is not None}


def off_now(now: datetime) -> dict[int, datetime]:
    """Technician id -> when the time off they are in at `now` ends, periods that touch taken as one,
    for the pages that list technicians and the assign notes ("away until")."""
    return {tech_id: ends_at for tech_id, (_, ends_at) in _away_runs(now).items()}


@dataclass(frozen=True)
class TimeOffAdded:
    """The period saved, and what it changed at once when it has already begun."""

    period: TimeOff
    tickets_returned: int = 0  # assigned to them, not started: given back to the engine
    jobs_in_hand: tuple[int, ...] = ()  # tickets they are working on: the dispatcher decides


def add_time_off(technician_id: int, starts_at: datetime, ends_at: datetime, reason: str,
                 actor: Optional[User], now: datetime) -> TimeOffAdded:
    """Take a technician off every shift and call between two instants (holiday, sickness, training).

    Why the on-call rota is checked: a period the technician would spend on call while away pages
    someone who does not answer, so it must go to a colleague first. Time off that has begun
    gives their tickets not yet started back to the engine, as a deactivation does; jobs in hand
    stay theirs until the dispatcher reassigns them.
    """
    tech = db.session.get(Technician, technician_id)
    if tech is None or not tech.active:
        raise StaffError("No such active technician.")
    reason = " ".join((reason or "").split())
    _check_period(starts_at, ends_at, now, "time off", MAX_TIME_OFF,
                  "Time off may last at most a year; for longer, make the technician inactive.")
    if len(reason) > 200:
        raise StaffError("Keep the reason under 200 characters.", "reason")
    overlapping = TimeOff.starts_at < ends_at, TimeOff.ends_at > starts_at
    clash = db.session.scalars(select(TimeOff).where(TimeOff.technician_id == tech.id, *overlapping)).first()
    if clash is not None:
        raise StaffError(f"Overlaps {tech.name}'s time off from {settings.firm_clock(clash.starts_at)} to "
                         f"{settings.firm_clock(clash.ends_at)} (firm time): remove or change that one first.",
                         "starts_at")
    on_call = db.session.scalars(select(OnCallPeriod).where(
        OnCallPeriod.technician_id == tech.id, OnCallPeriod.starts_at < ends_at, OnCallPeriod.ends_at > starts_at,
        OnCallPeriod.ends_at > now).order_by(OnCallPeriod.starts_at)).first()
    if on_call is not None:
        raise StaffError(f"{tech.name} is on call from {settings.firm_clock(on_call.starts_at)} to "
                         f"{settings.firm_clock(on_call.ends_at)} (firm time): give that period to someone else on "
                         "the on-call rota first.", "starts_at")
    period = TimeOff(technician=tech, starts_at=starts_at, ends_at=ends_at, reason=reason, created_at=now,
                     created_by_id=actor.id if actor is not None else None)
    db.session.add(period)
    returned = 0
    in_hand: tuple[int, ...] = ()
    if starts_at <= now:
        from . import tickets

        theirs = db.session.scalars(select(Ticket).where(
            Ticket.technician_id == tech.id, Ticket.status.in_(TicketStatus.OPEN)).order_by(Ticket.id)).all()
        db.session.flush()
        until = _away_runs(now).get(tech.id, (starts_at, ends_at))[1]  # a period entered after it may touch it
        why = f"{tech.name} is off until {settings.firm_clock(until)}"
        for ticket in theirs:
            if ticket.status in TicketStatus.WAITING:
                tickets.release_technician(ticket, actor, now, why)
                returned += 1
        in_hand = tuple(t.id for t in theirs if t.status not in TicketStatus.WAITING)
    db.session.commit()
    _requeue(now)
    return TimeOffAdded(period, returned, in_hand)


def time_off_begun(now: datetime) -> int:
    """Give back to the engine the waiting tickets of technicians whose time off has begun; commits.

    Why: time off entered ahead gives nothing back when it is entered (the technician may still do
    the job before leaving), so without this a ticket assigned to them before they left waited for
    their return, days later, while colleagues were free. Run each minute by `flask alerts check`,
    before the queue. A ticket a dispatcher assigned to them after the time off began stays theirs:
    the dispatcher was told it waits for them (periods that touch are one time off, which began
    with the first). Returns the number of tickets given back.
    """
    from . import tickets

    runs = _away_runs(now)
    waiting = list(db.session.scalars(select(Ticket).where(
        Ticket.technician_id.in_(list(runs)), Ticket.status.in_(TicketStatus.WAITING)).order_by(Ticket.id))
    ) if runs else []
    assigned_at: dict[int, datetime] = {}
    if waiting:
        for ticket_id, at in db.session.execute(select(TicketEvent.ticket_id, TicketEvent.at).where(
                TicketEvent.ticket_id.in_([t.id for t in waiting]), TicketEvent.kind == "assigned")):
            assigned_at[ticket_id] = max(at, assigned_at.get(ticket_id, at))
    released = 0
    for ticket in waiting:
        began, ends_at = runs[ticket.technician_id]
        if ticket.id in assigned_at and assigned_at[ticket.id] >= began:
            continue
        tickets.release_technician(ticket, None, now,
                                   f"{ticket.technician.name} is off until {settings.firm_clock(ends_at)}")
        ticket.updated_at = now
        released += 1
    try:
        db.session.commit()
    except StaleDataError:  # a dispatcher changed one of them meanwhile: the next round looks again
        db.session.rollback()
        return 0
    return released


def delete_time_off(technician_id: int, period_id: int, now: datetime) -> None:
    """Remove a period (back early, or entered by mistake): the technician's shifts count again at once."""
    period = db.session.get(TimeOff, period_id)
    if period is None or period.technician_id != technician_id:
        raise StaffError("No such time off.")
    db.session.delete(period)
    db.session.commit()
    _requeue(now)


# --- after-hours on-call rota -----------------------------------------------------------------


def _periods_of_active_technicians():
    """On-call periods that page someone: an inactive technician's are never used."""
    return select(OnCallPeriod).join(Technician, OnCallPeriod.technician_id == Technician.id).where(
        Technician.active.is_(True))


def on_call_periods(since: datetime) -> list[OnCallPeriod]:
    """Periods that have not ended yet, soonest first."""
    return list(db.session.scalars(
        _periods_of_active_technicians().where(OnCallPeriod.ends_at > since).order_by(OnCallPeriod.starts_at)))


def on_call_at(now: datetime) -> Optional[Technician]:
    """Who answers after-hours emergencies at `now` (None when the rota has a gap)."""
    period = db.session.scalars(
        _periods_of_active_technicians()
        .where(OnCallPeriod.starts_at <= now, OnCallPeriod.ends_at > now)
        .order_by(OnCallPeriod.starts_at.desc())
    ).first()
    return period.technician if period else None


def on_call_cover_ends(now: datetime) -> Optional[datetime]:
    """When the on-call cover under way at `now` ends: the period's end, or a later one's when the next
    period starts as it ends (a handover leaves no gap). None when nobody is on call at `now`."""
    ends: Optional[datetime] = None
    at = now
    for _ in range(64):  # periods last at most 31 days: a bounded walk down the rota
        period = db.session.scalars(
            _periods_of_active_technicians()
            .where(OnCallPeriod.starts_at <= at, OnCallPeriod.ends_at > at)
            .order_by(OnCallPeriod.ends_at.desc())
        ).first()
        if period is None:
            break
        ends = period.ends_at
        at = ends
    return ends


def add_on_call(technician_id: int, starts_at: datetime, ends_at: datetime, now: datetime) -> OnCallPeriod:
    """One technician answers the pager at a time: periods may not overlap."""
    tech = db.session.get(Technician, technician_id)
    if tech is None or not tech.active:
        raise StaffError("Choose an active technician.", "technician_id")
    _check_period(starts_at, ends_at, now, "period", MAX_ON_CALL, "A period may last at most 31 days; add several.")
    clash = db.session.scalars(
        _periods_of_active_technicians().where(OnCallPeriod.starts_at < ends_at, OnCallPeriod.ends_at > starts_at)
    ).first()
    away = db.session.scalars(select(TimeOff).where(
        TimeOff.technician_id == tech.id, TimeOff.starts_at < ends_at, TimeOff.ends_at > starts_at)).first()
    if away is not None:
        raise StaffError(f"{tech.name} is off from {settings.firm_clock(away.starts_at)} to "
                         f"{settings.firm_clock(away.ends_at)} (firm time): choose someone else.", "technician_id")
    if clash is not None:
        raise StaffError(
            f"Overlaps {clash.technician.name}'s on-call period "
            f"({settings.firm_clock(clash.starts_at)} to {settings.firm_clock(clash.ends_at)}, firm time).",
            "starts_at",
        )
    period = OnCallPeriod(technician=tech, starts_at=starts_at, ends_at=ends_at)
    db.session.add(period)
    db.session.commit()
    _requeue(now)
    return period


def delete_on_call(period_id: int, now: datetime) -> None:
    period = db.session.get(OnCallPeriod, period_id)
    if period is None:
        raise StaffError("No such on-call period.")
    db.session.delete(period)
    db.session.commit()
    _requeue(now)


# --- plans ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanData:
    slug: str
    name: str
    summary: str
    monthly_price: Decimal
    currency: str
    is_contract: bool
    coverage: str
    remote_response_minutes: Optional[int]
    onsite_arrival_minutes: Optional[int]
    after_hours_emergencies: bool
    hourly_rate: Decimal
    minimum_term_months: int
    onboarding_fee: Decimal
    display_order: int
    active: bool


def _check_plan(data: PlanData, plan_id: Optional[int]) -> None:
    if not SLUG_PATTERN.match(data.slug or ""):
        raise StaffError("Use lowercase letters, digits and single dashes (e.g. premium-24-7).", "slug")
    same = db.session.scalars(select(Plan).where(func.lower(Plan.slug) == data.slug.lower())).first()
    if same is not None and same.id != plan_id:
        raise StaffError("Another plan already uses this slug.", "slug")
    if not data.name.strip():
        raise StaffError("Give the plan a name.", "name")
    if data.coverage not in (Plan.COVERAGE_BUSINESS, Plan.COVERAGE_24X7):
        raise StaffError("Choose business hours or 24x7.", "coverage")
    if not re.fullmatch(r"[a-z]{3}", data.currency or ""):
        raise StaffError("Use a three-letter currency code, e.g. usd.", "currency")
    for field in ("monthly_price", "hourly_rate", "onboarding_fee"):
        amount = getattr(data, field)
        if amount < 0:
            raise StaffError("Must not be negative.", field)
        if amount != amount.quantize(Decimal("0.01")):
            # Stripe charges whole cents and the pages round: 10.995 would show $10.99 here, $11 on
            # the plans page and bill 1100 cents.
            raise StaffError("Give dollars and cents, at most two decimals (e.g. 10.99).", field)
    if data.minimum_term_months < 0:
        raise StaffError("Must not be negative.", "minimum_term_months")
    if data.is_contract:
        if not data.remote_response_minutes or data.remote_response_minutes <= 0:
            raise StaffError("A contract plan promises a remote response time (minutes).", "remote_response_minutes")
        if not data.onsite_arrival_minutes or data.onsite_arrival_minutes <= 0:
            raise StaffError("A contract plan promises an on-site arrival time (minutes).", "onsite_arrival_minutes")
        if data.onsite_arrival_minutes < data.remote_response_minutes:
            raise StaffError(
                "The on-site arrival target cannot be shorter than the remote response target.",
                "onsite_arrival_minutes",
            )
    else:
        if data.remote_response_minutes or data.onsite_arrival_minutes:
            raise StaffError(
                "Break/fix promises no times: leave the response and arrival targets empty.",
                "remote_response_minutes",
            )
        if data.after_hours_emergencies:
            raise StaffError("Break/fix has no after-hours emergencies.", "after_hours_emergencies")
    if data.after_hours_emergencies and data.coverage != Plan.COVERAGE_24X7:
        raise StaffError("After-hours emergencies need 24x7 coverage.", "after_hours_emergencies")


def _apply_plan(plan: Plan, data: PlanData) -> None:
    plan.slug = data.slug
    plan.name = data.name.strip()
    plan.summary = data.summary.strip()
    plan.monthly_price = data.monthly_price
    plan.currency = data.currency
    plan.is_contract = data.is_contract
    plan.coverage = data.coverage
    plan.remote_response_minutes = data.remote_response_minutes if data.is_contract else None
    plan.onsite_arrival_minutes = data.onsite_arrival_minutes if data.is_contract else None
    plan.after_hours_emergencies = data.after_hours_emergencies
    plan.hourly_rate = data.hourly_rate
    plan.minimum_term_months = data.minimum_term_months
    plan.onboarding_fee = data.onboarding_fee
    plan.display_order = data.display_order
    plan.active = data.active


STRIPE_UNREACHED = ("Stripe could not be reached, so nothing was saved: card clients must be charged the price the "
                    "plans page shows. Try again in a moment.")


def _price_in_stripe(plan: Plan, data: PlanData) -> None:
    """A plan sold by card gets its Stripe price before the new price is saved, so Checkout and plan
    changes never charge another amount than the plans page shows; if Stripe cannot be reached,
    nothing is saved. Runs before anything is written: no database lock is held while Stripe answers.
    """
    if not billing.stripe_enabled() or not (data.active and data.is_contract and data.monthly_price > 0):
        return
    described = {"slug": data.slug, "name": data.name.strip(), "monthly_price": data.monthly_price,
                 "currency": data.currency}
    # The stored price is known to match only if the plan was on sale as a paid contract when last saved: a
    # plan repriced while off sale (or while break/fix) was never priced in Stripe, and kept its old price id.
    priced = plan.active and plan.is_contract and plan.monthly_price is not None and plan.monthly_price > 0
    if plan.stripe_price_id and priced and all(getattr(plan, name) == value for name, value in described.items()):
        return
    try:
        found = billing.stripe_price(billing.stripe_client(), summary=data.summary.strip(), **described)
    except stripe.StripeError as error:
        log.warning("plan %s not priced in Stripe: %s", data.slug, error)
        raise StaffError(STRIPE_UNREACHED, "monthly_price") from error
    plan.stripe_product_id, plan.stripe_price_id = found.product_id, found.price_id


def all_plans() -> list[Plan]:
    return list(db.session.scalars(select(Plan).order_by(Plan.display_order, Plan.id)))


SLA_TERMS = ("is_contract", "coverage", "remote_response_minutes", "onsite_arrival_minutes")


@dataclass(frozen=True)
class PlanSaved:
    """What saving a plan did to the open tickets under it, for the owner to read."""

    plan: Plan
    terms_changed: bool = False  # targets, coverage or class changed: open tickets were re-timed
    retimed: tuple[int, ...] = ()  # tickets whose deadlines moved
    now_overdue: tuple[int, ...] = ()  # of those, the ones already past a new deadline (recorded as missed)


def _retime_open_tickets(plan: Plan, now: datetime) -> tuple[list[int], list[int]]:
    """Open tickets under the plan get due times from its new terms, their clocks unchanged.
    Returns the tickets whose deadlines moved, and those of them already past a new one.

    Why: the SLA service computes due times from the plan's current terms whenever a ticket's
    clock moves (a pause, on-site need), so leaving the old times would only defer the change
    to some unrelated moment; doing it now, with a timeline entry, keeps every page honest.
    """
    tickets = db.session.scalars(
        select(Ticket).where(Ticket.sla_plan_id == plan.id, Ticket.status.in_(TicketStatus.OPEN)).order_by(Ticket.id)
    ).all()
    retimed: list[int] = []
    overdue: list[int] = []
    zone = ZoneInfo(settings.firm_timezone())
    for ticket in tickets:
        before = (ticket.response_due_at, ticket.arrival_due_at, ticket.sla_best_effort)
        # A response or arrival already made keeps the due time it was judged against (made under the old terms).
        sla.apply_plan(ticket, plan, ticket.sla_clock_start or ticket.opened_at, now, keep_done=True)
        if (ticket.response_due_at, ticket.arrival_due_at, ticket.sla_best_effort) == before:
            continue  # nothing it still waits for changed (a response and arrival already made keep theirs)
        retimed.append(ticket.id)
        if sla.record_breaches(ticket, now):
            overdue.append(ticket.id)
        # Public message: the firm's local time, like every other time the client reads.
        due = []
        if ticket.response_due_at and ticket.first_response_at is None:
            due.append(f"response due {ticket.response_due_at.astimezone(zone):%a %d %b %H:%M}")
        if ticket.arrival_due_at and ticket.arrived_at is None:
            due.append(f"arrival due {ticket.arrival_due_at.astimezone(zone):%a %d %b %H:%M}")
        ticket.events.append(TicketEvent(
            at=now, kind="sla_rebased", public=True,
            message=f"The {plan.name} plan's targets changed: "
                    + ("; ".join(due) or ("best effort" if ticket.sla_best_effort else "no deadline left to meet")) + ".",
            detail={"plan": plan.name, "why": "plan terms changed"},
        ))
    return retimed, overdue


def update_plan(plan_id: int, data: PlanData, now: datetime) -> PlanSaved:
    """Change what a plan promises; open tickets under it are re-timed and the queue re-run."""
    plan = db.session.get(Plan, plan_id)
    if plan is None:
        raise StaffError("No such plan.")
    _check_plan(data, plan.id)
    _price_in_stripe(plan, data)
    before = {name: getattr(plan, name) for name in SLA_TERMS}
    _apply_plan(plan, data)
    saved = PlanSaved(plan)
    if any(getattr(plan, name) != value for name, value in before.items()):
        retimed, overdue = _retime_open_tickets(plan, now)
        saved = PlanSaved(plan, True, tuple(retimed), tuple(overdue))
    db.session.commit()
    _requeue(now)
    return saved


def create_plan(data: PlanData, now: datetime) -> Plan:
    _check_plan(data, None)
    plan = Plan()
    _price_in_stripe(plan, data)
    _apply_plan(plan, data)
    db.session.add(plan)
    db.session.commit()
    return plan


# --- ticket actions, through the ticket core ---------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a staff action on a ticket came to, in words fit for the form."""

    ok: bool
    message: str = ""
    field: Optional[str] = None
    stale: bool = False
    already: Optional[str] = None  # the ticket had already ended so (resolved, closed): nothing was written


def _stale(ticket_id: int, expected_version: Optional[int]) -> bool:
    """The form was filled in against an older version of the ticket than the one saved now."""
    ticket = db.session.get(Ticket, ticket_id, populate_existing=True)
    return ticket is None or (expected_version is not None and ticket.version != expected_version)


def _through_ticket_core(action: Callable[[], object]) -> Outcome:
    """Run one `services.tickets` change and turn its refusals into an Outcome for the form.

    A TicketError naming the version, or a concurrent update caught by the ORM's version
    counter, means somebody else changed the ticket first: nothing was saved and the form says so.
    (`services.tickets` imports this module for the on-call rota, hence the import here.)
    """
    from .tickets import TicketError

    try:
        action()
    except TicketError as error:
        db.session.rollback()
        stale = error.field == "version"
        return Outcome(False, error.message, None if stale else error.field, stale)
    except StaleDataError:
        db.session.rollback()
        return Outcome(False, stale=True)
    return Outcome(True)


def override(ticket_id: int, position: Optional[int], reason: str, expected_version: int, actor: User,
             now: datetime) -> Outcome:
    """Pin the ticket at `position` (1 = next; None lifts the pin); the ticket core checks the version and logs why."""
    from . import tickets

    return _through_ticket_core(
        lambda: tickets.override_position(ticket_id, position, reason, actor, now, expected_version=expected_version)
    )


def assign(ticket_id: int, technician_id: Optional[int], expected_version: int, actor: User,
           now: datetime) -> Outcome:
    """Assign or re-assign (None = let the engine choose), refused if the ticket moved on meanwhile."""
    from . import tickets

    if _stale(ticket_id, expected_version):
        return Outcome(False, stale=True)
    outcome = _through_ticket_core(lambda: tickets.assign(ticket_id, technician_id, actor, now))
    ticket = db.session.get(Ticket, ticket_id)
    tech = ticket.technician if outcome.ok and ticket is not None else None
    if tech is None:
        return outcome
    # The dispatcher may know better than the records, so these are said, not refused.
    notes = []
    if ticket.required_skill and ticket.required_skill not in (tech.skills or []):
        notes.append(f"{tech.name} has no {ticket.required_skill} skill on record: assigned all the same.")
    if never_on_duty(tech, now):
        notes.append(f"{tech.name} has no shifts and no on-call period to come, so the ticket has no estimate "
                     "and waits for them: add their shifts, or assign someone else.")
    away_until = off_now(now).get(tech.id)
    if away_until is not None:
        notes.append(f"{tech.name} is away until {settings.firm_clock(away_until)}, so the ticket waits for them: "
                     "assign someone else if it cannot wait.")
    return Outcome(True, " ".join(notes)) if notes else outcome


def set_details(ticket_id: int, onsite_needed: bool, effort_minutes: Optional[int], required_skill: Optional[str],
                expected_version: int, actor: User, now: datetime) -> Outcome:
    from . import tickets

    if _stale(ticket_id, expected_version):
        return Outcome(False, stale=True)
    return _through_ticket_core(
        lambda: tickets.set_details(ticket_id, onsite_needed, effort_minutes, required_skill, actor, now)
    )


def change_status(ticket_id: int, status: str, note: str, expected_version: int, actor: User,
                  now: datetime) -> Outcome:
    """A technician's tap (the ticket core gives an unassigned job to the technician who taps it)."""
    from . import tickets

    if _stale(ticket_id, expected_version):
        return Outcome(False, stale=True)
    return _through_ticket_core(lambda: tickets.set_status(ticket_id, status, actor, now, note=note,
                                                           expected_version=expected_version))


def end_ticket(ticket_id: int, status: str, note: str, expected_version: int, actor: User,
               now: datetime) -> Outcome:
    """A dispatcher resolves the ticket or closes it without work, with the words the client reads.

    Why `already`: the same form sent twice (a double click, Back and send, two dispatchers at the same
    instant) finds the ticket ended by the first; that is a repeat, not a refusal. Nothing more is
    written or emailed, and the outcome says how the ticket ended (which may be the other way).
    A ticket reopened meanwhile is stale: the dispatcher looks at it again.
    """
    ticket = db.session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is not None and ticket.status in TicketStatus.DONE:
        return Outcome(False, already=ticket.status)
    outcome = change_status(ticket_id, status, note, expected_version, actor, now)
    if outcome.ok:
        return outcome
    db.session.rollback()
    ticket = db.session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is not None and ticket.status in TicketStatus.DONE:  # ended by the other submit meanwhile
        return Outcome(False, already=ticket.status)
    return outcome
