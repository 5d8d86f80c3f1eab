"""Ticket use cases: open, change status, override the place, assign, details, comments, attachments.

Every change validates first (TicketError naming the field, nothing saved), then in one
transaction updates the ticket, writes its timeline event (public, or staff-only) and the
emails it causes (outbox), commits, and then re-runs the queue so every page and the API
read the new places and estimates.
"""
from __future__ import annotations

import hashlib
import json
import math
import mimetypes
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Mapping, Optional
from zoneinfo import ZoneInfo

import logging

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.datastructures import FileStorage

from ..domain.calendar import local_instant
from ..domain.effort import CATEGORIES
from ..domain.travel import Location
from ..domain.triage import AfterHoursDecision, Impact, after_hours_decision
from ..extensions import db
from ..models import (
    Attachment,
    Comment,
    Organisation,
    Role,
    Technician,
    Ticket,
    TicketEvent,
    TicketPause,
    TicketStatus,
    User,
)
from . import alerts, notifications, settings, sla, staff
from .errors import Refusal
from .text import amount_as_written, unstorable, uploaded_file_name, whole_number

log = logging.getLogger("portal.tickets")
TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
COMMENT_MAX = 5_000
REASON_MAX = 500
REVENUE_MAX = Decimal("100000000")
EFFORT_MAX_MINUTES = 7 * 24 * 60
SKILL_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
IDEMPOTENCY_KEY_MAX = 64
DEADLINE_REACH_DAYS = 366
ATTACHMENT_TYPES = {
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf", ".txt", ".log", ".csv", ".json", ".xml",
    ".docx", ".xlsx", ".pptx", ".odt", ".ods", ".zip", ".eml", ".msg", ".heic",
}

CATEGORY_LABELS = {
    "network": "Network or internet",
    "hardware": "A computer or device",
    "software": "A program or system",
    "email": "Email",
    "printer": "Printer or scanner",
    "security": "Security (virus, break-in, suspicious activity)",
    "other": "Something else",
}
# The skill a category needs unless a dispatcher says otherwise (None: anyone can take it).
CATEGORY_SKILL = {"network": "network", "printer": "printer", "security": "security"}
IMPACT_LABELS = {
    Impact.COMPANY.value: "The whole company",
    Impact.DEPARTMENT.value: "A department or team",
    Impact.PERSON.value: "One person",
}

