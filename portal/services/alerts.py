"""What staff must hear: SLA at risk or breached (to the dispatchers), after-hours emergencies (to on-call).

Each alert is written to the email outbox together with a staff-only ticket event whose kind
names the alert; the event is the proof that the alert went out, so a ticket is alerted once
per state however often the check runs (e.g. `flask alerts check --loop` and after every
recompute), and the staff timeline shows who was told what and when.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select

from ..extensions import db
from ..models import QueueEntry, Role, Ticket, TicketEvent, TicketStatus, User
from . import outbox
from .ticket_status import sla_outlook

AT_RISK = "at_risk"
BREACHED = "breached"
ALERT_KIND = {AT_RISK: "staff_alert_at_risk", BREACHED: "staff_alert_breached"}
PAGED_KIND = "staff_alert_on_call"


@dataclass(frozen=True)
class CheckResult:
    tickets_alerted: int
    emails: int


def dispatcher_addresses() -> list[str]:
    """Active dispatchers; the owners when the firm has no dispatcher (somebody must hear it)."""
    for role in (Role.DISPATCHER, Role.OWNER):
        emails = list(
            db.session.scalars(
                select(User.email).where(User.role == role, User.active.is_(True)).order_by(User.id)
            )
        )
        if emails:
            return emails
    return []


def alert_state(ticket: Ticket, entry: Optional[QueueEntry]) -> Optional[str]:
    """The state worth an alert: a recorded breach wins; at risk by the clock or by the dispatch plan,
    judged as the board and the client's page judge it (`ticket_status.sla_outlook`), so a remote
    response the technician sets off too late for alerts the dispatchers too, not only a late arrival."""
    if ticket.sla_state == BREACHED or ticket.response_breached_at or ticket.arrival_breached_at:
        return BREACHED
    if sla_outlook(ticket, entry).state == AT_RISK:
        return AT_RISK
    return None


def _already(ticket_id: int, kind: str) -> bool:
    return (
        db.session.scalars(
            select(TicketEvent.id).where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind)
        ).first()
        is not None
    )


def _lock(ticket_id: int) -> Optional[Ticket]:
    """Row-lock the ticket on PostgreSQL so two checkers never alert twice (SQLite serialises writers)."""
    query = select(Ticket).where(Ticket.id == ticket_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.session.scalars(query).first()


def firm_time(at: datetime) -> str:
    """The firm's wall clock, as everywhere else in the portal: a technician paged at night should
    not have to convert from UTC."""
    return at.astimezone(ZoneInfo(current_app.config["FIRM_TIMEZONE"])).strftime("%a %d %b %H:%M %Z")


def _due_text(ticket: Ticket) -> str:
    due = [f"response due {firm_time(ticket.response_due_at)}"] if ticket.response_due_at else []
    if ticket.onsite_needed and ticket.arrival_due_at:
        due.append(f"arrival due {firm_time(ticket.arrival_due_at)}")
    return "; ".join(due) or "no guaranteed deadline"


def _ticket_link(ticket_id: int) -> str:
    """Built from PUBLIC_URL: `flask alerts check` and ticket openings from CLI/workers have no request."""
    from .notifications import absolute_link

    return absolute_link("staff.ticket", ticket_id=ticket_id) or f"ticket #{ticket_id}"


def _candidates() -> list[tuple[int, str]]:
    """Open tickets whose state deserves an alert not yet sent: read without locks, re-checked under one."""
    rows = db.session.execute(
        select(Ticket, QueueEntry)
        .outerjoin(QueueEntry, QueueEntry.ticket_id == Ticket.id)
        .where(
            Ticket.status.in_(TicketStatus.OPEN),
            Ticket.sla_state.in_([AT_RISK, BREACHED])
            | Ticket.response_breached_at.is_not(None)
            | Ticket.arrival_breached_at.is_not(None)
            | QueueEntry.sla_at_risk.is_(True)
            | (Ticket.onsite_needed.is_(True) & Ticket.first_response_at.is_(None)
               & (func.coalesce(QueueEntry.set_off_p90, QueueEntry.set_off_median) > Ticket.response_due_at)),
        )
        .order_by(Ticket.id)
    ).all()
    sent = {(ticket_id, kind) for ticket_id, kind in db.session.execute(
        select(TicketEvent.ticket_id, TicketEvent.kind).where(
            TicketEvent.ticket_id.in_([t.id for t, _ in rows]), TicketEvent.kind.in_(list(ALERT_KIND.values())))
    )} if rows else set()
    found = []
    for ticket, entry in rows:
        state = alert_state(ticket, entry)
        if state is not None and (ticket.id, ALERT_KIND[state]) not in sent:
            found.append((ticket.id, state))
    return found


def check_sla(now: datetime) -> CheckResult:
    """Alert the dispatchers about every open ticket newly at risk or breached; commits per ticket.

    Only tickets needing an alert are locked, so a check over a long queue stays cheap.
    """
    candidates = _candidates()
    db.session.commit()  # end the read; each alert below is its own short transaction
    recipients = dispatcher_addresses() if candidates else []
    alerted = emails = 0
    for ticket_id, _ in candidates:
        ticket = _lock(ticket_id)
        if ticket is None:
            db.session.commit()
            continue
        entry = db.session.get(QueueEntry, ticket_id)
        state = alert_state(ticket, entry)
        if state is None or _already(ticket.id, ALERT_KIND[state]):
            db.session.commit()  # release the lock: another checker was first
            continue
        words = "SLA BREACHED" if state == BREACHED else "SLA at risk"
        subject = f"[{words}] #{ticket.id} {ticket.organisation.name}: {ticket.title}"
        body = (
            f"Ticket #{ticket.id} for {ticket.organisation.name} — {ticket.title}\n"
            f"State: {words} ({_due_text(ticket)}).\n"
        )
        if entry is not None and entry.eta_median is not None:
            body += f"Forecast start/arrival: {firm_time(entry.eta_median)} (90%: "
            body += f"{firm_time(entry.eta_p90)})\n" if entry.eta_p90 else "unknown)\n"
        from ..client.presenting import outlook_words

        risk = outlook_words(sla_outlook(ticket, entry), firm_time) if state == AT_RISK else ""
        if risk:
            body += f"Forecast: {risk}.\n"
        body += f"Open it on the dispatch board: {_ticket_link(ticket.id)}\n"
        for address in recipients:
            outbox.enqueue(address, subject, body, ALERT_KIND[state], now)
            emails += 1
        db.session.add(
            TicketEvent(
                ticket_id=ticket.id, at=now, kind=ALERT_KIND[state], public=False,
                message=f"Dispatchers alerted: {words.lower()}" + ("" if recipients else " (no dispatcher to email)"),
                detail={"state": state, "recipients": recipients},
            )
        )
        db.session.commit()
        alerted += 1
    return CheckResult(alerted, emails)


CALLED_OFF_KIND = "technician_called_off"


def tell_technician_client_stopped(ticket: Ticket, previous: str, now: datetime, note: str = "") -> None:
    """The client resolved the ticket, or said it waits on them, while its technician had it: they
    may be driving there. Emailed in the caller's transaction, with a staff-only line in the timeline."""
    technician = ticket.technician
    if technician is None or technician.user is None:
        return
    what, instruction = (("marked it resolved", "you need not go on with it") if ticket.status == TicketStatus.RESOLVED
                         else ("said it waits on them", "hold it until they say they are ready"))
    body = (f"{ticket.organisation.name} {what}: {instruction}.\nTicket #{ticket.id}: {ticket.title}\n"
            f"It was '{TicketStatus.LABELS.get(previous, previous)}' when they did, at {firm_time(now)}.\n")
    if note:
        body += f"Their note: {note}\n"
    body += f"Open it: {_ticket_link(ticket.id)}\n"
    outbox.enqueue(technician.user.email, f"#{ticket.id} {ticket.organisation.name}: {what}", body, CALLED_OFF_KIND, now)
    ticket.events.append(TicketEvent(at=now, kind=CALLED_OFF_KIND, public=False,
                                     message=f"{technician.name} told by email that the client {what}.",
                                     detail={"recipient": technician.user.email}))


