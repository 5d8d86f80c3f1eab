"""Client forms. The emergency form asks in the client's words; `tickets.parse_ticket_input`
does the real validation so the form and the JSON API accept exactly the same things."""
from __future__ import annotations

import secrets

from ..forms import PortalForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length

from ..domain.effort import CATEGORIES
from ..services.organisations import zone_choices
from ..services.tickets import CATEGORY_LABELS, IMPACT_LABELS

def category_choices() -> list[tuple[str, str]]:
    """The categories the ticket service accepts, in its words (one list for form and API)."""
    return [SelectChoice(value, label) for value, label in CATEGORY_LABELS.items() if value in CATEGORIES]

IMPACTS = list(IMPACT_LABELS.items())
IMPACT_CHOICES = [SelectChoice(value, label) for value, label in IMPACTS]


def new_idempotency_key() -> str:
    """A fresh key per form: a double submit of the same form opens one ticket."""
    return secrets.token_urlsafe(24)


class TicketForm(PortalForm):
    title = StringField("What is broken?", render_kw={"maxlength": 200, "autocomplete": "off"})
    description = TextAreaField("Tell us more (what you see, since when, what you tried)", render_kw={"rows": 4})
    category = SelectField("What kind of problem is it?", choices=category_choices, default="other",
                           validate_choice=False)
    impact = RadioField("Who is affected?", choices=IMPACT_CHOICES, default="person", validate_choice=False)
    money_lost = RadioField("Are you losing money because of it right now?",
                            choices=[SelectChoice("no", "No"), SelectChoice("yes", "Yes")], default="no")
    revenue_at_risk_per_hour = StringField("Roughly how much an hour, in dollars? (a guess is fine)",
                                           render_kw={"inputmode": "decimal"})
    client_deadline = StringField("Is there a deadline today? (time, e.g. 17:00)", render_kw={"type": "time"})
    onsite_needed = BooleanField("Someone must come on site")
    safety_critical = BooleanField("People's safety or health depends on it (clinic, pharmacy, alarms)")
    idempotency_key = HiddenField()
    follows_ticket_id = HiddenField()


class CommentForm(PortalForm):
    body = TextAreaField("Add a comment", validators=[InputRequired(message="Write something first."),
                                                      Length(max=5000, message="Use at most 5000 characters.")],
                         render_kw={"rows": 3})


class AttachmentForm(PortalForm):
    file = FileField("Attach a file (screenshot, photo, PDF, log)", validators=[FileRequired(message="Choose a file.")])


class StatusForm(PortalForm):
    """The client's two buttons; which one was pressed comes in `status`."""

    status = HiddenField()
    note = StringField("Note (optional)", validators=[Length(max=1000, message="Use at most 1000 characters.")])


class ApiTokenForm(PortalForm):
    name = StringField("Token name (the tool that will use it)", validators=[Length(max=100, message="Use at most 100 characters.")])
    request_key = HiddenField(default=new_idempotency_key, validators=[Length(max=64)])


class RevokeForm(PortalForm):
    pass


class ColleagueActionForm(PortalForm):
    """Remove, restore, cancel: the button is the whole request (the CSRF token is its only field)."""


class RoleForm(PortalForm):
    """The role a colleague gets; the service refuses anything but member or admin."""

    role = HiddenField()


class TimezoneForm(PortalForm):
    """The organisation's time zone; `organisations.set_timezone` refuses a zone not in the list."""

    timezone = SelectField("Your organisation's time zone", choices=lambda: [SelectChoice(z, z.replace("_", " "))
                                                                           for z in zone_choices()],
                           validate_choice=False)