# Allowed moves; a technician's first action (remote start, en route, on site, resolved) is the response.
TRANSITIONS: dict[str, frozenset[str]] = {
    TicketStatus.NEW: frozenset({TicketStatus.EN_ROUTE, TicketStatus.ON_SITE, TicketStatus.IN_PROGRESS,
                                 TicketStatus.WAITING_ON_CLIENT, TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.ASSIGNED: frozenset({TicketStatus.EN_ROUTE, TicketStatus.ON_SITE, TicketStatus.IN_PROGRESS,
                                      TicketStatus.WAITING_ON_CLIENT, TicketStatus.RESOLVED, TicketStatus.CLOSED}),
    TicketStatus.EN_ROUTE: frozenset({TicketStatus.ON_SITE, TicketStatus.IN_PROGRESS, TicketStatus.WAITING_ON_CLIENT,
                                      TicketStatus.RESOLVED, TicketStatus.ASSIGNED}),
    TicketStatus.ON_SITE: frozenset({TicketStatus.IN_PROGRESS, TicketStatus.WAITING_ON_CLIENT, TicketStatus.RESOLVED}),
    TicketStatus.IN_PROGRESS: frozenset({TicketStatus.EN_ROUTE, TicketStatus.ON_SITE, TicketStatus.WAITING_ON_CLIENT,
                                         TicketStatus.RESOLVED}),
    TicketStatus.WAITING_ON_CLIENT: frozenset({TicketStatus.NEW, TicketStatus.ASSIGNED, TicketStatus.EN_ROUTE,
                                               TicketStatus.ON_SITE, TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.CLOSED, TicketStatus.NEW, TicketStatus.ASSIGNED}),
    TicketStatus.CLOSED: frozenset(),
}
# What a client may do on its own ticket: hand it back, say it waits on them, or say it is fixed.
CLIENT_TARGETS = frozenset({TicketStatus.WAITING_ON_CLIENT, TicketStatus.RESOLVED, TicketStatus.NEW,
                            TicketStatus.ASSIGNED})
RESPONSE_STATUSES = frozenset({TicketStatus.EN_ROUTE, TicketStatus.ON_SITE, TicketStatus.IN_PROGRESS})
NEEDS_TECHNICIAN = frozenset({TicketStatus.ASSIGNED, TicketStatus.EN_ROUTE, TicketStatus.ON_SITE})
TECHNICIAN_WORK = frozenset({TicketStatus.WAITING_ON_CLIENT, TicketStatus.RESOLVED})
# A client stopping the job (fixed, or waiting on them) while a technician has it: the technician is told.
HELD_BY_TECHNICIAN = frozenset({TicketStatus.ASSIGNED}) | TicketStatus.ACTIVE
CLIENT_STOPS = frozenset({TicketStatus.RESOLVED, TicketStatus.WAITING_ON_CLIENT})
# Only a job someone must come to can have a technician on the way or on site.
ONSITE_ONLY = frozenset({TicketStatus.EN_ROUTE, TicketStatus.ON_SITE})


def allowed_statuses(ticket: Ticket) -> frozenset[str]:
    """The statuses a ticket may move to now: the one rule `set_status` enforces and pages offer as buttons."""
    targets = TRANSITIONS.get(ticket.status, frozenset())
    return targets if ticket.onsite_needed else targets - ONSITE_ONLY


def already_in(ticket: Ticket, status: str) -> bool:
    """The ticket is already where `status` would put it: a repeated request, not a refused one.
    "Carry on" (new) is done once the ticket waits in the queue or with its technician, or its work
    in hand resumed (`set_status` maps it there)."""
    if status == TicketStatus.NEW:
        return ticket.status in TicketStatus.WAITING | TicketStatus.ACTIVE
    return ticket.status == status


STATUS_MESSAGES = {
    TicketStatus.NEW: "Back in the queue",
    TicketStatus.ASSIGNED: "Back with the assigned technician",
    TicketStatus.EN_ROUTE: "Technician en route",
    TicketStatus.ON_SITE: "Technician on site",
    TicketStatus.IN_PROGRESS: "Technician working on it remotely",
    TicketStatus.WAITING_ON_CLIENT: "Waiting on you",
    TicketStatus.RESOLVED: "Resolved",
    TicketStatus.CLOSED: "Closed",
}


class TicketError(Refusal):
    """A ticket change refused; raised as TicketError(field, message), the field first as in a form's errors."""

    def __init__(self, field: Optional[str], message: str) -> None:
        super().__init__(message, field)


# --- parsing what the client typed ----------------------------------------------------------------


@dataclass(frozen=True)
class TicketInput:
    title: str
    description: str
    category: str
    impact: str
    revenue_at_risk_per_hour: Decimal
    client_deadline: Optional[datetime]
    onsite_needed: bool
    safety_critical: bool
    follows_ticket_id: Optional[int] = None


def request_fingerprint(data: TicketInput) -> str:
    """The request as read (trimmed, lower-cased choices, amount in cents, deadline in UTC), hashed.

    Why: an idempotency key must replay only the request it was first sent with; a browser's Back
    button resends the form's key with whatever the client wrote next, and that is a new emergency.
    """
    deadline = data.client_deadline.astimezone(timezone.utc).isoformat() if data.client_deadline else None
    fields = [data.title, data.description, data.category, data.impact,
              str(Decimal(data.revenue_at_risk_per_hour).quantize(Decimal("0.01"))), deadline,
              bool(data.onsite_needed), bool(data.safety_critical)]
    if data.follows_ticket_id is not None:  # only then: fingerprints kept before follow-ups stay the same
        fields.append(data.follows_ticket_id)
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


TRUE_WORDS = {"1", "true", "yes", "y", "on"}
FALSE_WORDS = {"", "0", "false", "no", "n", "off"}


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, (str, int, float, Decimal)) or isinstance(value, bool):
        raise TicketError(name, "Give this as text.")
    problem = unstorable(value)
    if problem:
        raise TicketError(name, problem)
    return str(value).strip()


def _flag(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise TicketError(name, "Answer yes or no.")


def ticket_number(value: Any) -> Optional[int]:
    """A ticket number as a client writes it (42 or #42), or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    number = whole_number(str(value).strip().removeprefix("#"))
    return number if number is not None and number >= 1 else None


def _ticket_number(data: Mapping[str, Any], name: str) -> Optional[int]:
    """The ticket number given under `name`, None when not given; anything else is refused."""
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = ticket_number(value)
    if number is None:
        raise TicketError(name, "Give the number of the ticket this one follows, e.g. 42.")
    return number


def _money(data: Mapping[str, Any], name: str) -> Decimal:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return Decimal("0")
    if isinstance(value, bool):
        raise TicketError(name, "Give an amount in dollars an hour, e.g. 2500.")
    if isinstance(value, float) and not math.isfinite(value):
        raise TicketError(name, "Give an amount in dollars an hour, e.g. 2500.")
    if isinstance(value, (int, float, Decimal)):
        amount = Decimal(str(value))  # a JSON number: 1e3 is how JSON may write a thousand
    else:
        amount = amount_as_written(value)
        if amount is None:
            raise TicketError(name, "Give an amount in dollars an hour, e.g. 2500 or 2,500.")
    if not amount.is_finite():
        raise TicketError(name, "Give an amount in dollars an hour, e.g. 2500.")
    if amount < 0:
        raise TicketError(name, "The amount cannot be negative; leave it empty if no money is being lost.")
    if amount > REVENUE_MAX:
        raise TicketError(name, "That amount is too large; give dollars lost per hour.")
    return amount.quantize(Decimal("0.01"))


def _typed_instant(naive: datetime, tz: str, name: str) -> datetime:
    try:
        return local_instant(naive, tz)
    except ValueError as error:
        raise TicketError(name, f"{error}: give another time.") from None


def parse_deadline(value: Any, tz: str, now: datetime, name: str = "client_deadline") -> Optional[datetime]:
    """'17:00' means today at 17:00 in the client's time zone; an ISO date-time may carry its own offset."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    zone = ZoneInfo(tz)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else _typed_deadline(value, zone, tz, now, name)
    elif isinstance(value, str):
        text = value.strip()
        match = re.fullmatch(r"(\d{1,2})[:.h](\d{2})", text)
        if match:
            hour, minute = int(match.group(1)), int(match.group(2))
            if hour > 23 or minute > 59:
                raise TicketError(name, "Give a time of day such as 17:00.")
            local_today = now.astimezone(zone).date()
            moment = _typed_instant(datetime.combine(local_today, time(hour, minute)), tz, name)
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise TicketError(name, "Give a time today such as 17:00, or a date and time such as 2026-11-24T17:00.") from None
            if moment.tzinfo is None:
                moment = _typed_deadline(moment, zone, tz, now, name)
    else:
        raise TicketError(name, "Give a time today such as 17:00, or a date and time such as 2026-11-24T17:00.")
    _check_reach(moment, now, name)
    return moment.astimezone(ZoneInfo("UTC"))


def _check_reach(moment: datetime, now: datetime, name: str) -> None:
    """`moment` and `now` both aware, or both the wall clock of one zone."""
    if moment <= now:
        raise TicketError(name, "That time has already passed; give a later time or leave it empty.")
    if moment > now + timedelta(days=DEADLINE_REACH_DAYS):
        raise TicketError(name, "Give a deadline within the next year.")


def _typed_deadline(naive: datetime, zone: ZoneInfo, tz: str, now: datetime, name: str) -> datetime:
    """A deadline typed without an offset, checked on the wall clock before it is converted: 9999-12-31
    23:59 in New York is in the year 10000 in UTC, which no datetime holds (a 500 from the API)."""
    _check_reach(naive.replace(tzinfo=None), now.astimezone(zone).replace(tzinfo=None), name)
    return _typed_instant(naive, tz, name)


def parse_ticket_input(data: Mapping[str, Any], tz: str, now: datetime) -> TicketInput:
    """Check what the client typed (form or JSON); the first problem raises TicketError naming its field."""
    title = _text(data, "title")
    if not title:
        raise TicketError("title", "Say in a few words what is broken.")
    if len(title) > TITLE_MAX:
        raise TicketError("title", f"Keep the summary under {TITLE_MAX} characters; put the rest in the description.")
    description = _text(data, "description")
    if len(description) > DESCRIPTION_MAX:
        raise TicketError("description", f"Keep the description under {DESCRIPTION_MAX:,} characters.")
    category = (_text(data, "category") or "other").lower()
    if category not in CATEGORIES:
        raise TicketError("category", "Choose one of: " + ", ".join(CATEGORIES) + ".")
    impact = _text(data, "impact").lower()
    if not impact:
        raise TicketError("impact", "Say who is affected: the whole company, a department, or one person.")
    if impact not in IMPACT_LABELS:
        raise TicketError("impact", "Who is affected must be one of: company, department, person.")
    return TicketInput(
        title=title,
        description=description,
        category=category,
        impact=impact,
        revenue_at_risk_per_hour=_money(data, "revenue_at_risk_per_hour"),
        client_deadline=parse_deadline(data.get("client_deadline"), tz, now),
        onsite_needed=_flag(data, "onsite_needed"),
        safety_critical=_flag(data, "safety_critical"),
        follows_ticket_id=_ticket_number(data, "follows_ticket_id"),
    )


# --- opening ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedTicket:
    ticket: Ticket
    created: bool
    after_hours: AfterHoursDecision


def decide_after_hours(ticket: Ticket, at: datetime) -> AfterHoursDecision:
    """Is the ticket's plan covered at `at`, and must the on-call technician be paged?"""
    plan = ticket.sla_plan
    terms = dict(
        is_contract=plan is not None and plan.is_contract,
        after_hours_emergencies=bool(plan is not None and plan.after_hours_emergencies),
        plan_calendar=settings.plan_calendar(plan),
        business_calendar=settings.business_calendar(),
    )
    decision = after_hours_decision(at, **terms)
    if decision.page_on_call:
        cover_ends = staff.on_call_cover_ends(at)
        # Nobody on the rota: the page goes to the dispatchers ("the on-call technician has been paged"
        # told a client in an emergency that someone was coming when nobody was). Cover ending before
        # the response is due: the dispatchers are alerted too, and the client told when it ends.
        decision = after_hours_decision(at, on_call=cover_ends is not None, on_call_ends_at=cover_ends,
                                        response_due_at=ticket.response_due_at, **terms)
    return decision


class IdempotencyKeyReused(TicketError):
    """The key was first sent with another ticket: replaying that one would drop this request."""

    def __init__(self) -> None:
        super().__init__("idempotency_key", "This Idempotency-Key was already used for a different ticket; "
                                            "send a new key for a new ticket. Nothing was opened.")


def key_for_changed_request(idempotency_key: str, data: TicketInput) -> str:
    """The key a changed request files under: the same for the same change, so sending it twice still opens one."""
    return hashlib.sha256(f"{idempotency_key}\n{request_fingerprint(data)}".encode()).hexdigest()


def followed_ticket(organisation_id: int, ticket_id: int) -> Ticket:
    """The organisation's resolved or closed ticket that a new report follows up; TicketError otherwise.

    An open ticket is not reported again: its comments reach the technician working on it. Another
    organisation's ticket reads as no such ticket, as everywhere else.
    """
    ticket = ticket_for_organisation(organisation_id, ticket_id)
    if ticket is None:
        raise TicketError("follows_ticket_id", f"There is no ticket #{ticket_id} of yours to follow up.")
    if ticket.status not in TicketStatus.DONE:
        raise TicketError("follows_ticket_id", f"Ticket #{ticket_id} is still open: add a comment to it instead "
                                               f"of reporting it again.")
    return ticket


def _existing(organisation_id: int, idempotency_key: str) -> Optional[Ticket]:
    return db.session.scalars(
        select(Ticket).where(Ticket.organisation_id == organisation_id, Ticket.idempotency_key == idempotency_key)
    ).first()


def _replay(existing: Ticket, fingerprint: str) -> OpenedTicket:
    """The earlier ticket when this is the same request again; refused when the key came with another one."""
    stored = existing.request_fingerprint or request_fingerprint(TicketInput(
        existing.title, existing.description, existing.category, existing.impact,
        existing.revenue_at_risk_per_hour, existing.client_deadline, existing.onsite_needed,
        existing.safety_critical, existing.follows_ticket_id))  # filed before fingerprints were kept: its fields as saved
    if stored != fingerprint:
        raise IdempotencyKeyReused()
    return OpenedTicket(existing, False, decide_after_hours(existing, existing.opened_at))


def open_ticket(organisation_id: int, requester_id: Optional[int], data: TicketInput, now: datetime,
                idempotency_key: Optional[str] = None) -> OpenedTicket:
    """File a ticket under the organisation's current plan; the same request with the same idempotency key
    returns the first ticket, and another request with that key is refused (IdempotencyKeyReused).

    The after-hours rule is applied as the ticket is filed: a plan with after-hours emergencies
    pages the on-call technician (outbox, same transaction); others are told the next business
    start. The queue then gives it a place, which writes the 'received' email with place and estimate.
    """
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        raise TicketError("idempotency_key", f"Use at most {IDEMPOTENCY_KEY_MAX} characters.")
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None:
        raise TicketError(None, "There is no such organisation.")
    fingerprint = request_fingerprint(data)
    if key is not None:
        existing = _existing(organisation_id, key)
        if existing is not None:
            return _replay(existing, fingerprint)
    requester = db.session.get(User, requester_id) if requester_id is not None else None
    if requester is not None and requester.organisation_id != organisation_id:
        raise TicketError(None, "Only members of the organisation can open its tickets.")
    followed = followed_ticket(organisation_id, data.follows_ticket_id) if data.follows_ticket_id else None

    ticket = Ticket(
        organisation_id=organisation_id, requester_id=requester_id, title=data.title, description=data.description,
        category=data.category, impact=data.impact, revenue_at_risk_per_hour=data.revenue_at_risk_per_hour,
        client_deadline=data.client_deadline, onsite_needed=data.onsite_needed, safety_critical=data.safety_critical,
        required_skill=CATEGORY_SKILL.get(data.category), status=TicketStatus.NEW, idempotency_key=key,
        request_fingerprint=fingerprint, follows_ticket_id=data.follows_ticket_id, opened_at=now, updated_at=now,
    )
    ticket.organisation = organisation
    sla.apply_plan(ticket, sla.current_plan(organisation_id), now, now)
    decision = decide_after_hours(ticket, now)
    who = (requester.full_name or requester.email) if requester is not None else "your monitoring system (API)"
    ticket.events.append(TicketEvent(
        at=now, kind="opened", public=True, actor_id=requester_id,
        message=f"Ticket opened by {who}" + (f", reporting #{followed.id} again." if followed else "."),
        detail={"plan": ticket.sla_plan.name if ticket.sla_plan else "Break/Fix", "after_hours": not decision.covered_now,
                "after_hours_message": decision.message},
    ))
    if not settings.business_calendar().is_covered(now):
        ticket.events.append(TicketEvent(at=now, kind="after_hours", public=True, message=decision.message))
    db.session.add(ticket)
    try:
        db.session.flush()
        if followed is not None:
            followed.events.append(TicketEvent(at=now, kind="followed_up", public=True, actor_id=requester_id,
                                               message=f"Reported again as #{ticket.id}: the problem is back.",
                                               detail={"ticket_id": ticket.id}))
        if decision.page_on_call:
            technician = staff.on_call_at(now)
            alerts.page_on_call(ticket, technician.user.email if technician else None, now,
                                cover_ends_at=decision.cover_ends_at)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if key is None:
            raise
        existing = _existing(organisation_id, key)
        if existing is None:
            raise
        return _replay(existing, fingerprint)

    requeue(now)
    db.session.refresh(ticket)
    return OpenedTicket(ticket, True, decision)


def requeue(now: datetime, pin_changed: Optional[int] = None) -> None:
    """Re-run the queue after a committed change. The change stands even if the engines fail: the error is
    logged and the next recompute (any change, or `flask queue recompute`) brings the places up to date."""
    from . import queue

    try:
        queue.recompute(now, pin_changed)
    except Exception:
        log.exception("queue recompute failed after a ticket change; places are stale until the next one")
        db.session.rollback()


def ticket_for_organisation(organisation_id: int, ticket_id: int) -> Optional[Ticket]:
    """The ticket only if it belongs to the organisation: another organisation's ticket does not exist here."""
    return db.session.scalars(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.organisation_id == organisation_id)
    ).first()


# --- changes ------------------------------------------------------------------------------------------


def _load(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is None:
        raise TicketError(None, "There is no such ticket.")
    return ticket


def _check_actor(ticket: Ticket, actor: Optional[User], staff_only: bool = False) -> None:
    if actor is None:
        return
    if actor.is_staff:
        return
    if staff_only or actor.organisation_id != ticket.organisation_id:
        raise TicketError(None, "There is no such ticket." if actor.organisation_id != ticket.organisation_id
                          else "Only staff can do that.")


def _change(ticket_id: int, apply: Callable[[Ticket], None], now: datetime, recompute: bool = True) -> Ticket:
    """Load, apply, commit; retried when another worker changed the ticket in between (version counter)."""
    for attempt in range(3):
        ticket = _load(ticket_id)
        try:
            apply(ticket)
            ticket.updated_at = now
            db.session.commit()
            break
        except StaleDataError:
            db.session.rollback()
            if attempt == 2:
                raise
        except Exception:
            db.session.rollback()
            raise
    if recompute:
        requeue(now)
    return _load(ticket_id)


def _actor_technician(actor: Optional[User]) -> Optional[Technician]:
    if actor is None or actor.role != Role.TECHNICIAN:
        return None
    return db.session.scalars(select(Technician).where(Technician.user_id == actor.id)).first()


def _arrival_estimate(ticket: Ticket, technician: Optional[Technician], now: datetime) -> tuple[Optional[datetime], Optional[datetime]]:
    """When the technician heading out now should arrive: the travel model from where they are to the site."""
    if technician is None:
        return None, None
    lat = technician.current_latitude if technician.current_latitude is not None else technician.home_latitude
    lon = technician.current_longitude if technician.current_longitude is not None else technician.home_longitude
    origin = Location(lat, lon) if lat is not None and lon is not None else None
    org = ticket.organisation
    site = Location(org.latitude, org.longitude) if org.latitude is not None and org.longitude is not None else None
    travel = settings.travel_model().estimate(origin, site)
    return now + timedelta(minutes=travel.median_minutes), now + timedelta(minutes=travel.p90_minutes)


def set_status(ticket_id: int, status: str, actor: Optional[User], now: datetime, note: str = "",
               expected_version: Optional[int] = None) -> Ticket:
    """Move the ticket on; records the first response and the arrival, opens/closes pauses, emails the client.

    With `expected_version` (a staff form's token) the move is refused when the ticket changed since the
    form was drawn, also when the change lands between the caller's look and this write (the retry
    after a concurrent update sees the new version): a second click never applies on top of the first.
    """
    note = (note or "").strip()
    if len(note) > COMMENT_MAX:
        raise TicketError("note", f"Keep the note under {COMMENT_MAX:,} characters.")
    if status not in TRANSITIONS:
        raise TicketError("status", "Unknown status.")

    def apply(ticket: Ticket) -> None:
        _check_actor(ticket, actor)
        if expected_version is not None and ticket.version != expected_version:
            raise TicketError("version", "Someone else changed this ticket meanwhile; look at it again and retry.")
        target = status
        if actor is not None and not actor.is_staff:
            if target not in CLIENT_TARGETS:
                raise TicketError("status", "Only our technicians can set that status.")
        if target == TicketStatus.NEW and ticket.technician_id is not None:
            target = _resumed(ticket) if ticket.status == TicketStatus.WAITING_ON_CLIENT else TicketStatus.ASSIGNED
        labels = TicketStatus.STAFF_LABELS if actor is None or actor.is_staff else TicketStatus.LABELS
        if target == ticket.status:
            raise TicketError("status", f"The ticket is already '{labels[target]}'.")
        if target not in TRANSITIONS[ticket.status]:
            raise TicketError("status", f"A ticket that is '{labels[ticket.status]}' cannot become "
                                        f"'{labels[target]}'.")
        if target not in allowed_statuses(ticket):
            raise TicketError("status", "This job is handled remotely: a dispatcher can change it to on site "
                                        "on the ticket page first.")
        if ticket.technician_id is None and (target in NEEDS_TECHNICIAN or target in TicketStatus.ACTIVE
                                             or target in TECHNICIAN_WORK):
            # A technician acting on a job the engine offered them takes it, whatever the tap: one who
            # answers the client (waiting on them) or fixes it at once must not leave it nobody's.
            own = _actor_technician(actor)
            if own is not None:
                ticket.technician = own
            elif target in NEEDS_TECHNICIAN:
                raise TicketError("technician_id", "Assign a technician first.")
        staff_action = actor is None or actor.is_staff
        previous = ticket.status
        ticket.status = target
        if previous == TicketStatus.WAITING_ON_CLIENT:
            for pause in ticket.pauses:
                if pause.ended_at is None:
                    pause.ended_at = now
        if target == TicketStatus.WAITING_ON_CLIENT:
            ticket.pauses.append(TicketPause(started_at=now))
        if staff_action and ticket.first_response_at is None and (
            target in RESPONSE_STATUSES or target == TicketStatus.RESOLVED
        ):
            ticket.first_response_at = now
        if target == TicketStatus.ON_SITE and ticket.arrived_at is None:
            ticket.arrived_at = now
        if target in TicketStatus.DONE:
            # A pin places a waiting ticket; done work has no place (the pin stays in the log).
            ticket.override_position = ticket.override_reason = None
        if target == TicketStatus.RESOLVED:
            ticket.resolved_at = now
        elif target == TicketStatus.CLOSED and ticket.resolved_at is None:
            ticket.resolved_at = now
        elif target in TicketStatus.OPEN and previous in TicketStatus.DONE:
            ticket.resolved_at = None
        sla.recompute_due(ticket, now)
        sla.record_breaches(ticket, now)
        if target == TicketStatus.CLOSED and previous in TicketStatus.OPEN:
            sla.close_without_work(ticket, now)
        ticket.sla_state = sla.ticket_state(ticket, now).value

        message = STATUS_MESSAGES[target]
        detail: dict[str, Any] = {"from": previous, "to": target}
        if target == TicketStatus.EN_ROUTE:
            median, p90 = _arrival_estimate(ticket, ticket.technician, now)
            if median is not None:
                message += f": expected on site around {notifications.local_time(median, ticket.organisation.timezone)}"
                detail.update(arrival_median=median.isoformat(), arrival_p90=p90.isoformat() if p90 else None)
            notifications.technician_en_route(ticket, ticket.technician, median, p90, now)
        elif target == TicketStatus.RESOLVED:
            notifications.ticket_resolved(ticket, note, now)
        elif target == TicketStatus.CLOSED and previous in TicketStatus.OPEN and staff_action:
            notifications.ticket_closed(ticket, note, now)
        if not staff_action and previous in HELD_BY_TECHNICIAN and target in CLIENT_STOPS:
            alerts.tell_technician_client_stopped(ticket, previous, now, note)
        elif target == TicketStatus.WAITING_ON_CLIENT and staff_action:
            notifications.ticket_waiting_on_client(ticket, note, now)
        if note:
            message += f" — {note}"
            detail["note"] = note
        ticket.events.append(TicketEvent(at=now, kind="status", actor_id=actor.id if actor else None,
                                         public=True, message=message + _full_stop(message), detail=detail))

    return _change(ticket_id, apply, now)


RESUMABLE = frozenset({TicketStatus.ON_SITE, TicketStatus.IN_PROGRESS})


def _resumed(ticket: Ticket) -> str:
    """Where a job paused on the client goes back to when they are ready: the work in hand it was
    (the technician on site, or working remotely), else its technician's queue. "Carry on" had sent
    a job the technician was on site for back to 'Technician assigned' with a new drive estimate."""
    for event in reversed(ticket.events):
        detail = event.detail or {}
        if event.kind == "status" and detail.get("to") == TicketStatus.WAITING_ON_CLIENT:
            return detail.get("from") if detail.get("from") in RESUMABLE else TicketStatus.ASSIGNED
    return TicketStatus.ASSIGNED


def _full_stop(message: str) -> str:
    """A technician's note often ends with its own full stop: "printed.." read as a typo."""
    return "" if message.rstrip().endswith((".", "!", "?")) else "."


def override_position(ticket_id: int, position: Optional[int], reason: str, actor: User, now: datetime,
                      expected_version: Optional[int] = None) -> Ticket:
    """A dispatcher pins the ticket's place (None clears the pin); the reason is logged and shown to the client."""
    reason = (reason or "").strip()
    if position is not None:
        if isinstance(position, bool) or not isinstance(position, int) or position < 1:
            raise TicketError("position", "Give the place as a whole number, 1 = next.")
        if position > 100_000:
            raise TicketError("position", "That place is beyond the end of any queue.")
    if not reason:
        raise TicketError("reason", "Say why, in words the client will read.")
    if len(reason) > REASON_MAX:
        raise TicketError("reason", f"Keep the reason under {REASON_MAX} characters.")

    def apply(ticket: Ticket) -> None:
        _check_actor(ticket, actor, staff_only=True)
        if expected_version is not None and ticket.version != expected_version:
            raise TicketError("version", "Someone else changed this ticket meanwhile; look at it again and retry.")
        if ticket.status not in TicketStatus.WAITING and position is not None:
            raise TicketError("position", "Only a ticket waiting in the queue has a place to change.")
        if position is None and ticket.override_position is None:
            raise TicketError("position", "This ticket's place is not pinned: there is nothing to lift.")
        ticket.override_position = position
        ticket.override_reason = reason if position is not None else None
        ticket.events.append(TicketEvent(
            at=now, kind="override", public=False, actor_id=actor.id,
            message=(f"Place set to {position} by {actor.full_name or actor.email}: {reason}" if position is not None
                     else f"Place override cleared by {actor.full_name or actor.email}: {reason}"),
            detail={"position": position, "reason": reason},
        ))
        # The client reads the reason in its timeline even when the pin leaves the place unchanged.
        ticket.events.append(TicketEvent(
            at=now, kind="prioritised", public=True, actor_id=actor.id,
            message=(f"Our dispatcher set this ticket's place in the queue: {reason}" if position is not None
                     else f"Our dispatcher returned this ticket to its usual place in the queue: {reason}"),
        ))

    _change(ticket_id, apply, now, recompute=False)
    requeue(now, pin_changed=ticket_id)
    return _load(ticket_id)


def assign(ticket_id: int, technician_id: Optional[int], actor: Optional[User], now: datetime) -> Ticket:
    """Give the ticket to a technician (None: let the engine choose again); the client hears who is coming."""
    technician = None
    if technician_id is not None:
        technician = db.session.get(Technician, technician_id)
        if technician is None or not technician.active:
            raise TicketError("technician_id", "Choose an active technician.")

    def apply(ticket: Ticket) -> None:
        _check_actor(ticket, actor, staff_only=True)
        if ticket.status not in TicketStatus.OPEN:
            raise TicketError("technician_id", "The ticket is no longer open.")
        if ticket.technician_id == technician_id:
            raise TicketError("technician_id", "That technician already has the ticket."
                              if technician_id else "No technician is assigned.")
        previous = ticket.status
        ticket.technician_id = technician_id
        ticket.technician = technician
        if technician is not None:
            # A job in hand given to someone else waits for them: they have not set off, arrived or
            # started (left 'en route' or 'on site', the page named a technician nowhere near).
            if ticket.status == TicketStatus.NEW or ticket.status in TicketStatus.ACTIVE:
                ticket.status = TicketStatus.ASSIGNED
            message = f"Technician assigned: {technician.user.first_name}."
            if previous in TicketStatus.ACTIVE:
                message = (f"Technician changed: {technician.user.first_name} takes over this job; "
                           "we will tell you when they are on their way.")
            ticket.events.append(TicketEvent(
                at=now, kind="assigned", public=True, actor_id=actor.id if actor else None,
                message=message, detail={"technician_id": technician.id, "from": previous, "to": ticket.status},
            ))
            notifications.technician_assigned(ticket, technician, now)
        else:
            release_technician(ticket, actor, now)

    return _change(ticket_id, apply, now)


def release_technician(ticket: Ticket, actor: Optional[User], now: datetime, why: str = "") -> None:
    """The ticket goes back to the dispatch engine to choose a technician (in the caller's transaction)."""
    previous = ticket.status
    ticket.technician_id = None
    ticket.technician = None
    if ticket.status == TicketStatus.ASSIGNED or ticket.status in TicketStatus.ACTIVE:
        # Work in hand with nobody doing it is waiting again: 'en route' with no technician
        # reached nobody's phone and had no place in the queue.
        ticket.status = TicketStatus.NEW
    if previous in TicketStatus.ACTIVE:
        ticket.events.append(TicketEvent(
            at=now, kind="status", public=True, actor_id=actor.id if actor else None,
            message="Back in the queue: our dispatcher is sending another technician.",
            detail={"from": previous, "to": TicketStatus.NEW},
        ))
    ticket.events.append(TicketEvent(
        at=now, kind="unassigned", public=False, actor_id=actor.id if actor else None,
        message=f"Technician unassigned: {why + '; ' if why else ''}the dispatch engine will choose.",
    ))


def set_details(ticket_id: int, onsite_needed: bool, effort_minutes: Optional[int], required_skill: Optional[str],
                actor: Optional[User], now: datetime) -> Ticket:
    """Staff correct what the job needs; a change of on-site need moves the arrival due time (same clock)."""
    if effort_minutes is not None:
        if isinstance(effort_minutes, bool) or not isinstance(effort_minutes, int) or not 1 <= effort_minutes <= EFFORT_MAX_MINUTES:
            raise TicketError("effort_minutes", f"Give the expected work in minutes, 1 to {EFFORT_MAX_MINUTES:,}.")
    skill = (required_skill or "").strip().lower() or None
    if skill is not None and not SKILL_PATTERN.match(skill):
        raise TicketError("required_skill", "A skill is one word of letters, digits, '-' or '_'.")

    def apply(ticket: Ticket) -> None:
        _check_actor(ticket, actor, staff_only=True)
        changes = {}
        if ticket.onsite_needed != bool(onsite_needed):
            changes["onsite_needed"] = bool(onsite_needed)
        if ticket.effort_minutes != effort_minutes:
            changes["effort_minutes"] = effort_minutes
        if ticket.required_skill != skill:
            changes["required_skill"] = skill
        if not changes:
            raise TicketError(None, "Nothing changed.")
        ticket.onsite_needed = bool(onsite_needed)
        ticket.effort_minutes = effort_minutes
        ticket.required_skill = skill
        if "onsite_needed" in changes:
            sla.recompute_due(ticket, now)
            ticket.sla_state = sla.ticket_state(ticket, now).value
            ticket.events.append(TicketEvent(
                at=now, kind="details", public=True, actor_id=actor.id if actor else None,
                message="A technician will come on site." if onsite_needed else "This will be handled remotely.",
            ))
        ticket.events.append(TicketEvent(
            at=now, kind="details", public=False, actor_id=actor.id if actor else None,
            message="Details changed: " + ", ".join(f"{k} = {v}" for k, v in changes.items()), detail=changes,
        ))

    return _change(ticket_id, apply, now)


def add_comment(ticket_id: int, author: User, body: str, now: datetime) -> Comment:
    """A message on the ticket's timeline (staff's reply is emailed to the client); no place moves,
    so the queue is not re-run."""
    body = (body or "").strip()
    if not body:
        raise TicketError("body", "Write a comment first.")
    if len(body) > COMMENT_MAX:
        raise TicketError("body", f"Keep comments under {COMMENT_MAX:,} characters.")
    holder: dict[str, Comment] = {}

    def apply(ticket: Ticket) -> None:
        _check_actor(ticket, author)
        repeated = _repeated_comment(ticket.id, author, body, now)
        if repeated is not None:  # lost a race with the first send: it is already there
            holder["comment"] = repeated
            return
        comment = Comment(ticket_id=ticket.id, author_id=author.id, body=body, created_at=now)
        db.session.add(comment)
        holder["comment"] = comment
        ticket.events.append(TicketEvent(at=now, kind="comment", public=True, actor_id=author.id,
                                         message=f"Comment from {author.first_name}."))
        if author.is_staff:
            notifications.staff_reply(ticket, author, body, now)

    repeated = _repeated_comment(ticket_id, author, body, now)  # only ever the author's own comment
    if repeated is not None:
        return repeated
    _change(ticket_id, apply, now, recompute=False)
    return holder["comment"]


COMMENT_REPEAT_WINDOW = timedelta(minutes=5)


def _repeated_comment(ticket_id: int, author: User, body: str, now: datetime) -> Optional[Comment]:
    """The author's last comment on the ticket when it says the same and is minutes old: a double
    click, a resent form or Back then send again posted it (and staff's reply was emailed) twice."""
    last = db.session.scalars(select(Comment).where(Comment.ticket_id == ticket_id, Comment.author_id == author.id)
                              .order_by(Comment.id.desc()).limit(1)).first()
    if last is not None and last.body == body and timedelta(0) <= now - last.created_at <= COMMENT_REPEAT_WINDOW:
        return last
    return None


def attachment_limit() -> int:
    """The largest file accepted; the request cap is a little larger, so this check is the one people meet."""
    return int(current_app.config["ATTACHMENT_MAX_BYTES"])


def megabytes(size: int) -> str:
    """Sizes in the words the upload form uses, so the limit reads the same on the page and in refusals."""
    return f"{size / (1024 * 1024):.1f}"


def _size(file_storage: FileStorage) -> int:
    stream = file_storage.stream
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def add_attachment(ticket_id: int, uploader: User, file_storage: Optional[FileStorage], now: datetime) -> Attachment:
    """Store an uploaded file under a random name; the original name is kept for display only."""
    if file_storage is None or not file_storage.filename:
        raise TicketError("file", "Choose a file to attach.")
    name = uploaded_file_name(file_storage.filename)
    extension = os.path.splitext(name)[1].lower()
    if extension not in ATTACHMENT_TYPES:
        raise TicketError("file", "Attach a picture, PDF, text, log, office document or zip file.")
    size = _size(file_storage)
    limit = attachment_limit()
    if size == 0:
        raise TicketError("file", "That file is empty.")
    if size > limit:
        raise TicketError("file", f"Files can be at most {megabytes(limit)} MB; this one is {megabytes(size)} MB.")
    storage_name = secrets.token_hex(16) + extension
    folder = current_app.config["UPLOAD_FOLDER"]
    path = os.path.join(folder, storage_name)
    holder: dict[str, Attachment] = {}

    def apply(ticket: Ticket) -> None:
        _check_actor(ticket, uploader)
        os.makedirs(folder, exist_ok=True)
        file_storage.save(path)
        attachment = Attachment(
            ticket_id=ticket.id, uploader_id=uploader.id, filename=name[:255],
            content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
            size=size, storage_name=storage_name, created_at=now,
        )
        db.session.add(attachment)
        holder["attachment"] = attachment
        ticket.events.append(TicketEvent(at=now, kind="attachment", public=True, actor_id=uploader.id,
                                         message=f"File attached by {uploader.first_name}: {name}."))

    try:
        _change(ticket_id, apply, now, recompute=False)
    except Exception:
        if os.path.exists(path):
            os.remove(path)
        raise
    return holder["attachment"]
