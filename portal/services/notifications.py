"""Emails a client wants to hear about its ticket: received (with place and estimate), technician
assigned, en route (with arrival time), waiting on the client, our reply to them, resolved; and,
to its client admins, about its contract: suspended, active again, ended.

Each function only adds outbox rows to the caller's transaction, so an email exists if and
only if the change that caused it was committed. Staff alerts (after-hours pages, SLA at risk
or breached) live in `services.alerts`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select
from werkzeug.routing import BuildError

from ..extensions import db
from ..models import Contract, ContractStatus, QueueEntry, Role, Technician, Ticket, TicketStatus, User
from . import outbox
from .contracts import firm_date

KIND_RECEIVED = "ticket_received"
KIND_ASSIGNED = "ticket_assigned"
KIND_EN_ROUTE = "ticket_en_route"
KIND_RESOLVED = "ticket_resolved"
KIND_CLOSED = "ticket_closed"
KIND_WAITING = "ticket_waiting_on_client"
KIND_REPLY = "ticket_staff_reply"
KIND_UPGRADED = "ticket_upgraded"
KIND_CONTRACT_SUSPENDED = "contract_suspended"
KIND_CONTRACT_RESUMED = "contract_active_again"
KIND_CONTRACT_ENDED = "contract_ended"


def ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def place_words(position: Optional[int], ahead: Optional[int]) -> str:
    """'3rd in line: 2 tickets ahead of you' — the words the status page and the emails share."""
    if position is None:
        return "Work on your ticket has started."
    if not ahead:
        return f"{ordinal(position)} in line: you are next."
    return f"{ordinal(position)} in line: {ahead} ticket{'s' if ahead != 1 else ''} ahead of you."


def local_time(at: datetime, tz: str) -> str:
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        zone = ZoneInfo(current_app.config["FIRM_TIMEZONE"])
    return at.astimezone(zone).strftime("%a %d %b %H:%M %Z")


def absolute_link(endpoint: str, **values: object) -> Optional[str]:
    """An absolute link built from PUBLIC_URL, so emails written by workers and CLI commands (no request) work."""
    base = current_app.config.get("PUBLIC_URL", "").rstrip("/")
    try:
        return base + current_app.url_map.bind("portal.invalid").build(endpoint, values)
    except BuildError:
        return None


def ticket_link(ticket_id: int) -> str:
    """The client's ticket page (the dashboard if the client pages name it differently)."""
    for endpoint in ("client.ticket", "client.ticket_status"):
        link = absolute_link(endpoint, ticket_id=ticket_id)
        if link:
            return link
    return absolute_link("client.dashboard") or current_app.config.get("PUBLIC_URL", "").rstrip("/") + "/"


def client_recipients(ticket: Ticket) -> list[str]:
    """The person who opened the ticket; the organisation's client admins when it came from a tool (API token)."""
    requester = ticket.requester
    if requester is not None and requester.active and requester.organisation_id == ticket.organisation_id:
        return [requester.email]
    return client_admins(ticket.organisation_id)


def client_admins(organisation_id: int) -> list[str]:
    """The addresses of the organisation's client admins who still have access."""
    return list(
        db.session.scalars(
            select(User.email)
            .where(User.organisation_id == organisation_id, User.role == Role.CLIENT_ADMIN, User.active.is_(True))
            .order_by(User.id)
        )
    )


def _send(ticket: Ticket, subject: str, body: str, kind: str, now: datetime,
          recipients: Optional[list[str]] = None) -> int:
    addresses = client_recipients(ticket) if recipients is None else recipients
    body += f"\nFollow your ticket: {ticket_link(ticket.id)}\n"
    for address in addresses:
        outbox.enqueue(address, f"#{ticket.id} {subject}", body, kind, now)
    return len(addresses)


def _estimate_words(entry: QueueEntry, tz: str, onsite: bool) -> str:
    if entry.eta_median is None:
        return entry.note or "We will tell you when a technician is expected."
    what = "A technician is expected on site" if onsite else "A technician is expected to start remotely"
    return f"{what} {_around(entry.eta_median, entry.eta_p90, tz)}."


def _around(median: datetime, p90: Optional[datetime], tz: str) -> str:
    """"around 14:20 (9 times out of 10 by 15:05)"; the range is left out when it reads as the same minute."""
    words = f"around {local_time(median, tz)}"
    if p90 is not None and local_time(p90, tz) != local_time(median, tz):
        words += f" (9 times out of 10 by {local_time(p90, tz)})"
    return words


