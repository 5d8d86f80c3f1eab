"""Staff forms. Each parses and checks one request; the services hold the rules."""
from __future__ import annotations

from ..forms import MoneyField, PortalForm, WholeNumberField
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    FloatField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional

from ..services.staff import WEEKDAYS


class BoardFilterForm(PortalForm):
    """GET filters of the dispatch board: no state change, so no CSRF token."""

    class Meta:
        csrf = False

    plan = SelectField("Plan", choices=[], validate_choice=False, default="")
    state = SelectField("SLA state", choices=[], validate_choice=False, default="")
    technician = SelectField("Technician", choices=[], validate_choice=False, default="")
    at_risk = BooleanField("At risk only")


class PromisePeriodForm(PortalForm):
    """GET choice of the promises report's period: no state change, so no CSRF token."""

    class Meta:
        csrf = False

    days = SelectField("Tickets opened in the last", coerce=int, default=90,
                       choices=[SelectChoice(7, "7 days"), SelectChoice(30, "30 days"), SelectChoice(90, "90 days"),
                                SelectChoice(365, "365 days")])


class OverrideForm(PortalForm):
    version = HiddenField(validators=[InputRequired()])
    position = WholeNumberField("New place", validators=[InputRequired("Give the new place (1 = next)."), NumberRange(1, 10_000)])
    reason = StringField("Reason", validators=[DataRequired("Say why: the reason is logged and shown."), Length(max=500)])


class ClearOverrideForm(PortalForm):
    version = HiddenField(validators=[InputRequired()])
    reason = StringField("Reason", validators=[DataRequired("Say why the override is lifted."), Length(max=500)])


class AssignForm(PortalForm):
    version = HiddenField(validators=[InputRequired()])
    technician_id = SelectField("Technician", coerce=int, choices=[], validate_choice=True)


class DetailsForm(PortalForm):
    version = HiddenField(validators=[InputRequired()])
    onsite_needed = BooleanField("On-site visit needed")
    effort_minutes = WholeNumberField(
        "Effort estimate (minutes)", validators=[Optional(), NumberRange(1, 7 * 24 * 60, "Between 1 minute and a week.")]
    )
    required_skill = StringField("Skill needed (empty = anyone)", validators=[Optional(), Length(max=40)])


class CloseForm(PortalForm):
    """A dispatcher ends a ticket: fixed (resolved), or closed without work (a duplicate, not needed)."""

    version = HiddenField(validators=[InputRequired()])
    status = RadioField("How it ends", choices=[], validate_choice=True,
                        validators=[InputRequired("Choose resolved or closed without work.")])
    note = TextAreaField("What the client reads", validators=[
        DataRequired("Tell the client why: it goes on their timeline and in the email."), Length(max=2000)])


class StatusForm(PortalForm):
    """One tap from the technician's phone: the target status and, to resolve, a note."""

    version = HiddenField(validators=[InputRequired()])
    status = HiddenField(validators=[InputRequired()])
    note = TextAreaField("Note", validators=[Optional(), Length(max=2000)])


class TechnicianForm(PortalForm):
    user_id = SelectField("Existing staff account", coerce=int, choices=[], validate_choice=True)
    email = EmailField("…or a new technician's email", validators=[Optional(), Email(), Length(max=254)])
    full_name = StringField("New technician's name", validators=[Optional(), Length(max=200)])
    skills = StringField("Skills (comma separated, e.g. network, printer)", validators=[Length(max=500)])
    home_zone = StringField("Home zone", validators=[Optional(), Length(max=64)])
    home_latitude = FloatField("Home latitude", validators=[Optional(), NumberRange(-90, 90)])
    home_longitude = FloatField("Home longitude", validators=[Optional(), NumberRange(-180, 180)])
    active = BooleanField("Active (takes jobs)", default=True)


class TechnicianEditForm(PortalForm):
    skills = StringField("Skills (comma separated)", validators=[Length(max=500)])
    home_zone = StringField("Home zone", validators=[Optional(), Length(max=64)])
    home_latitude = FloatField("Home latitude", validators=[Optional(), NumberRange(-90, 90)])
    home_longitude = FloatField("Home longitude", validators=[Optional(), NumberRange(-180, 180)])
    active = BooleanField("Active (takes jobs)")


