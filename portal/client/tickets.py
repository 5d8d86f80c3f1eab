"""The client's tickets: emergency intake, the live status page, comments, attachments, status buttons.

Views parse and render. Every change goes through `services.tickets` (which logs the event,
writes the emails and re-runs the engines); everything shown comes from the read model
`services.ticket_status`, scoped to the user's organisation: another organisation's ticket or
file answers 404, exactly as if it did not exist.
"""
from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any, Optional

from flask import (Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request,
                   send_from_directory, session, url_for)
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from werkzeug.routing import BuildError

from .. import clock
from ..auth import roles_required
from ..extensions import db
from ..models import Attachment, Comment, Role, Ticket, TicketStatus
from ..page_cache import cached_page
from ..services import attachments, ticket_status, tickets
from .forms import IMPACTS, AttachmentForm, CommentForm, StatusForm, TicketForm, new_idempotency_key
from .presenting import display

client_only = roles_required(*Role.CLIENT)
NOTICE_KEY = "opened_ticket_notice"
CLIENT_STATUSES = {TicketStatus.WAITING_ON_CLIENT, TicketStatus.RESOLVED, TicketStatus.NEW}
STATUS_DONE_MESSAGES = {
    TicketStatus.RESOLVED: "Marked as resolved. Thank you!",
    TicketStatus.WAITING_ON_CLIENT: "Noted: the ticket waits on you, and its deadline clock is paused.",
    TicketStatus.NEW: "Back in the queue: the deadline clock runs again.",
}
# The same button pressed twice (a double click, or a second tab): the first press did it.
STATUS_ALREADY_MESSAGES = {
    TicketStatus.RESOLVED: "This ticket is already marked as resolved.",
    TicketStatus.WAITING_ON_CLIENT: "This ticket already waits on you; its deadline clock is paused.",
    TicketStatus.NEW: "This ticket no longer waits on you: work on it goes on.",
}
RESUMED_MESSAGE = "Noted: the technician carries on where they stopped, and the deadline clock runs again."

def register(bp: Blueprint) -> None:
    bp.add_url_rule("/tickets/new", "new_ticket", new_ticket, methods=["GET", "POST"])
    bp.add_url_rule("/tickets/<int:ticket_id>", "ticket", ticket_page)
    bp.add_url_rule("/tickets/<int:ticket_id>/live.json", "ticket_live", ticket_live)
    bp.add_url_rule("/tickets/<int:ticket_id>/status", "ticket_status", change_status, methods=["POST"])
    bp.add_url_rule("/tickets/<int:ticket_id>/comments", "ticket_comment", add_comment, methods=["POST"])
    bp.add_url_rule("/tickets/<int:ticket_id>/attachments", "ticket_attach", add_attachment, methods=["POST"])
    bp.add_url_rule("/tickets/<int:ticket_id>/attachments/<int:attachment_id>", "ticket_attachment",
                    download_attachment)
    bp.register_error_handler(CSRFError, form_expired)


def form_expired(error: CSRFError):
    """A form sent from a page opened before the session changed: nothing is done, and what was typed
    into the emergency form or a comment comes back with a fresh token, to be sent again as it is.

    Why: the bare refusal page lost an emergency report typed before signing in again in another
    tab. The form's idempotency key comes back too, so sending it twice still files one ticket.
    """
    from .. import form_expired_page, form_expired_words

    if not (current_user.is_authenticated and current_user.is_client):
        return form_expired_page(error)
    words = form_expired_words(error.description)
    if request.endpoint == "client.new_ticket":
        return _new_ticket_page(TicketForm(), 400, expired=words + " Check what you typed below and press "
                                                                  "“File the ticket” again.")
    ticket = tickets.ticket_for_organisation(current_user.organisation_id, (request.view_args or {}).get("ticket_id", 0))
    if request.endpoint == "client.ticket_comment" and ticket is not None:
        form = CommentForm()
        form.body.errors = [words + " Your comment is below: press “Add comment” again."]
        return _page(ticket, status=400, comment_form=form)
    return form_expired_page(error)


