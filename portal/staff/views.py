"""The firm's side: the dispatch board, ticket detail, the technician's jobs, organisations.

Views parse and render; every ticket change goes through `services.tickets`, which re-runs
the engines and logs the change. Technicians read; dispatchers and owners act.
"""
from __future__ import annotations

import os
from datetime import timedelta
from typing import Optional

from flask import (Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request,
                   send_from_directory, url_for)
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from .. import clock
from ..auth import roles_required
from ..client.presenting import outlook_words
from ..extensions import db
from ..models import Attachment, Comment, Organisation, QueueEntry, Role, Technician, Ticket, TicketStatus
from ..services import account_log, contracts, settings, tickets as ticket_service
from ..services import queue as queue_service
from ..services import sla as sla_service
from ..services import staff as staff_service
from ..services.text import whole_number
from ..services.ticket_status import sla_outlook
from . import rota, weights
from .board import SLA_LABELS, SLA_STATES, Filters, board_tag, compare_quotes, load_board, my_jobs as load_my_jobs, plan_choices
from .forms import (AssignForm, BoardFilterForm, ClearOverrideForm, CloseForm, CommentForm, DetailsForm,
                    OverrideForm, PromisePeriodForm, StatusForm, WhatIfForm)

bp = Blueprint("staff", __name__, url_prefix="/staff")

staff_only = roles_required(*Role.STAFF)
dispatch_roles = roles_required(Role.DISPATCHER, Role.OWNER)

rota.register(bp)
weights.register(bp)


def _can_dispatch() -> bool:
    return current_user.role in (Role.DISPATCHER, Role.OWNER)


def _filters(form: BoardFilterForm, plan_slugs: set[str]) -> Filters:
    states = dict(SLA_STATES)
    return Filters(
        plan=form.plan.data if form.plan.data in plan_slugs else "",
        state=form.state.data if form.state.data in states else "",
        technician=whole_number(form.technician.data),
        at_risk=bool(form.at_risk.data),
    )


@bp.route("/")
@staff_only
def queue():
    form = BoardFilterForm(request.args)
    techs = staff_service.technicians()
    plans = plan_choices()
    form.plan.choices = [SelectChoice("", "All plans")] + [SelectChoice(v, label) for v, label in plans]
    form.state.choices = [SelectChoice("", "Any state")] + [SelectChoice(v, label) for v, label in SLA_STATES]
    form.technician.choices = [SelectChoice("", "Anyone")] + [SelectChoice(str(t.id), t.name) for t in techs]
    tag = board_tag()  # read before the board: a change landing meanwhile shows as a change
    board = load_board(_filters(form, {v for v, _ in plans}))
    return render_template(
        "staff/board.html",
        board=board,
        board_tag=tag,
        form=form,
        can_dispatch=_can_dispatch(),
        sla_labels=SLA_LABELS,
        computed_at=_computed_at(),
    )


@bp.route("/board/tag.json")
@staff_only
def board_changes():
    """What the open board polls: its fingerprint, 304 while unchanged."""
    tag = board_tag()
    if request.if_none_match.contains(tag):
        response = current_app.response_class(status=304)
    else:
        response = jsonify({"tag": tag})
    response.set_etag(tag)
    response.headers["Cache-Control"] = "no-cache, private"
    return response


def _computed_at():
    return db.session.scalars(select(QueueEntry.computed_at).order_by(QueueEntry.computed_at.desc())).first()