class ShiftForm(PortalForm):
    weekday = SelectField("Day", coerce=int, choices=[SelectChoice(i, day) for i, day in enumerate(WEEKDAYS)])
    starts = TimeField("Starts", validators=[InputRequired("Give the start time.")])
    ends = TimeField("Ends", validators=[InputRequired("Give the end time.")])


class OnCallForm(PortalForm):
    technician_id = SelectField("Technician", coerce=int, choices=[], validate_choice=True)
    starts_at = DateTimeLocalField("Starts (firm time)", format="%Y-%m-%dT%H:%M", validators=[InputRequired("Give the start.")])
    ends_at = DateTimeLocalField("Ends (firm time)", format="%Y-%m-%dT%H:%M", validators=[InputRequired("Give the end.")])


class TimeOffForm(PortalForm):
    starts_at = DateTimeLocalField("From (firm time)", format="%Y-%m-%dT%H:%M", validators=[InputRequired("Give the start.")])
    ends_at = DateTimeLocalField("Until (firm time)", format="%Y-%m-%dT%H:%M", validators=[InputRequired("Give the end.")])
    reason = StringField("Reason (staff only)", validators=[Optional(), Length(max=200)])


class DeleteForm(PortalForm):
    """An empty form: only its CSRF token matters."""


class PlanForm(PortalForm):
    slug = StringField("Slug (web address and lookup key)", validators=[DataRequired(), Length(max=50)])
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    summary = TextAreaField("Summary", validators=[Optional(), Length(max=2000)])
    monthly_price = MoneyField("Monthly price", places=2, validators=[InputRequired(), NumberRange(0, 1_000_000)])
    currency = StringField("Currency", default="usd", validators=[DataRequired(), Length(min=3, max=3, message="Use a three-letter code, e.g. usd.")])
    is_contract = BooleanField("Contract plan (priority over break/fix)")
    coverage = SelectField("Coverage", choices=[SelectChoice("business_hours", "Business hours"), SelectChoice("24x7", "24x7")])
    remote_response_minutes = WholeNumberField("Remote response target (minutes)", validators=[Optional(), NumberRange(1, 100_000)])
    onsite_arrival_minutes = WholeNumberField("On-site arrival target (minutes)", validators=[Optional(), NumberRange(1, 100_000)])
    after_hours_emergencies = BooleanField("After-hours emergencies page the on-call technician")
    hourly_rate = MoneyField("Hourly rate", places=2, validators=[InputRequired(), NumberRange(0, 100_000)])
    minimum_term_months = WholeNumberField("Minimum term (months)", validators=[InputRequired(), NumberRange(0, 120)])
    onboarding_fee = MoneyField("Onboarding fee", places=2, validators=[InputRequired(), NumberRange(0, 1_000_000)])
    display_order = WholeNumberField("Display order", default=0, validators=[InputRequired(), NumberRange(0, 1000)])
    active = BooleanField("On sale", default=True)


class WhatIfForm(PortalForm):
    """A planning question asked of the queue; it changes nothing, so it is a GET without CSRF token."""

    class Meta:
        csrf = False

    scenario = SelectField("What if", choices=[
        SelectChoice("extra_technician", "one more technician were on shift"),
        SelectChoice("move", "this ticket moved to place N"),
    ], default="extra_technician")
    ticket_id = SelectField("Ticket", coerce=int, choices=[], validate_choice=True)
    move_to = WholeNumberField("Place N", validators=[Optional(), NumberRange(1, 10_000, "Give a place of 1 or more.")])


class CommentForm(PortalForm):
    """A message to the client on the ticket's timeline, also emailed to them (`notifications.staff_reply`)."""

    body = TextAreaField("Reply to the client", validators=[
        InputRequired("Write something first."), Length(max=5000, message="Use at most 5000 characters.")],
        render_kw={"rows": 3})
