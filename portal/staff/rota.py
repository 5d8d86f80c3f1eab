"""Staff pages for technicians, weekly shifts, the on-call rota and plans (dispatcher and owner).

Registered on the staff blueprint by views.py; kept apart so the dispatch views stay short.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from wtforms.fields.choices import SelectChoice
from flask import abort, flash, redirect, render_template, request, url_for

from .. import clock
from ..auth import roles_required
from ..domain.calendar import local_instant
from ..extensions import db
from flask_login import current_user
from ..models import OnCallPeriod, Plan, Role, Shift, Technician, TimeOff
from ..services import settings, staff as staff_service
from ..services.staff import WEEKDAYS, PlanData, StaffError, TechnicianData
from .forms import DeleteForm, OnCallForm, PlanForm, ShiftForm, TechnicianEditForm, TechnicianForm, TimeOffForm

dispatch_roles = roles_required(Role.DISPATCHER, Role.OWNER)
owner_only = roles_required(Role.OWNER)


def _attach(form, error: StaffError, default: str) -> None:
    """Show a service refusal next to its field (or the form's first field)."""
    name = error.field if error.field and error.field in form else default
    form[name].errors = list(form[name].errors) + [str(error)]


def _firm_instant(field) -> datetime:
    """The firm-local date and time typed in `field`; a time the clocks skip is refused on that field."""
    try:
        return local_instant(field.data, settings.firm_timezone())
    except ValueError as error:
        raise StaffError(f"{error}: choose another time.", field.short_name) from None


def _deactivation_notes(name: str, saved: staff_service.TechnicianSaved) -> list[str]:
    def count(n: int, word: str) -> str:
        return f"{n} {word}{'s' if n != 1 else ''}"

    notes = []
    if saved.on_call_released:
        notes.append(f"{name} is off the on-call rota: {count(saved.on_call_released, 'period')} removed or ended "
                     "now. Check the on-call rota for gaps.")
    if saved.tickets_returned:
        notes.append(f"{count(saved.tickets_returned, 'ticket')} assigned to {name} went back to the queue for "
                     "another technician.")
    if saved.jobs_in_hand:
        notes.append(f"{name} still has {count(saved.jobs_in_hand, 'job')} in hand: reassign "
                     f"{'them' if saved.jobs_in_hand != 1 else 'it'} from the board.")
    return notes


def _time_off_notes(name: str, added: staff_service.TimeOffAdded) -> list[tuple[str, str]]:
    period = added.period
    notes = [(f"{name} is off from {settings.firm_clock(period.starts_at)} to {settings.firm_clock(period.ends_at)} "
              "(firm time): no job is planned for them then.", "success")]
    if added.tickets_returned:
        count = added.tickets_returned
        notes.append((f"{count} ticket{'s' if count != 1 else ''} assigned to {name} went back to the queue for "
                      "another technician.", "info"))
    if added.jobs_in_hand:
        numbers = ", ".join(f"#{number}" for number in added.jobs_in_hand)
        notes.append((f"{name} still has {numbers} in hand: reassign from the board, or it waits for them.", "error"))
    return notes


def _technician_data(form) -> TechnicianData:
    return TechnicianData(
        skills=staff_service.parse_skills(form.skills.data or ""),
        home_zone=form.home_zone.data,
        home_latitude=form.home_latitude.data,
        home_longitude=form.home_longitude.data,
        active=bool(form.active.data),
    )


def register(bp) -> None:
    @bp.route("/technicians", methods=["GET", "POST"])
    @dispatch_roles
    def technicians():
        form = TechnicianForm()
        form.user_id.choices = [SelectChoice(0, "— create a new technician account —")] + [
            SelectChoice(u.id, f"{u.full_name or u.email} ({Role.LABELS[u.role]})")
            for u in staff_service.staff_users_without_technician()
        ]
        status = 200
        if form.validate_on_submit():
            try:
                tech = staff_service.create_technician(
                    _technician_data(form),
                    clock.now(),
                    user_id=form.user_id.data or None,
                    email=form.email.data,
                    full_name=form.full_name.data,
                )
            except StaffError as error:
                db.session.rollback()
                _attach(form, error, "email")
                status = 400
            else:
                flash(f"{tech.name} is now a technician. Add the weekly shifts below.", "success")
                return redirect(url_for("staff.technician", technician_id=tech.id))
        elif form.is_submitted():
            status = 400
        return render_template(
            "staff/technicians.html", form=form, technicians=staff_service.technicians(), weekdays=WEEKDAYS,
            away=staff_service.off_now(clock.now()),
        ), status

    @bp.route("/technicians/<int:technician_id>", methods=["GET", "POST"])
    @dispatch_roles
    def technician(technician_id: int):
        tech = db.session.get(Technician, technician_id)
        if tech is None:
            abort(404)
        form = TechnicianEditForm(obj=None if request.method == "POST" else tech)
        if request.method == "GET":
            form.skills.data = ", ".join(tech.skills or [])
        shift_form = ShiftForm(prefix="shift")
        status = 200
        if form.validate_on_submit():
            try:
                saved = staff_service.update_technician(tech.id, _technician_data(form), clock.now())
            except StaffError as error:
                db.session.rollback()
                _attach(form, error, "skills")
                status = 400
            else:
                flash(f"Saved {tech.name}.", "success")
                for message in _deactivation_notes(tech.name, saved):
                    flash(message, "info")
                return redirect(url_for("staff.technician", technician_id=tech.id))
        elif form.is_submitted():
            status = 400
        return _technician_page(tech, form, shift_form, status)

    def _technician_page(tech: Technician, form, shift_form, status: int, time_off_form=None):
        now = clock.now()
        return render_template(
            "staff/technician.html", tech=tech, form=form, shift_form=shift_form, delete_form=DeleteForm(),
            weekdays=WEEKDAYS, time_off=staff_service.time_off_ahead(tech.id, now), now=now,
            time_off_form=time_off_form or TimeOffForm(prefix="off", formdata=None),
        ), status

    @bp.route("/technicians/<int:technician_id>/shifts", methods=["POST"])
    @dispatch_roles
    def add_shift(technician_id: int):
        tech = db.session.get(Technician, technician_id)
        if tech is None:
            abort(404)
        shift_form = ShiftForm(prefix="shift")
        if shift_form.validate_on_submit():
            try:
                staff_service.add_shift(tech.id, shift_form.weekday.data, shift_form.starts.data,
                                        shift_form.ends.data, clock.now())
            except StaffError as error:
                db.session.rollback()
                _attach(shift_form, error, "starts")
            else:
                flash(f"Added the {WEEKDAYS[shift_form.weekday.data]} shift.", "success")
                return redirect(url_for("staff.technician", technician_id=tech.id))
        return _technician_page(tech, _edit_form(tech), shift_form, 400)

    def _edit_form(tech: Technician) -> TechnicianEditForm:
        form = TechnicianEditForm(formdata=None, obj=tech)
        form.skills.data = ", ".join(tech.skills or [])
        return form

    @bp.route("/technicians/<int:technician_id>/shifts/<int:shift_id>/delete", methods=["POST"])
    @dispatch_roles
    def delete_shift(technician_id: int, shift_id: int):
        return _remove(technician_id, db.session.get(Shift, shift_id) is not None, "shift",
                       lambda: staff_service.delete_shift(technician_id, shift_id, clock.now()),
                       lambda tech: "Shift removed.")

    def _remove(technician_id: int, listed: bool, what: str, remove, done):
        """Remove a row of the technician's page; a second click (or Back and Remove) is told it was already
        removed, in words, instead of a bare Not found. `remove` may return a warning for the dispatcher."""
        if not DeleteForm().validate_on_submit():
            abort(400)
        tech = db.session.get(Technician, technician_id)
        if tech is None:
            abort(404)
        if not listed:
            flash(f"That {what} is not on the list any more: it was already removed.", "info")
            return _technician_page(tech, _edit_form(tech), ShiftForm(prefix="shift", formdata=None), 404)
        try:
            warning = remove()
        except StaffError:
            abort(404)
        flash(done(tech), "success")
        if warning:
            flash(warning, "error")
        return redirect(url_for("staff.technician", technician_id=technician_id))

    @bp.route("/technicians/<int:technician_id>/time-off", methods=["POST"])
    @dispatch_roles
    def add_time_off(technician_id: int):
        tech = db.session.get(Technician, technician_id)
        if tech is None:
            abort(404)
        form = TimeOffForm(prefix="off")
        if form.validate_on_submit():
            now = clock.now()
            try:
                added = staff_service.add_time_off(tech.id, _firm_instant(form.starts_at), _firm_instant(form.ends_at),
                                                   form.reason.data or "", current_user, now)
            except StaffError as error:
                db.session.rollback()
                _attach(form, error, "starts_at")
            else:
                for message, category in _time_off_notes(tech.name, added):
                    flash(message, category)
                return redirect(url_for("staff.technician", technician_id=tech.id))
        return _technician_page(tech, _edit_form(tech), ShiftForm(prefix="shift", formdata=None), 400, form)

    @bp.route("/technicians/<int:technician_id>/time-off/<int:period_id>/delete", methods=["POST"])
    @dispatch_roles
    def delete_time_off(technician_id: int, period_id: int):
        return _remove(technician_id, db.session.get(TimeOff, period_id) is not None, "time off",
                       lambda: staff_service.delete_time_off(technician_id, period_id, clock.now()),
                       lambda tech: f"Time off removed: {tech.name}'s shifts count again.")

    @bp.route("/on-call", methods=["GET", "POST"])
    @dispatch_roles
    def on_call():
        form = _on_call_form()
        now = clock.now()
        status = 200
        if form.validate_on_submit():
            try:
                starts = _firm_instant(form.starts_at)
                ends = _firm_instant(form.ends_at)
                staff_service.add_on_call(form.technician_id.data, starts, ends, now)
            except StaffError as error:
                db.session.rollback()
                _attach(form, error, "starts_at")
                status = 400
            else:
                flash("On-call period added.", "success")
                return redirect(url_for("staff.on_call"))
        elif form.is_submitted():
            status = 400
        return _on_call_page(form, now, status)

    def _on_call_form(**kwargs) -> OnCallForm:
        form = OnCallForm(**kwargs)
        form.technician_id.choices = [SelectChoice(t.id, t.name) for t in staff_service.technicians(include_inactive=False)]
        return form

    def _on_call_page(form: OnCallForm, now: datetime, status: int):
        return render_template(
            "staff/on_call.html", form=form, periods=staff_service.on_call_periods(now),
            current=staff_service.on_call_at(now), delete_form=DeleteForm(), now=now,
        ), status

    @bp.route("/on-call/<int:period_id>/delete", methods=["POST"])
    @dispatch_roles
    def delete_on_call(period_id: int):
        if not DeleteForm().validate_on_submit():
            abort(400)
        if db.session.get(OnCallPeriod, period_id) is None:
            # A second click on Remove (or Back and Remove): the first one removed it. Not found, in words.
            flash("That on-call period is not on the rota any more: it was already removed.", "info")
            return _on_call_page(_on_call_form(formdata=None), clock.now(), 404)
        staff_service.delete_on_call(period_id, clock.now())
        flash("On-call period removed.", "success")
        return redirect(url_for("staff.on_call"))

    @bp.route("/plans")
    @owner_only
    def plans():
        return render_template("staff/plans.html", plans=staff_service.all_plans())

    @bp.route("/plans/new", methods=["GET", "POST"])
    @owner_only
    def new_plan():
        form = PlanForm()
        status = 200
        if form.validate_on_submit():
            try:
                plan = staff_service.create_plan(_plan_data(form), clock.now())
            except StaffError as error:
                db.session.rollback()
                _attach(form, error, "name")
                status = 400
            else:
                flash(f"Plan {plan.name} created.", "success")
                return redirect(url_for("staff.plans"))
        elif form.is_submitted():
            status = 400
        return render_template("staff/plan_form.html", form=form, plan=None), status

    @bp.route("/plans/<int:plan_id>", methods=["GET", "POST"])
    @owner_only
    def edit_plan(plan_id: int):
        plan = db.session.get(Plan, plan_id)
        if plan is None:
            abort(404)
        form = PlanForm(obj=None if request.method == "POST" else plan)
        status = 200
        if form.validate_on_submit():
            try:
                saved = staff_service.update_plan(plan.id, _plan_data(form), clock.now())
            except StaffError as error:
                db.session.rollback()
                _attach(form, error, "name")
                status = 400
            else:
                for message, category in _plan_saved_notes(saved):
                    flash(message, category)
                return redirect(url_for("staff.plans"))
        elif form.is_submitted():
            status = 400
        return render_template("staff/plan_form.html", form=form, plan=plan), status


def _tickets(numbers) -> str:
    shown = ", ".join(f"#{number}" for number in numbers[:10])
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")


def _plan_saved_notes(saved: staff_service.PlanSaved) -> list[tuple[str, str]]:
    """Whether saving moved open tickets' deadlines, and which: the owner must know what clients now read."""
    name = saved.plan.name
    if not saved.terms_changed:
        return [(f"Plan {name} saved. Its targets and coverage are unchanged, so open tickets keep their deadlines; "
                 "the queue was re-ranked.", "success")]
    if not saved.retimed:
        return [(f"Plan {name} saved with new targets. No open ticket had a deadline to move: the new targets "
                 "apply to tickets opened from now on.", "success")]
    count = len(saved.retimed)
    notes = [(f"Plan {name} saved with new targets: {count} open ticket{'s' if count != 1 else ''} "
              f"({_tickets(saved.retimed)}) now {'have' if count != 1 else 'has'} deadlines from them, counted from "
              "each ticket's own start; each ticket's timeline tells the client.", "success")]
    if saved.now_overdue:
        notes.append((f"{_tickets(saved.now_overdue)} already passed a new deadline and "
                      f"{'are' if len(saved.now_overdue) != 1 else 'is'} now counted as missed.", "error"))
    return notes


def _plan_data(form: PlanForm) -> PlanData:
    return PlanData(
        slug=(form.slug.data or "").strip(),
        name=form.name.data or "",
        summary=form.summary.data or "",
        monthly_price=Decimal(form.monthly_price.data),
        currency=(form.currency.data or "").strip().lower(),
        is_contract=bool(form.is_contract.data),
        coverage=form.coverage.data,
        remote_response_minutes=form.remote_response_minutes.data,
        onsite_arrival_minutes=form.onsite_arrival_minutes.data,
        after_hours_emergencies=bool(form.after_hours_emergencies.data),
        hourly_rate=Decimal(form.hourly_rate.data),
        minimum_term_months=form.minimum_term_months.data,
        onboarding_fee=Decimal(form.onboarding_fee.data),
        display_order=form.display_order.data,
        active=bool(form.active.data),
    )