def _own_ticket(ticket_id: int) -> Ticket:
    """The user's organisation's ticket, or 404 (never 403: another organisation's ticket does not exist here)."""
    ticket = tickets.ticket_for_organisation(current_user.organisation_id, ticket_id)
    if ticket is None:
        abort(404)
    return ticket


def upgrade_url(ticket_id: int) -> str:
    """The ticket's upgrade panel when billing offers one, else the plan comparison."""
    if "billing.upgrade_panel" in current_app.view_functions:
        try:
            return url_for("billing.upgrade_panel", ticket_id=ticket_id)
        except BuildError:
            pass
    return url_for("public.plans")


def _form_mapping(form: TicketForm) -> dict[str, Any]:
    """What the client typed, in the shape `parse_ticket_input` (shared with the API) expects."""
    # "No" wins over an amount typed before the answer changed (the field is only hidden, not cleared).
    revenue = (form.revenue_at_risk_per_hour.data or "").strip() if form.money_lost.data == "yes" else ""
    return {
        "title": form.title.data or "",
        "description": form.description.data or "",
        "category": form.category.data or "",
        "impact": form.impact.data or "",
        "revenue_at_risk_per_hour": revenue or "0",
        "client_deadline": (form.client_deadline.data or "").strip() or None,
        "onsite_needed": bool(form.onsite_needed.data),
        "safety_critical": bool(form.safety_critical.data),
        "follows_ticket_id": (form.follows_ticket_id.data or "").strip() or None,
    }


def _check_money_answer(form: TicketForm) -> Optional[str]:
    if form.money_lost.data != "yes":
        return None
    amount = (form.revenue_at_risk_per_hour.data or "").strip()
    if not amount or re.fullmatch(r"\$?\s*0*(\.0*)?", amount):
        return "You said money is being lost: say roughly how much an hour (a guess is fine)."
    return None


@client_only
def new_ticket():
    form = TicketForm()
    if request.method == "GET":
        form.idempotency_key.data = new_idempotency_key()
        if "follows" in request.args:
            followed = _followed_or_404(request.args["follows"])
            if followed.is_open:
                flash(f"Ticket #{followed.id} is still open: add a comment to it instead of reporting it again.",
                      "error")
                return redirect(url_for("client.ticket", ticket_id=followed.id))
            _report_again(form, followed)
        return _new_ticket_page(form)
    if not form.validate_on_submit():
        return _new_ticket_page(form, 400)
    if not form.idempotency_key.data or len(form.idempotency_key.data) > 64:
        form.idempotency_key.data = new_idempotency_key()
    problem = _check_money_answer(form)
    if problem:
        form.revenue_at_risk_per_hour.errors.append(problem)
        return _new_ticket_page(form, 400)
    organisation = current_user.organisation
    now = clock.now()
    try:
        data = tickets.parse_ticket_input(_form_mapping(form), organisation.timezone, now)
        opened = _file(organisation.id, data, now, form.idempotency_key.data)
    except tickets.TicketError as error:
        target = form._fields.get(error.field or "") or form.title
        target.errors = list(target.errors) + [error.message]
        return _new_ticket_page(form, 400)
    decision = opened.after_hours
    session[NOTICE_KEY] = {
        "ticket_id": opened.ticket.id,
        "created": opened.created,
        "page_on_call": bool(decision and decision.page_on_call),
        "covered_now": bool(decision and decision.covered_now),
        "next_business_at": decision.next_business_at.isoformat() if decision and decision.next_business_at else None,
        "message": decision.message if decision else "",
    }
    if not opened.created:
        flash("This ticket was already filed (the form was sent twice); here it is.", "success")
    return redirect(url_for("client.ticket", ticket_id=opened.ticket.id))


