"""Log in, log out, sign up, password reset, password and address changes, and invitations."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from .. import clock
from . import safe_next
from ..extensions import limiter
from ..models import Role
from ..services import accounts, plans
from .forms import (AcceptInviteForm, AddressForm, ChangeEmailForm, ChangePasswordForm, ConfirmEmailChangeForm,
                    ConfirmEmailForm, LoginForm, ResetPasswordForm, SignupForm)

bp = Blueprint("auth", __name__, url_prefix="/auth")

GENERIC_LOGIN_ERROR = "That email and password do not match an account."


def _login_account_key() -> str:
    return "login:" + accounts.normalise_email(request.form.get("email", ""))[:254]


def _home_for(user) -> str:
    # A technician logs in on a phone to work their jobs, not to read the dispatch board.
    if user.role == Role.TECHNICIAN:
        return url_for("staff.my_jobs")
    return url_for("staff.queue") if user.is_staff else url_for("client.dashboard")


def _start_session(user, remember: bool) -> None:
    """A fresh session at log-in, so nothing set before it (fixation) survives."""
    session.clear()
    login_user(user, remember=remember)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
@limiter.limit("5 per minute; 20 per hour", key_func=_login_account_key, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_home_for(current_user))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(form.email.data, form.password.data, clock.now())
        except accounts.EmailNotConfirmed as refusal:
            # Only someone who knows the password gets here, so saying it reveals nothing new.
            flash(str(refusal), "error")
            return render_template("auth/login.html", form=form, unconfirmed=True), 403
        if user is not None:
            _start_session(user, form.remember.data)
            return redirect(safe_next(request.args.get("next")) or _home_for(user))
        flash(GENERIC_LOGIN_ERROR, "error")
        return render_template("auth/login.html", form=form), 401
    status = 400 if form.is_submitted() and form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("public.home"))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def signup():
    form = SignupForm()
    plan = request.args.get("plan", "")
    if form.validate_on_submit():
        accounts.sign_up(
            accounts.SignUp(
                organisation_name=form.organisation_name.data,
                site_address=form.site_address.data,
                full_name=form.full_name.data,
                email=form.email.data,
                password=form.password.data,
            ),
            clock.now(),
            plan=plan,
        )
        # The same answer for a new address and a registered one: the email says which it was.
        return redirect(url_for("auth.check_inbox"))
    status = 400 if form.is_submitted() and form.errors else 200
    # Name the plan the visitor chose, so the form does not read as if the choice was lost.
    chosen = plans.plan_by_slug(plan) if plan else None
    return render_template("auth/signup.html", form=form, plan=plan, chosen=chosen), status


@bp.route("/signup/check-inbox")
def check_inbox():
    return render_template("auth/check_inbox.html", hours=accounts.CONFIRM_HOURS)


CONFIRM_REFUSED = {
    "invalid": "That confirmation link is not complete or was changed (a mail program may have cut it). Ask for a new one below.",
    "expired": "That confirmation link has expired. Ask for a new one below.",
}
CONFIRM_USED = "That confirmation link was already used: your address is confirmed. Log in with your password."


def _confirmation_refused(refusal: accounts.ConfirmationRefused):
    if refusal.reason == "used":
        flash(CONFIRM_USED, "info")
        return redirect(url_for("auth.login"))
    flash(CONFIRM_REFUSED.get(refusal.reason, CONFIRM_REFUSED["invalid"]), "error")
    return redirect(url_for("auth.resend_confirmation"))


def _confirm_token_key() -> str:
    return "confirm:" + (request.view_args or {}).get("token", "")[:300]


@bp.route("/confirm/<token>", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
@limiter.limit("5 per minute; 20 per hour", key_func=_confirm_token_key, methods=["POST"])
def confirm_email(token: str):
    """Opening the link shows a page; the address is confirmed by its POST (a GET never writes,
    and mail scanners that open links must not use them up)."""
    try:
        pending = accounts.check_confirmation(token, clock.now())
    except accounts.ConfirmationRefused as refusal:
        return _confirmation_refused(refusal)
    form = ConfirmEmailForm()
    if form.validate_on_submit():
        try:
            confirmation = accounts.confirm_email(token, form.password.data, clock.now())
        except accounts.ConfirmationRefused as refusal:
            return _confirmation_refused(refusal)
        except accounts.AccountError as refusal:
            form.password.errors = [str(refusal)]
            return render_template("auth/confirm_email.html", form=form, pending=pending), 401
        user = confirmation.user
        _start_session(user, remember=False)
        flash(f"Welcome, {user.full_name}. Your address is confirmed and your organisation is registered.", "success")
        if confirmation.plan:
            return redirect(url_for("client.choose_plan", slug=confirmation.plan))
        return redirect(url_for("client.dashboard"))
    status = 400 if form.is_submitted() and form.errors else 200
    return render_template("auth/confirm_email.html", form=form, pending=pending), status


CONFIRM_SENT = "If that address is waiting for confirmation, we have emailed it a new link."


@bp.route("/confirm-again", methods=["GET", "POST"])
@limiter.limit("5 per minute; 20 per hour", methods=["POST"])
def resend_confirmation():
    return _email_a_link(accounts.resend_confirmation, CONFIRM_SENT, "auth/resend_confirmation.html",
                         hours=accounts.CONFIRM_HOURS)


RESET_SENT = "If an account exists for that address, we have emailed a link to reset its password."


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit("5 per minute; 20 per hour", methods=["POST"])
def reset_request():
    return _email_a_link(accounts.request_password_reset, RESET_SENT, "auth/reset_request.html")


def _email_a_link(send: Callable[[str, datetime], None], sent: str, template: str, **context: Any):
    """An address form whose answer is the same whether or not the address has an account."""
    form = AddressForm()
    if form.validate_on_submit():
        send(form.email.data, clock.now())
        flash(sent, "info")
        return redirect(url_for("auth.login"))
    status = 400 if form.is_submitted() and form.errors else 200
    return render_template(template, form=form, **context), status


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    user = accounts.user_for_reset_token(token)
    if user is None:
        flash("That reset link has expired or was already used. Ask for a new one.", "error")
        return redirect(url_for("auth.reset_request"))
    form = ResetPasswordForm()
    form.own_words = (user.email, user.full_name or "")
    if form.validate_on_submit():
        accounts.reset_password(token, form.password.data, clock.now())
        logout_user()
        session.clear()
        flash("Your password is changed. Log in with the new one.", "success")
        return redirect(url_for("auth.login"))
    status = 400 if form.is_submitted() and form.errors else 200
    return render_template("auth/reset_password.html", form=form), status


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def change_password():
    """Change one's password knowing the current one (before, only a reset link by email could)."""
    form = ChangePasswordForm()
    form.own_words = (current_user.email, current_user.full_name or "")
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if accounts.change_password(user, form.current.data, form.password.data, clock.now()):
            _start_session(user, remember=False)
            flash("Your password is changed. Every other device and browser is signed out.", "success")
            return redirect(_home_for(user))
        form.current.errors = list(form.current.errors) + ["That is not your current password. Nothing changed."]
    status = 400 if form.is_submitted() and form.errors else 200
    return render_template("auth/change_password.html", form=form), status