def page_on_call(ticket: Ticket, technician_email: Optional[str], now: datetime, why: Optional[str] = None,
                 cover_ends_at: Optional[datetime] = None) -> bool:
    """Page the on-call technician about an after-hours emergency, once per ticket.

    `cover_ends_at`: the technician goes off duty then, before the response is due, so the dispatchers
    get the page too, to find cover (as when nobody is on call).

    Adds to the caller's transaction (the ticket's opening, or the contract change that made an
    open ticket an emergency: `why`) without committing, so the page is sent if and only if that
    change is saved. Returns whether a page was written.
    """
    if ticket.id is not None and _already(ticket.id, PAGED_KIND):
        return False
    recipients = [technician_email] if technician_email else dispatcher_addresses()
    short_cover = bool(technician_email and cover_ends_at is not None)
    if short_cover:
        recipients += [address for address in dispatcher_addresses() if address != technician_email]
    org = ticket.organisation
    subject = f"[AFTER-HOURS EMERGENCY] {org.name}: {ticket.title}"
    body = (
        (why or f"A new after-hours emergency was opened at {firm_time(now)}.") + "\n"
        f"Client: {org.name}\nSite: {org.site_address or 'not given'}\n"
        f"Problem: {ticket.title}\n{ticket.description}\n"
        f"On site needed: {'yes' if ticket.onsite_needed else 'no'}; {_due_text(ticket)}.\n"
    )
    if ticket.id is not None:
        body += f"Open it: {_ticket_link(ticket.id)}\n"
    if not technician_email:
        subject = "[NOBODY ON CALL] " + subject
        body += "Nobody is on the on-call rota right now: please find a technician.\n"
    elif short_cover:
        subject = f"[ON CALL ENDS {firm_time(cover_ends_at)}] " + subject
        body += (f"The on-call technician goes off duty at {firm_time(cover_ends_at)}, before the response is due: "
                 "dispatchers, please find cover until the day shift.\n")
    for address in recipients:
        outbox.enqueue(address, subject, body, PAGED_KIND, now)
    ticket.events.append(
        TicketEvent(
            at=now, kind=PAGED_KIND, public=False,
            message=(f"On-call technician paged; dispatchers told: on call ends {firm_time(cover_ends_at)}" if short_cover
                     else "On-call technician paged" if technician_email else "Nobody on call: dispatchers told"),
            detail={"recipients": recipients},
        )
    )
    return True