def _followed_or_404(raw: str) -> Ticket:
    number = tickets.ticket_number(raw)
    if number is None:
        abort(404)
    return _own_ticket(number)


def _report_again(form: TicketForm, followed: Ticket) -> None:
    """The new report starts from what the client told us the first time; only what is wrong now is new."""
    form.follows_ticket_id.data = str(followed.id)
    form.title.data = followed.title
    form.category.data = followed.category
    form.impact.data = followed.impact
    if followed.revenue_at_risk_per_hour:
        form.money_lost.data = "yes"
        form.revenue_at_risk_per_hour.data = f"{followed.revenue_at_risk_per_hour:,.2f}"
    form.onsite_needed.data = followed.onsite_needed
    form.safety_critical.data = followed.safety_critical


def _new_ticket_page(form: TicketForm, status: int = 200, expired: str = ""):
    """The form, with the ticket it reports again when there is one (read again after a refusal)."""
    number = tickets.ticket_number(form.follows_ticket_id.data)
    followed = tickets.ticket_for_organisation(current_user.organisation_id, number) if number else None
    return render_template("client/ticket_new.html", form=form, followed=followed, expired=expired), status


def _file(organisation_id: int, data: tickets.TicketInput, now: datetime, key: str) -> tickets.OpenedTicket:
    """The form's key sent with a different report: the client pressed Back and wrote a new emergency.

    It is filed under a key made from the form's key and the new report, so sending that report
    twice still opens it once.
    """
    try:
        return tickets.open_ticket(organisation_id, current_user.id, data, now, idempotency_key=key)
    except tickets.IdempotencyKeyReused:
        return tickets.open_ticket(organisation_id, current_user.id, data, now,
                                   idempotency_key=tickets.key_for_changed_request(key, data))


def _notice_for(ticket_id: int) -> Optional[dict[str, Any]]:
    notice = session.get(NOTICE_KEY)
    if not notice or notice.get("ticket_id") != ticket_id:
        return None
    session.pop(NOTICE_KEY, None)
    if notice.get("next_business_at"):
        notice["next_business_at"] = datetime.fromisoformat(notice["next_business_at"])
    return notice


def _page(ticket: Ticket, status: int = 200, comment_form: Optional[CommentForm] = None,
          attachment_form: Optional[AttachmentForm] = None):
    view = ticket_status.ticket_view(current_user.organisation_id, ticket.id, with_timeline=True)
    comments = db.session.scalars(
        select(Comment).where(Comment.ticket_id == ticket.id).order_by(Comment.created_at, Comment.id)).all()
    attachments = db.session.scalars(
        select(Attachment).where(Attachment.ticket_id == ticket.id).order_by(Attachment.id)).all()
    return render_template(
        "client/ticket.html",
        view=view,
        shown=display(view),
        ticket=ticket,
        queue_length=ticket_status.queue_length(),
        notice=_notice_for(ticket.id),
        upgrade_url=upgrade_url(ticket.id),
        offer_upgrade=ticket.status in TicketStatus.WAITING,  # in hand or waiting on the client: nothing to speed up
        comments=comments,
        attachments=attachments,
        comment_form=comment_form or CommentForm(formdata=None),
        attachment_form=attachment_form or AttachmentForm(formdata=None),
        status_form=StatusForm(formdata=None),
        impact_labels=dict(IMPACTS),
        max_upload_mb=tickets.megabytes(tickets.attachment_limit()),
    ), status


@cached_page
@client_only
def ticket_page(ticket_id: int):
    return _page(_own_ticket(ticket_id))


@cached_page
@client_only
def ticket_live(ticket_id: int):
    """The page's live data: the API body plus the page's phrases; unchanged answers 304 via the ETag.

    The ETag is the ticket's change tag (one small query), so an unchanged ticket answers 304
    before anything is loaded or presented.
    """
    tag = ticket_status.change_tag(current_user.organisation_id, ticket_id)
    if tag is None:
        abort(404)
    tag = f"live-{tag}"
    if request.if_none_match.contains(tag):
        return _not_modified(tag)
    ticket = _own_ticket(ticket_id)
    view = ticket_status.ticket_view(current_user.organisation_id, ticket.id, with_timeline=True)
    body = view.as_json()
    body["queue_length"] = ticket_status.queue_length()
    body["generation"] = view.generation
    body["display"] = display(view)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-cache, private"
    response.set_etag(tag)
    return response


