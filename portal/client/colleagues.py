"""The users page: colleagues, their roles and access, and invitations (client admins only).

Every id in these addresses is looked up within the admin's organisation: another organisation's
person or invitation answers 404, as if it did not exist.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import clock
from ..auth import roles_required
from ..auth.forms import InviteForm
from ..extensions import db
from ..models import Invitation, Role, User
from ..services import account_log, accounts
from .forms import ColleagueActionForm, RoleForm

client_admin_only = roles_required(Role.CLIENT_ADMIN)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/users", "users", users, methods=["GET", "POST"])
    bp.add_url_rule("/users/<int:user_id>/remove", "remove_colleague", remove_colleague, methods=["GET", "POST"])
    bp.add_url_rule("/users/<int:user_id>/restore", "restore_colleague", restore_colleague, methods=["POST"])
    bp.add_url_rule("/users/<int:user_id>/role", "change_colleague_role", change_colleague_role, methods=["POST"])
    bp.add_url_rule("/invitations/<int:invitation_id>/cancel", "cancel_invitation", cancel_invitation,
                    methods=["POST"])


def _page(form: InviteForm, status: int = 200):
    org_id = current_user.organisation_id
    people = db.session.scalars(select(User).where(User.organisation_id == org_id).order_by(User.email)).all()
    invitations = db.session.scalars(
        select(Invitation).where(Invitation.organisation_id == org_id, Invitation.accepted_at.is_(None),
                                 Invitation.expires_at > clock.now()).order_by(Invitation.email)
    ).all()
    return render_template(
        "client/users.html",
        form=form,
        action_form=ColleagueActionForm(formdata=None),
        colleagues=[u for u in people if u.active],
        removed=[u for u in people if not u.active],
        invitations=invitations,
        activity=account_log.recent(org_id),
    ), status


def _refused(error: accounts.AccountError):
    """A refused action changes nothing and says why on the users page."""
    flash(str(error), "error")
    return _page(InviteForm(formdata=None), status=400)


def _done(message: str, changed: bool):
    """Back to the users page (a reload does not post again); a repeated action only says it was done before."""
    flash(message, "success" if changed else "info")
    return redirect(url_for("client.users"))


@client_admin_only
def users():
    form = InviteForm()
    status = 200
    if form.validate_on_submit():
        try:
            sent = accounts.invite_colleague(current_user, form.email.data, form.role.data, clock.now())
        except accounts.AccountError as error:
            form[error.field or "email"].errors.append(str(error))
            status = 400
        else:
            email = sent.invitation.email
            flash(f"Invitation sent again to {email}: the earlier link no longer works."
                  if sent.replaced else f"Invitation sent to {email}.", "success")
            return redirect(url_for("client.users"))
    elif form.is_submitted():
        status = 400
    return _page(form, status)


@client_admin_only
def remove_colleague(user_id: int):
    """GET asks for confirmation (and says what removal does); POST removes."""
    user = accounts.colleague(current_user, user_id)
    if user is None:
        abort(404)
    form = ColleagueActionForm()
    if not form.validate_on_submit():
        return render_template("client/remove_colleague.html", user=user, form=form,
                               refusal=accounts.removal_refusal(current_user, user))
    try:
        change = accounts.remove_colleague(current_user, user_id, clock.now())
    except accounts.AccountError as error:
        return _refused(error)
    if change is None:
        abort(404)
    name = accounts.named(change.user)
    if change.invitations_cancelled:
        flash(f"The invitation{'s' if len(change.invitations_cancelled) != 1 else ''} {name} had sent to "
              f"{', '.join(change.invitations_cancelled)} no longer work: invite again if they should still join.",
              "info")
    return _done(f"{name} no longer has access: every session is signed out." if change.changed
                 else f"{name} already had no access.", change.changed)


@client_admin_only
def restore_colleague(user_id: int):
    change = accounts.restore_colleague(current_user, user_id, clock.now())
    if change is None:
        abort(404)
    name, role = accounts.named(change.user), Role.LABELS[change.user.role].lower()
    return _done(f"{name} has access again, as {role}." if change.changed
                 else f"{name} already has access.", change.changed)


@client_admin_only
def change_colleague_role(user_id: int):
    form = RoleForm()
    try:
        change = accounts.change_role(current_user, user_id, form.role.data or "", clock.now())
    except accounts.AccountError as error:
        return _refused(error)
    if change is None:
        abort(404)
    name, role = accounts.named(change.user), Role.LABELS[change.user.role].lower()
    if change.user.id == current_user.id and change.changed:
        flash(f"You are now {role}: another admin manages users and billing.", "success")
        return redirect(url_for("client.dashboard"))
    return _done(f"{name} is now {role}." if change.changed else f"{name} is already {role}.", change.changed)


@client_admin_only
def cancel_invitation(invitation_id: int):
    try:
        cancelled = accounts.cancel_invitation(current_user, invitation_id, clock.now())
    except accounts.AccountError as error:
        return _refused(error)
    if cancelled is None:
        abort(404)
    email = cancelled.invitation.email
    return _done(f"The invitation to {email} is cancelled: its link no longer works." if cancelled.changed
                 else f"The invitation to {email} was already cancelled or had expired.", cancelled.changed)
