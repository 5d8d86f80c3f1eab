"""Account forms. Validation messages name the field and never reveal whether an account exists."""
import re

from ..forms import PortalForm
from wtforms.fields.choices import SelectChoice
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Regexp, ValidationError

from . import password_problem


class StrongPassword:
    """The strength check, told the account's own words (its address and name, as typed in the form or,
    for an account that exists, set by the view as `form.own_words`): a password made of them is weak."""

    def __call__(self, form, field):
        typed = [getattr(form, name).data or "" for name in ("email", "full_name") if hasattr(form, name)]
        words = [*typed, *getattr(form, "own_words", ())]
        # Each part too ("mia", "member", "acme"): zxcvbn matches a given word only whole.
        parts = [part for word in words for part in re.split(r"[^\w]+", word.lower()) if len(part) > 1]
        problem = password_problem(field.data or "", (*words, *parts))
        if problem:
            raise ValidationError(problem)


def _lookup_email_validators() -> list:
    """For forms that only look an account up (log-in, password reset): a strict syntax check
    (Email() refuses reserved domains such as the demo's @demo.test) would lock out accounts that exist."""
    return [
        DataRequired(), Length(max=254),
        Regexp(r"^[^@\s]+@[^@\s]+$", message="Enter the address you signed up with, like name@company.com."),
    ]


class LoginForm(PortalForm):
    email = EmailField("Email", validators=_lookup_email_validators())
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    remember = BooleanField("Remember me on this device")


class SignupForm(PortalForm):
    organisation_name = StringField("Company name", validators=[DataRequired(), Length(max=200)])
    site_address = StringField("Site address (where a technician would come)", validators=[DataRequired(), Length(max=500)])
    full_name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Work email", validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), StrongPassword()])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password", "The two passwords differ.")])


class AddressForm(PortalForm):
    """The address to email a link to (password reset, confirmation sent again)."""

    email = EmailField("Email", validators=_lookup_email_validators())


class ResetPasswordForm(PortalForm):
    password = PasswordField("New password", validators=[DataRequired(), StrongPassword()])
    confirm = PasswordField("Repeat new password", validators=[DataRequired(), EqualTo("password", "The two passwords differ.")])


class ChangePasswordForm(PortalForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=200)],
                            render_kw={"autocomplete": "current-password"})
    password = PasswordField("New password", validators=[DataRequired(), StrongPassword()],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Repeat new password", render_kw={"autocomplete": "new-password"},
                            validators=[DataRequired(), EqualTo("password", "The two passwords differ.")])


class ChangeEmailForm(PortalForm):
    # Spaces around a pasted address are dropped before the syntax check, not refused.
    email = EmailField("New email", validators=[DataRequired(), Email(), Length(max=254)],
                       filters=[lambda value: value.strip() if isinstance(value, str) else value],
                       render_kw={"autocomplete": "email"})
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=200)],
                            render_kw={"autocomplete": "current-password"})


class ConfirmEmailChangeForm(PortalForm):
    """Only the CSRF token: the change is made by a POST, so mail scanners opening the link change nothing."""


class InviteForm(PortalForm):
    email = EmailField("Colleague's email", validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField("Role", choices=[SelectChoice("client_member", "Member (opens and follows tickets)"), SelectChoice("client_admin", "Admin (also manages users and billing)")])


class AcceptInviteForm(PortalForm):
    full_name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("Password", validators=[DataRequired(), StrongPassword()])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password", "The two passwords differ.")])


class ConfirmEmailForm(PortalForm):
    password = PasswordField("Password you chose when signing up", validators=[DataRequired(), Length(max=200)])