@bp.route("/email", methods=["GET", "POST"])
@login_required
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def change_email():
    """Ask to log in with another address, knowing the password; the change waits for the link sent there."""
    form = ChangeEmailForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            email = accounts.request_email_change(user, form.email.data, form.current.data, clock.now())
        except accounts.AccountError as refusal:
            field = form.current if refusal.field == "current" else form.email
            field.errors = list(field.errors) + [str(refusal)]
        else:
            # The same answer whether or not the address has an account: the email there says which.
            flash(f"Check the inbox of {email}: we sent it a link that works for {accounts.EMAIL_CHANGE_HOURS} "
                  f"hours. Your address changes only when the link is opened; until then you log in with "
                  f"{user.email}.", "info")
            return redirect(_home_for(user))
    status = 400 if form.is_submitted() and form.errors else 200
    return render_template("auth/change_email.html", form=form), status


EMAIL_CHANGE_REFUSED = {
    "invalid": "That link to change your address is not complete or was changed (a mail program may have cut it). "
               "Nothing changed: ask for a new one.",
    "expired": "That link to change your address has expired or was already used. Nothing changed: ask for a new one.",
    "other_user": "That link to change an address is for another account than the one logged in here. Nothing "
                  "changed: log out, log in as the account that asked for it, and open the link again.",
}


def _email_change_refused(refusal: accounts.EmailChangeRefused):
    message = str(refusal) if refusal.reason == "taken" else EMAIL_CHANGE_REFUSED.get(
        refusal.reason, EMAIL_CHANGE_REFUSED["invalid"])
    flash(message, "error")
    return redirect(_home_for(current_user))


@bp.route("/email/confirm/<token>", methods=["GET", "POST"])
@login_required
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def confirm_email_change(token: str):
    """Opening the link shows what will change; its POST makes the change (a GET never writes, and mail
    scanners that open links must not use them up). Only the account that asked may use it: someone
    not logged in logs in first (with the address they have now) and comes back here."""
    viewer = current_user._get_current_object()
    try:
        change = accounts.check_email_change(token, clock.now(), viewer)
    except accounts.EmailChangeRefused as refusal:
        return _email_change_refused(refusal)
    form = ConfirmEmailChangeForm()
    if form.validate_on_submit():
        try:
            change = accounts.confirm_email_change(token, clock.now(), viewer)
        except accounts.EmailChangeRefused as refusal:
            return _email_change_refused(refusal)
        _start_session(change.user, remember=False)  # the change signed out every session; keep this browser in
        flash(f"Your address is now {change.new_email}: log in with it from now on. Every other device and "
              f"browser is signed out, and {change.old_email} was told of the change.", "success")
        return redirect(_home_for(change.user))
    status = 400 if form.is_submitted() and form.errors else 200
    return render_template("auth/confirm_email_change.html", form=form, change=change), status


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    invitation = accounts.open_invitation(token, clock.now())
    if invitation is None and current_user.is_authenticated and accounts.accepted_by(token, current_user):
        flash(f"You have joined the {current_user.organisation.name} portal.", "success")
        return redirect(url_for("client.dashboard"), code=303)
    if invitation is None:
        flash("That invitation has expired or was already used. Ask your admin for a new one.", "error")
        return redirect(url_for("auth.login"))
    form = AcceptInviteForm()
    form.own_words = (invitation.email,)
    if form.validate_on_submit():
        user = accounts.accept_invitation(token, form.full_name.data, form.password.data, clock.now())
        if user is not None:
            _start_session(user, remember=False)
            flash(f"Welcome to the {invitation.organisation.name} portal.", "success")
            return redirect(url_for("client.dashboard"))
        flash("That invitation can no longer be used.", "error")
        return redirect(url_for("auth.login"))
    status = 400 if form.is_submitted() and form.errors else 200
    return render_template("auth/accept_invitation.html", form=form, invitation=invitation), status


@bp.route("/sessions/end-all", methods=["POST"])
@login_required
def end_all_sessions():
    accounts.end_all_sessions(current_user, clock.now())
    logout_user()
    session.clear()
    flash("Every session of your account is signed out.", "info")
    return redirect(url_for("auth.login"))