def _not_modified(tag: str) -> Response:
    response = Response(status=304)
    response.headers["Cache-Control"] = "no-cache, private"
    response.set_etag(tag)
    return response


@client_only
def change_status(ticket_id: int):
    ticket = _own_ticket(ticket_id)
    form = StatusForm()
    if not form.validate_on_submit() or form.status.data not in CLIENT_STATUSES:
        flash(f"Note: {form.note.errors[0]} Nothing was changed." if form.note.errors
              else "That change is not available here.", "error")
        return redirect(url_for("client.ticket", ticket_id=ticket.id), 303)
    if tickets.already_in(ticket, form.status.data):
        flash(STATUS_ALREADY_MESSAGES[form.status.data], "info")
        return redirect(url_for("client.ticket", ticket_id=ticket.id), 303)
    if not ticket.is_open:
        flash(f"This ticket is already {TicketStatus.LABELS[ticket.status].lower()}.", "error")
        return redirect(url_for("client.ticket", ticket_id=ticket.id), 303)
    try:
        changed = tickets.set_status(ticket.id, form.status.data, current_user, clock.now(), note=form.note.data or "")
    except tickets.TicketError as error:
        flash(error.message, "error")
    else:
        flash(RESUMED_MESSAGE if changed.status in TicketStatus.ACTIVE else STATUS_DONE_MESSAGES[form.status.data],
              "success")
    return redirect(url_for("client.ticket", ticket_id=ticket.id), 303)


@client_only
def add_comment(ticket_id: int):
    ticket = _own_ticket(ticket_id)
    form = CommentForm()
    if not form.validate_on_submit():
        return _page(ticket, status=400, comment_form=form)
    try:
        tickets.add_comment(ticket.id, current_user, form.body.data, clock.now())
    except tickets.TicketError as error:
        form.body.errors = list(form.body.errors) + [error.message]
        return _page(ticket, status=400, comment_form=form)
    if ticket.is_open:
        flash("Comment added.", "success")
    else:
        # Nobody works a resolved ticket: "Comment added." alone let "still broken" go unread.
        flash(f"Comment added. The ticket stays {ticket.status_label.lower()}: if the problem is back, "
              "use “Report it again” on this page.", "info")
    return redirect(url_for("client.ticket", ticket_id=ticket.id), 303)


@client_only
def add_attachment(ticket_id: int):
    ticket = _own_ticket(ticket_id)
    form = AttachmentForm()
    if not form.validate_on_submit():
        return _page(ticket, status=400, attachment_form=form)
    try:
        attachments.inspect(form.file.data)
        tickets.add_attachment(ticket.id, current_user, form.file.data, clock.now())
    except tickets.TicketError as error:
        form.file.errors = list(form.file.errors) + [error.message]
        return _page(ticket, status=400, attachment_form=form)
    flash("File attached.", "success")
    return redirect(url_for("client.ticket", ticket_id=ticket.id), 303)


@client_only
def download_attachment(ticket_id: int, attachment_id: int):
    """Served only to the ticket's organisation, always as a download (never rendered inline)."""
    ticket = _own_ticket(ticket_id)
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or attachment.ticket_id != ticket.id:
        abort(404)
    folder = current_app.config["UPLOAD_FOLDER"]
    if not os.path.isfile(os.path.join(folder, attachment.storage_name)):
        abort(404)
    response = send_from_directory(folder, attachment.storage_name, as_attachment=True,
                                   download_name=attachment.filename, mimetype=attachment.content_type,
                                   max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
