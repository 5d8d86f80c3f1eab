"""Plain-words phrases for a ticket's status, shared by the page and its live updates.

Why server-side: the live script only copies these strings into the page, so the first render
and every update read exactly the same, and no wording lives in JavaScript.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Optional

from ..domain.sla import ARRIVAL, RESPONSE, Outlook, OwedOutlook
from ..models import TicketStatus
from ..services.ticket_status import TicketStatusView
from ..templating import local_time, ordinal

SLA_WORDS = {
    "on_track": "on track",
    "at_risk": "at risk of being missed",
    "met": "met",
    "breached": "missed",
    "best_effort": "best effort, not a guarantee",
}


def place_text(view: TicketStatusView) -> str:
    if view.status in TicketStatus.DONE:
        return TicketStatus.LABELS[view.status]
    if view.position is None:
        if view.status in TicketStatus.ACTIVE or view.status == TicketStatus.WAITING_ON_CLIENT:
            return view.status_label
        return "Being placed in the queue…"
    ahead = view.ahead or 0
    if ahead == 0:
        return f"{ordinal(view.position)} in line: you are next"
    return f"{ordinal(view.position)} in line: {ahead} ticket{'s' if ahead != 1 else ''} ahead of you"


def _when(value: Optional[datetime]) -> str:
    return local_time(value)


def eta_text(view: TicketStatusView) -> str:
    if view.status in TicketStatus.DONE:
        return "—"
    if view.status == TicketStatus.EN_ROUTE and view.eta_median is not None:
        what = "Technician on the way, expected on site"
    elif view.status in TicketStatus.ACTIVE:
        return view.status_label
    elif view.eta_median is None:
        return "No estimate yet" if view.status != TicketStatus.WAITING_ON_CLIENT else "Paused while we wait on you"
    else:
        what = "Technician expected on site" if view.eta_kind == "arrival" else "Remote work expected to start"
    text = f"{what} around {_when(view.eta_median)}"
    if view.eta_p90 is not None and _when(view.eta_p90) != _when(view.eta_median):
        text += f" (9 times out of 10 by {_when(view.eta_p90)})"
    if view.waits_for_coverage:
        text += ". Work starts when your plan's covered hours begin"
    if view.holidays_closed:
        text += f". {view.holidays_closed}"
    if view.waits_for_skill:
        text += ". Nobody with the skill this job needs is on duty now: this is when the first one starts"
    if view.client_deadline is not None and view.eta_median > view.client_deadline:
        text += f". Your own deadline, {_when(view.client_deadline)}, is likely to be missed"
    return text


def sla_text(view: TicketStatusView) -> str:
    if view.status in TicketStatus.DONE:
        return _done_sla_text(view)
    if view.sla_best_effort:
        if view.sla_due_at is None:
            return "Best effort: break/fix has no guaranteed time." + _missed_before(view)
        return f"Best effort, not a guarantee: we aim for {_when(view.sla_due_at)}." + _missed_before(view)
    if view.sla_due_at is None:
        return "No deadline set yet."
    state = SLA_WORDS.get(view.sla_state or "", "")
    outlook = outlook_words(view.sla_outlook)
    if view.sla_state == "at_risk" and outlook:
        # Which promise the plan expects to slip, and how badly: "at risk" alone would understate a
        # deadline half the time missed, and would not say it is the response beside the arrival.
        state = outlook
    if view.response_missed_due_at is not None:
        text = (f"Remote response was due by {_when(view.response_missed_due_at)} — missed; "
                f"technician on site due by {_when(view.sla_due_at)}")
        if outlook:
            text += f" — {outlook}"
    elif view.response_pending_due_at is not None:
        text = (f"Remote response due by {_when(view.response_pending_due_at)}, technician on site by "
                f"{_when(view.sla_due_at)}") + (f" — {state}" if state else "")
    else:
        text = f"Due by {_when(view.sla_due_at)}" + (f" — {state}" if state else "")
    if view.status == TicketStatus.WAITING_ON_CLIENT:
        # The due time keeps moving later while paused; say so, or it reads as a fixed deadline.
        text += " (clock paused while we wait on you)"
    return text


def _missed_before(view: TicketStatusView) -> str:
    """A promise missed under the contract before the ticket went best effort: best effort does not
    undo it, and the client's dashboard still counts it, so the page says so too."""
    if not view.missed_before_best_effort:
        return ""
    words = {"response": "the remote response", "arrival": "the technician's arrival"}
    missed = " and ".join(f"{words[which]} (due {_when(due)})" for which, due in view.missed_before_best_effort)
    return f" Under your contract, {missed} {'was' if len(view.missed_before_best_effort) == 1 else 'were'} missed."