def _ticket_or_404(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        abort(404)
    return ticket


def _assign_form(ticket: Ticket, formdata=None) -> AssignForm:
    form = AssignForm(formdata=formdata, prefix="assign")
    away = staff_service.off_now(clock.now())

    def label(tech: Technician) -> str:
        if not tech.active:
            return f"{tech.name} (inactive)"
        if tech.id in away:
            return f"{tech.name} (away until {settings.firm_clock(away[tech.id])})"
        return tech.name

    form.technician_id.choices = [SelectChoice(0, "— nobody (let the engine choose) —")] + [
        SelectChoice(t.id, label(t)) for t in staff_service.technicians() if t.active or t.id == ticket.technician_id
    ]
    if formdata is None:
        form.technician_id.data = ticket.technician_id or 0
        form.version.data = str(ticket.version)
    return form


ENDINGS = ((TicketStatus.RESOLVED, "Resolved: the problem is fixed"),
           (TicketStatus.CLOSED, "Closed without work: a duplicate, or nothing to do"))


def _close_form(ticket: Ticket, formdata=None) -> CloseForm:
    """Only the endings the ticket can reach from where it is (work under way can be resolved, not closed).
    A form sent to a ticket already ended is a repeat: either ending is read, and the service answers."""
    form = CloseForm(formdata=formdata, prefix="close")
    form.status.choices = [SelectChoice(status, label) for status, label in ENDINGS
                           if status in ticket_service.TRANSITIONS[ticket.status]
                           or (formdata is not None and not ticket.is_open)]
    if formdata is None:
        form.version.data = str(ticket.version)
    return form


def _action_forms(ticket: Ticket) -> dict:
    override = OverrideForm(formdata=None, prefix="override", version=str(ticket.version))
    entry = db.session.get(QueueEntry, ticket.id)
    if ticket.override_position:
        override.position.data = ticket.override_position
    elif entry is not None and entry.position:
        override.position.data = entry.position
    details = DetailsForm(formdata=None, prefix="details", version=str(ticket.version),
                          onsite_needed=ticket.onsite_needed, effort_minutes=ticket.effort_minutes,
                          required_skill=ticket.required_skill or "")
    return {
        "override_form": override,
        "clear_form": ClearOverrideForm(formdata=None, prefix="clear", version=str(ticket.version)),
        "assign_form": _assign_form(ticket),
        "details_form": details,
        "close_form": _close_form(ticket),
    }


def _plan_of(ticket: Ticket):
    """The plan the ticket's clock runs under, else the organisation's plan in force (None = break/fix)."""
    if ticket.sla_plan is not None:
        return ticket.sla_plan
    contract = contracts.current_contract(ticket.organisation_id)
    return contract.plan if contract is not None else None


def _render_ticket(ticket: Ticket, status: int = 200, **forms):
    context = _action_forms(ticket) if _can_dispatch() else {}
    for form in forms.values():
        if getattr(form, "stale", False):
            # Keep what was typed, but against the version now saved: a second submit is deliberate.
            form.version.data = str(ticket.version)
    context.update(forms)
    context.setdefault("comment_form", CommentForm(formdata=None))
    # The action forms are drawn only for an open ticket: one closed meanwhile would hide the refusal.
    refused = [form for form in forms.values() if form.errors or form.form_errors]
    context["refused_closed"] = bool(refused) and not ticket.is_open
    entry = db.session.get(QueueEntry, ticket.id)
    outlook = sla_outlook(ticket, entry)
    return render_template(
        "staff/ticket.html",
        ticket=ticket,
        entry=entry,
        sla_state=outlook.state,
        forecast=outlook_words(outlook),
        plan=_plan_of(ticket),
        comments=db.session.scalars(select(Comment).where(Comment.ticket_id == ticket.id).order_by(Comment.id)).all(),
        attachments=db.session.scalars(
            select(Attachment).where(Attachment.ticket_id == ticket.id).order_by(Attachment.id)).all(),
        can_dispatch=_can_dispatch(),
        sla_labels=SLA_LABELS,
        **context,
    ), status


@bp.route("/tickets/<int:ticket_id>")
@staff_only
def ticket(ticket_id: int):
    return _render_ticket(_ticket_or_404(ticket_id))


@bp.route("/tickets/<int:ticket_id>/comments", methods=["POST"])
@staff_only
def comment(ticket_id: int):
    """Any staff member may answer the client on the ticket's timeline."""
    ticket = _ticket_or_404(ticket_id)
    form = CommentForm()
    if form.validate_on_submit():
        try:
            ticket_service.add_comment(ticket.id, current_user, form.body.data, clock.now())
        except ticket_service.TicketError as error:
            db.session.rollback()
            form.body.errors = list(form.body.errors) + [error.message]
        else:
            flash("Reply added to the ticket's timeline.", "success")
            return redirect(url_for("staff.ticket", ticket_id=ticket.id), 303)
    return _render_ticket(_ticket_or_404(ticket_id), 400, comment_form=form)


@bp.route("/tickets/<int:ticket_id>/attachments/<int:attachment_id>")
@staff_only
def download_attachment(ticket_id: int, attachment_id: int):
    """The client's file, always as a download (never rendered inline in the staff's browser)."""
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or attachment.ticket_id != ticket_id:
        abort(404)
    folder = current_app.config["UPLOAD_FOLDER"]
    if not os.path.isfile(os.path.join(folder, attachment.storage_name)):
        abort(404)
    response = send_from_directory(folder, attachment.storage_name, as_attachment=True,
                                   download_name=attachment.filename, mimetype=attachment.content_type, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/promises")
@dispatch_roles
def promises():
    """Guaranteed deadlines kept: in all, per plan, per client, and each one missed (dispatchers and owner)."""
    form = PromisePeriodForm(request.args)
    status = 200
    if request.args and not form.validate():
        form.days.errors = ["Choose one of the periods listed."]
        status = 400
    days = form.days.data if status == 200 else form.days.default
    now = clock.now()
    return render_template("staff/promises.html", form=form, days=days,
                           report=sla_service.promise_report(now - timedelta(days=days), now)), status


@bp.route("/organisations")
@staff_only
def organisations():
    rows = db.session.scalars(select(Organisation).order_by(Organisation.name)).all()
    return render_template(
        "staff/organisations.html",
        organisations=[(org, contracts.current_contract(org.id), contracts.suspended_contract(org.id)) for org in rows],
    )


@bp.route("/organisations/<int:organisation_id>")
@staff_only
def organisation(organisation_id: int):
    org = db.session.get(Organisation, organisation_id)
    if org is None:
        abort(404)
    return render_template("staff/organisation.html", organisation=org, contract=contracts.current_contract(org.id),
                           suspended=contracts.suspended_contract(org.id),
                           activity=account_log.recent(org.id))


# --- ticket actions (dispatcher and owner) ----------------------------------------------------


def _version(form) -> Optional[int]:
    return whole_number(form.version.data)


def _valid(form) -> bool:
    """The form validates and carries the ticket version it was drawn with (a page without one is out of date)."""
    ok = form.validate_on_submit()
    if form.is_submitted() and (form.version.errors or (ok and _version(form) is None)):
        form.version.errors = []
        form.form_errors.append(STALE_MESSAGE)
        form.stale = True
        return False
    return ok


STALE_MESSAGE = "This ticket was changed by someone else while you were looking: nothing was saved. Check the new state and try again."


@bp.route("/tickets/<int:ticket_id>/override", methods=["POST"])
@dispatch_roles
def override(ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    form = OverrideForm(prefix="override")
    if _valid(form):
        reason = form.reason.data.strip()
        outcome = staff_service.override(ticket.id, form.position.data, reason, _version(form), current_user,
                                          clock.now())
        if outcome.stale and _already(ticket.id, lambda t: (t.override_position, t.override_reason)
                                      == (form.position.data, reason)):
            outcome = staff_service.Outcome(True)  # a double submit: the first one pinned it
        if outcome.ok:
            entry = db.session.get(QueueEntry, ticket.id, populate_existing=True)
            message = f"#{ticket.id} pinned at place {form.position.data} of the triage order; the reason is logged."
            if entry is not None and entry.position is not None and entry.position != form.position.data:
                # Places are the order of expected starts: a free specialist may start another ticket sooner.
                message += (f" Its place in line is {entry.position}, because technicians free up in a"
                            " different order (see the estimates).")
            flash(message, "success")
            return redirect(url_for("staff.ticket", ticket_id=ticket.id))
        _refuse(form, outcome, "position")
    return _render_ticket(_ticket_or_404(ticket_id), _status_for(form), override_form=form)


@bp.route("/tickets/<int:ticket_id>/override/clear", methods=["POST"])
@dispatch_roles
def clear_override(ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    form = ClearOverrideForm(prefix="clear")
    if _valid(form):
        outcome = staff_service.override(ticket.id, None, form.reason.data.strip(), _version(form),
                                          current_user, clock.now())
        if outcome.stale and _already(ticket.id, lambda t: t.override_position is None):
            outcome = staff_service.Outcome(True)  # a double submit: the first one lifted it
        if outcome.ok:
            flash(f"#{ticket.id} is back in the engine's order.", "success")
            return redirect(url_for("staff.ticket", ticket_id=ticket.id))
        _refuse(form, outcome, "reason")
    return _render_ticket(_ticket_or_404(ticket_id), _status_for(form), clear_form=form)


@bp.route("/tickets/<int:ticket_id>/assign", methods=["POST"])
@dispatch_roles
def assign(ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    form = _assign_form(ticket, formdata=request.form)
    if _valid(form):
        chosen = form.technician_id.data or None
        outcome = staff_service.assign(ticket.id, chosen, _version(form), current_user, clock.now())
        if outcome.stale and _already(ticket.id, lambda t: t.technician_id == chosen):
            outcome = staff_service.Outcome(True)  # a double submit (or Back and Assign again): the first one saved it
        if outcome.ok:
            flash(f"#{ticket.id}: technician saved.", "success")
            if outcome.message:
                flash(outcome.message, "info")
            return redirect(url_for("staff.ticket", ticket_id=ticket.id))
        _refuse(form, outcome, "technician_id")
    return _render_ticket(_ticket_or_404(ticket_id), _status_for(form), assign_form=form)


@bp.route("/tickets/<int:ticket_id>/details", methods=["POST"])
@dispatch_roles
def details(ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    form = DetailsForm(prefix="details")
    if _valid(form):
        wanted = (bool(form.onsite_needed.data), form.effort_minutes.data,
                  (form.required_skill.data or "").strip().lower() or None)
        outcome = staff_service.set_details(ticket.id, *wanted, _version(form), current_user, clock.now())
        if outcome.stale and _already(ticket.id, lambda t: (t.onsite_needed, t.effort_minutes, t.required_skill)
                                      == wanted):
            outcome = staff_service.Outcome(True)  # a double submit: the first one saved it
        if outcome.ok:
            flash(f"#{ticket.id}: estimate saved and the queue re-run.", "success")
            return redirect(url_for("staff.ticket", ticket_id=ticket.id))
        _refuse(form, outcome, "effort_minutes")
    return _render_ticket(_ticket_or_404(ticket_id), _status_for(form), details_form=form)


@bp.route("/tickets/<int:ticket_id>/close", methods=["POST"])
@dispatch_roles
def close(ticket_id: int):
    """A dispatcher resolves a ticket or closes a duplicate, with the words the client reads."""
    ticket = _ticket_or_404(ticket_id)
    form = _close_form(ticket, formdata=request.form)
    if _valid(form):
        outcome = staff_service.end_ticket(ticket.id, form.status.data, form.note.data, _version(form),
                                           current_user, clock.now())
        db.session.rollback()
        saved = db.session.get(Ticket, ticket.id, populate_existing=True)
        if outcome.ok:
            flash(f"#{ticket.id} is {TicketStatus.STAFF_LABELS[saved.status].lower()}: the client is told.", "success")
            return redirect(url_for("staff.ticket", ticket_id=ticket.id))
        if outcome.already:
            ended = TicketStatus.STAFF_LABELS[outcome.already].lower()
            if outcome.already == form.status.data:  # sent twice, by one click or two dispatchers: the first ended it
                flash(f"#{ticket.id} is already {ended}: your submit went through, and nothing more was changed "
                      "or sent.", "success")
            else:
                flash(f"#{ticket.id} was already {ended}, not {TicketStatus.STAFF_LABELS[form.status.data].lower()}: "
                      "it stays so, and nothing was changed or sent.", "info")
            return redirect(url_for("staff.ticket", ticket_id=ticket.id), code=303)
        now_label = TicketStatus.STAFF_LABELS.get(saved.status, saved.status)
        _refuse(form, outcome, "status")
        if outcome.stale:  # reopened, or moved on, since the page was drawn: say where it is now
            form.form_errors.append(f"It is '{now_label}' now.")
    return _render_ticket(_ticket_or_404(ticket_id), _status_for(form), close_form=form)


def _already(ticket_id: int, done) -> bool:
    """Whether the ticket, as saved now, is already as a refused stale form asked (Back, or a second click)."""
    db.session.rollback()
    ticket = db.session.get(Ticket, ticket_id, populate_existing=True)
    return ticket is not None and ticket.is_open and bool(done(ticket))


def _refuse(form, outcome, default_field: str) -> None:
    db.session.rollback()
    if outcome.stale:
        form.form_errors.append(STALE_MESSAGE)
    else:
        field = outcome.field if outcome.field and outcome.field in form else default_field
        form[field].errors = list(form[field].errors) + [outcome.message]
    form.stale = outcome.stale


def _status_for(form) -> int:
    if getattr(form, "stale", False):
        return 409
    return 400


# --- the technician's phone view --------------------------------------------------------------

TAPS = (
    (TicketStatus.EN_ROUTE, "En route"),
    (TicketStatus.ON_SITE, "On site"),
    (TicketStatus.IN_PROGRESS, "Working remotely"),
    (TicketStatus.WAITING_ON_CLIENT, "Waiting on client"),
    (TicketStatus.RESOLVED, "Resolved"),
)
TAP_LABELS = dict(TAPS)


@bp.route("/my-jobs")
@staff_only
def my_jobs():
    return _my_jobs_page()


def _my_jobs_page(kept: Optional[StatusForm] = None, ticket: Optional[Ticket] = None, status: int = 200):
    """The phone view; a refused tap comes back with its form as typed (the resolution note is kept),
    set to the ticket's version now saved, so that tapping again is a deliberate choice."""
    tech = staff_service.technician_for_user(current_user)
    jobs = load_my_jobs(tech) if tech is not None else []
    forms = {row.ticket.id: StatusForm(formdata=None, prefix=f"t{row.ticket.id}", version=str(row.ticket.version))
             for row in jobs}
    if kept is not None and ticket is not None and ticket.id in forms:
        kept.version.data = str(ticket.version)
        forms[ticket.id] = kept
    offered = {row.ticket.id: [(value, label) for value, label in TAPS
                               if value in ticket_service.allowed_statuses(row.ticket)] for row in jobs}
    return render_template("staff/my_jobs.html", tech=tech, jobs=jobs, forms=forms, offered=offered,
                           sla_labels=SLA_LABELS), status


@bp.route("/my-jobs/<int:ticket_id>/status", methods=["POST"])
@staff_only
def tap_status(ticket_id: int):
    ticket = _ticket_or_404(ticket_id)
    tech = staff_service.technician_for_user(current_user)
    entry = db.session.get(QueueEntry, ticket.id)
    expected = ticket.technician_id is None and entry is not None and entry.technician_id is not None
    mine = tech is not None and (ticket.technician_id == tech.id or (expected and entry.technician_id == tech.id))
    form = StatusForm(prefix=f"t{ticket.id}")
    if not (mine or _can_dispatch()):
        if tech is None:
            abort(403)
        # A phone page drawn before the job went to someone else (a dispatcher's reassignment, or the
        # engine now expecting another technician): say so and show the list as it is now.
        flash(f"#{ticket.id} is no longer on your list ({_now_with(ticket, entry)}): your tap changed nothing.",
              "error")
        return _my_jobs_page(None, None, 409)
    if not form.validate_on_submit() or _version(form) is None or form.status.data not in TAP_LABELS:
        flash(f"#{ticket.id}: " + (f"resolution note: {form.note.errors[0]} Nothing changed."
                                   if form.note.errors else "that tap was not understood; nothing changed."), "error")
        return _my_jobs_page(form, ticket, 400)
    note = (form.note.data or "").strip()
    if form.status.data == TicketStatus.RESOLVED and not note:
        flash(f"#{ticket.id}: write a short note on what fixed it before marking it resolved.", "error")
        return _my_jobs_page(form, ticket, 400)
    outcome = staff_service.change_status(ticket.id, form.status.data, note, _version(form), current_user,
                                           clock.now())
    if not outcome.ok:
        db.session.rollback()
        ticket = _ticket_or_404(ticket_id)
        if outcome.stale and ticket.status == form.status.data:
            # A double tap (or Back and tap again): the first one went through, so nothing is wrong.
            flash(f"#{ticket.id} is already marked '{TAP_LABELS[ticket.status]}': your tap went through.", "success")
            return redirect(url_for("staff.my_jobs"), code=303)
        flash(f"#{ticket.id}: " + (STALE_MESSAGE if outcome.stale else outcome.message), "error")
        return _my_jobs_page(form, ticket, 409)
    flash(f"#{ticket.id}: {TAP_LABELS[form.status.data].lower()}. The client's page is updated.", "success")
    return redirect(url_for("staff.my_jobs"), code=303)


def _now_with(ticket: Ticket, entry: Optional[QueueEntry]) -> str:
    if not ticket.is_open:
        return f"it is {TicketStatus.STAFF_LABELS[ticket.status].lower()}"
    if ticket.technician is not None:
        return f"it is with {ticket.technician.name} now"
    if entry is not None and entry.technician is not None:
        return f"the dispatch plan now expects {entry.technician.name} to take it"
    return "it waits for the dispatch plan to choose a technician"


# --- planning: what if ... (nothing is saved) --------------------------------------------------


@bp.route("/what-if")
@dispatch_roles
def what_if():
    """Preview the queue with one more technician on shift, or one ticket moved, without saving it."""
    waiting = load_board(Filters()).waiting
    form = WhatIfForm(request.args)
    form.ticket_id.choices = [SelectChoice(r.ticket.id, f"#{r.ticket.id} {r.ticket.title} (place {r.entry.position})")
                              for r in waiting]
    rows = None
    status = 200
    if request.args and form.validate():
        if form.scenario.data == "move" and not form.move_to.data:
            form.move_to.errors = list(form.move_to.errors) + ["Give the place to try (1 = next)."]
            status = 400
        else:
            move_to = form.move_to.data if form.scenario.data == "move" else None
            quotes = queue_service.quote(form.ticket_id.data, clock.now(),
                                         extra_technician=form.scenario.data == "extra_technician", move_to=move_to)
            rows = compare_quotes(quotes)
    elif request.args:
        status = 400
    forecasts = {row.ticket.id: outlook_words(row.after_outlook) for row in rows or ()}
    return render_template("staff/what_if.html", form=form, rows=rows, has_waiting=bool(waiting),
                           forecasts=forecasts, sla_labels=SLA_LABELS), status