def _due_words(ticket: Ticket, tz: str, entry: Optional[QueueEntry] = None) -> str:
    if ticket.sla_best_effort:
        target = ticket.response_due_at
        when = f" (usually by {local_time(target, tz)})" if target else ""
        return f"Break/fix: best effort, no guaranteed time{when}."
    parts = []
    if ticket.response_due_at:
        parts.append(f"remote response by {local_time(ticket.response_due_at, tz)}")
    if ticket.onsite_needed and ticket.arrival_due_at:
        parts.append(f"technician on site by {local_time(ticket.arrival_due_at, tz)}")
    if not parts:
        return ""
    text = "Your contract guarantees: " + " and ".join(parts)
    # The status page's outlook for the promises still owed (the same judgement, the same words), so the
    # email never reads as safer than the page.
    from ..client.presenting import outlook_words
    from .ticket_status import sla_outlook

    outlook = (outlook_words(sla_outlook(ticket, entry), lambda at: local_time(at, tz))
               if entry is not None else "")
    return text + (f" — {outlook}." if outlook else ".")


def ticket_received(ticket: Ticket, entry: QueueEntry, now: datetime, after_hours_message: str = "") -> int:
    """Sent once, when the ticket first gets its place in the queue (so the place and estimate are real)."""
    tz = ticket.organisation.timezone
    lines = [
        f"We received your ticket \"{ticket.title}\" at {local_time(ticket.opened_at, tz)}.",
        "",
        place_words(entry.position, entry.ahead),
        _estimate_words(entry, tz, ticket.onsite_needed),
        _due_words(ticket, tz, entry),
    ]
    if entry.client_reasons:
        lines.append("Why this place: " + "; ".join(entry.client_reasons) + ".")
    if after_hours_message:
        lines += ["", after_hours_message]
    return _send(ticket, f"We received your ticket: {ticket.title}", "\n".join(l for l in lines if l is not None) + "\n",
                 KIND_RECEIVED, now)


def ticket_upgraded(ticket: Ticket, entry: Optional[QueueEntry], plan_name: str, paged: str, now: datetime) -> int:
    """The client upgraded while this ticket waited: its new place, estimate and guarantee, and who was
    paged (`paged`: the after-hours words, empty when nobody was)."""
    tz = ticket.organisation.timezone
    lines = [f"Your {plan_name} contract is active: your ticket \"{ticket.title}\" is now served under it.", ""]
    if entry is not None and entry.position:
        lines += [place_words(entry.position, entry.ahead), _estimate_words(entry, tz, ticket.onsite_needed)]
    lines.append(_due_words(ticket, tz, entry))
    if paged:
        lines += ["", paged]
    return _send(ticket, f"Now under {plan_name}: {ticket.title}", "\n".join(lines) + "\n", KIND_UPGRADED, now)


def technician_assigned(ticket: Ticket, technician: Technician, now: datetime) -> int:
    body = (
        f"{technician.user.first_name} will handle your ticket \"{ticket.title}\".\n"
        "We will email you again when they are on their way.\n"
    )
    return _send(ticket, f"Technician assigned: {technician.user.first_name}", body, KIND_ASSIGNED, now)


def technician_en_route(ticket: Ticket, technician: Optional[Technician], arrival_median: Optional[datetime],
                        arrival_p90: Optional[datetime], now: datetime) -> int:
    tz = ticket.organisation.timezone
    name = technician.user.first_name if technician is not None else "Your technician"
    body = f"{name} is on the way to {ticket.organisation.site_address or 'your site'}.\n"
    if arrival_median is not None:
        body += f"Expected arrival {_around(arrival_median, arrival_p90, tz)}.\n"
    return _send(ticket, f"{name} is on the way", body, KIND_EN_ROUTE, now)


def ticket_waiting_on_client(ticket: Ticket, note: str, now: datetime) -> int:
    """Our technician needs something from the client: work stops and the deadline clock is paused
    until the client answers, so the client must hear of it, not find it on the page by chance."""
    body = (f"Your ticket \"{ticket.title}\" is waiting on you since {local_time(now, ticket.organisation.timezone)}: "
            "our technician needs something from you before they can carry on.\n")
    if note:
        body += f"\nTheir note: {note}\n"
    body += ("\nWhile it waits on you, its deadline clock is paused. When you are ready, press "
             "\"We are ready: carry on\" on the ticket's page, or reply there with a comment.\n")
    return _send(ticket, f"Waiting on you: {ticket.title}", body, KIND_WAITING, now)


def staff_reply(ticket: Ticket, author: User, body: str, now: datetime) -> int:
    """Our reply on the ticket's timeline: the client is not watching the page, and a question left
    there unseen holds the ticket up."""
    text = (f"{author.first_name} from our team replied on your ticket \"{ticket.title}\":\n\n{body}\n\n"
            "Answer with a comment on the ticket's page.\n")
    return _send(ticket, f"Reply from {author.first_name}: {ticket.title}", text, KIND_REPLY, now)