def _done_sla_text(view: TicketStatusView) -> str:
    """A finished ticket's deadline in the past tense: "we aim for Fri 08:00" after the work is done
    read as work still to come."""
    if view.resolved_at is None:
        return "Best effort: break/fix has no guaranteed time." if view.sla_best_effort else view.status_label + "."
    when = _when(view.resolved_at)
    # A ticket our dispatcher closed without work (a duplicate) was not "resolved": its email says closed.
    ended = "Closed" if view.status == TicketStatus.CLOSED else "Resolved"
    if view.sla_best_effort:
        # Best effort is never judged met or missed; only an early finish is worth saying.
        if view.sla_due_at is not None and view.resolved_at <= view.sla_due_at:
            return (f"Best effort: {ended.lower()} {when}, before the time we aimed for ({_when(view.sla_due_at)})."
                    + _missed_before(view))
        return f"Best effort: {ended.lower()} {when}." + _missed_before(view)
    verdict = {"met": "was met", "breached": "was missed"}.get(view.sla_state or "")
    if view.sla_due_at is None or verdict is None:
        return f"{ended} {when}."
    return f"{ended} {when}; the deadline, {_when(view.sla_due_at)}, {verdict}."


_LIKELY = "likely to be missed"
_OUTLOOK_WORDS = {
    Outlook.ON_TRACK: "",
    Outlook.AT_RISK: SLA_WORDS["at_risk"],
    Outlook.LIKELY_MISSED: f"{_LIKELY}: the technician is expected after it",
}


def outlook_words(outlook: Optional[OwedOutlook], when: Callable[[Optional[datetime]], str] = _when) -> str:
    """The words for the promise the dispatch plan expects to slip (`ticket_status.sla_outlook`), for the
    status page and the emails alike; "" when every promise still owed is on track.

    A response judged beside an arrival is the remote response still owed on an on-site job: when it is
    the promise at risk, the words name it and when the technician is expected to set off (their first
    action is the response), or "on track" beside 07:25 would read as a promise kept by a technician
    leaving at 08:00."""
    worst = outlook.worst if outlook is not None else None
    if worst is None:
        return ""
    if worst.promise == RESPONSE and any(p.promise == ARRIVAL for p in outlook.promises):
        missed = _LIKELY if worst.outlook == Outlook.LIKELY_MISSED else SLA_WORDS["at_risk"]
        both = any(p.promise == ARRIVAL and p.outlook == worst.outlook for p in outlook.promises)
        which = "the remote response and the on-site arrival are" if both else "the remote response is"
        return f"{which} {missed}: the technician is expected to set off at {when(worst.expected)}"
    return _OUTLOOK_WORDS[worst.outlook]


def technician_text(view: TicketStatusView) -> str:
    if view.technician:
        return view.technician
    if view.likely_technician:
        return f"Not assigned yet (most likely {view.likely_technician})"
    return "Not assigned yet"


def display(view: TicketStatusView) -> dict[str, Any]:
    """The strings the status page shows; live.json carries them under `display`."""
    return {
        "status": view.status_label,
        "place": place_text(view),
        "eta": eta_text(view),
        "sla": sla_text(view),
        "sla_state": view.sla_state or "",
        "technician": technician_text(view),
        "reasons": list(view.reasons),
        "timeline": [{"at": local_time(item.at), "message": item.message} for item in view.timeline],
        "is_open": view.is_open,
        # What the live page says when the ticket is done under its eyes (resolved is not closed).
        "done_note": "" if view.is_open else f"This ticket is {view.status_label.lower()}; reload to see the final state.",
    }