def ticket_closed(ticket: Ticket, note: str, now: datetime) -> int:
    """The firm closed an open ticket without work (a duplicate, nothing to do): the client hears why."""
    body = (f"Your ticket \"{ticket.title}\" was closed at {local_time(now, ticket.organisation.timezone)} "
            "without a technician's visit.\n")
    if note:
        body += f"\nWhy: {note}\n"
    return _send(ticket, f"Closed: {ticket.title}", body + _report_again(ticket, "If you still need help with it"),
                 KIND_CLOSED, now)


def _report_again(ticket: Ticket, opening: str) -> str:
    """Honest about what the portal does: a comment on a done ticket reopens nothing, a new report does."""
    link = absolute_link("client.new_ticket", follows=ticket.id)
    if link:
        return (f"\n{opening}, report it again at {link}: what you told us is filled in, "
                "and it goes straight back into the queue.\n")
    return f"\n{opening}, report it again and mention ticket #{ticket.id}.\n"


def ticket_resolved(ticket: Ticket, note: str, now: datetime) -> int:
    body = f"Your ticket \"{ticket.title}\" was marked resolved at {local_time(now, ticket.organisation.timezone)}.\n"
    if note:
        body += f"\nNote: {note}\n"
    return _send(ticket, f"Resolved: {ticket.title}", body + _report_again(ticket, "If the problem is not solved"),
                 KIND_RESOLVED, now)


# --- the contract ----------------------------------------------------------------------------------
# Written by services.billing in the transaction that changes the contract's status, once per change
# of status: a redelivered or older Stripe event changes no status, so it writes no email.


def _open_tickets(organisation_id: int) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Ticket)
        .where(Ticket.organisation_id == organisation_id, Ticket.status.in_(TicketStatus.OPEN))
    ) or 0


def _tickets_words(count: int) -> str:
    if count == 0:
        return "You have no open tickets right now."
    return f"You have {count} open ticket{'s' if count != 1 else ''} right now."


def _send_to_admins(contract: Contract, subject: str, body: str, kind: str, now: datetime) -> int:
    addresses = client_admins(contract.organisation_id)
    for address in addresses:
        outbox.enqueue(address, subject, body, kind, now)
    return len(addresses)


def contract_suspended(contract: Contract, now: datetime) -> int:
    """Stripe stopped collecting (unpaid) or paused the subscription: the client is served as break/fix
    until the open invoice is paid, and the admins who can pay it must hear of it."""
    plan = contract.plan.name
    billing = absolute_link("billing.overview")
    body = (
        f"Your {plan} contract is suspended: Stripe could not collect its payment.\n\n"
        "From now on your open tickets, and any new ticket you report, are served as break/fix: "
        "after our contract clients, with no guaranteed response time.\n"
        f"{_tickets_words(_open_tickets(contract.organisation_id))}\n\n"
        f"Pay the open invoice from your billing page: {billing}\n"
        f"Your {plan} contract is active again as soon as Stripe confirms the payment, "
        "and your tickets are then served under it again.\n"
    )
    return _send_to_admins(contract, f"Your {plan} contract is suspended: payment not received", body,
                           KIND_CONTRACT_SUSPENDED, now)


def contract_active_again(contract: Contract, now: datetime) -> int:
    """The suspension is over: the contract serves the client's tickets again."""
    plan = contract.plan.name
    how = ("Stripe confirmed the payment" if contract.status == ContractStatus.ACTIVE
           else "Stripe is collecting again (a payment is still being retried)")
    body = (
        f"{how}: your {plan} contract is active again.\n"
        f"Your open tickets, and any new ticket you report, are served under {plan} again, "
        "with its guaranteed response times.\n"
    )
    return _send_to_admins(contract, f"Your {plan} contract is active again", body, KIND_CONTRACT_RESUMED, now)


def contract_ended(contract: Contract, now: datetime) -> int:
    """The contract ended (the subscription was cancelled or Stripe deleted it): what the client's
    tickets get from now on, and where to sign up again."""
    plan = contract.plan.name
    count = _open_tickets(contract.organisation_id)
    if count:
        tickets = (f"Your {count} open ticket{'s stay' if count != 1 else ' stays'} open and will still be worked on, "
                   "now as break/fix: after our contract clients, with no guaranteed response time. "
                   "The same goes for any new ticket you report.\n")
    else:
        tickets = ("Any ticket you report from now on is served as break/fix: after our contract clients, "
                   "with no guaranteed response time.\n")
    body = (
        f"Your {plan} contract ended on {firm_date(contract.ends_at or now)}.\n\n"
        f"{tickets}\n"
        f"To sign up for a plan again: {absolute_link('public.plans')}\n"
    )
    return _send_to_admins(contract, f"Your {plan} contract has ended", body, KIND_CONTRACT_ENDED, now)
