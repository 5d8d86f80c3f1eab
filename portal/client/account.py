"""The organisation's account page (client admins only): its time zone, and API tokens for the JSON API."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from .. import clock
from ..auth import roles_required
from ..models import Role
from ..services import api_tokens, organisations
from .forms import ApiTokenForm, RevokeForm, TimezoneForm

client_admin_only = roles_required(Role.CLIENT_ADMIN)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/account", "account", account, methods=["GET", "POST"])
    bp.add_url_rule("/account/timezone", "set_timezone", set_timezone, methods=["POST"])
    bp.add_url_rule("/account/api-tokens/<int:token_id>/revoke", "revoke_api_token", revoke_token, methods=["POST"])


def _timezone_form() -> TimezoneForm:
    return TimezoneForm(formdata=None, timezone=current_user.organisation.timezone)


def _page(form: ApiTokenForm, issued=None, status: int = 200, message: str | None = None, kind: str = "success",
          timezone_form: TimezoneForm | None = None):
    org_id = current_user.organisation_id
    return render_template(
        "client/account.html",
        form=form,
        timezone_form=timezone_form or _timezone_form(),
        revoke_form=RevokeForm(),
        tokens=api_tokens.tokens_for(org_id),
        issued=issued,
        message=message,
        message_kind=kind,
        openapi_url=url_for("api.openapi"),
    ), status


ALREADY_CREATED = ("This form was already sent: the token “{name}” ({prefix}…) was created then, and its secret "
                   "was shown on that answer only. If you did not copy it, revoke it and create another.")


@client_admin_only
def account():
    """Create a token: the secret is shown on this response only, never again (no redirect).

    The form's one-time key makes a second sending of the same form (a double click, Back and
    send, the browser's reload of this answer) say so instead of making a second token."""
    form = ApiTokenForm()
    if form.validate_on_submit():
        try:
            issued = api_tokens.create(current_user.organisation_id, form.name.data or "", current_user, clock.now(),
                                       request_key=form.request_key.data or None)
        except api_tokens.ApiTokenError as error:
            form[error.field or "name"].errors.append(error.message)
            return _page(form, status=400)
        if issued.secret is None:
            return _page(ApiTokenForm(formdata=None),
                         message=ALREADY_CREATED.format(name=issued.token.name, prefix=issued.token.prefix), kind="info")
        return _page(ApiTokenForm(formdata=None), issued=issued)
    if form.is_submitted():
        return _page(form, status=400)
    return _page(form)


@client_admin_only
def revoke_token(token_id: int):
    form = RevokeForm()
    if not form.validate_on_submit():
        abort(400)
    token = api_tokens.revoke(current_user.organisation_id, token_id, current_user, clock.now())
    if token is None:
        abort(404)
    return _page(ApiTokenForm(formdata=None), message=f"Token “{token.name}” ({token.prefix}…) is revoked; it stops working at once.")


@client_admin_only
def set_timezone():
    """The organisation's zone: its emails, its pages and the deadlines its people type read it."""
    form = TimezoneForm()
    if not form.validate_on_submit():
        return _page(ApiTokenForm(formdata=None), timezone_form=form, status=400,
                     message="The form expired; nothing was changed. Choose the zone again.", kind="error")
    try:
        changed = organisations.set_timezone(current_user.organisation_id, form.timezone.data or "", current_user,
                                             clock.now())
    except organisations.OrganisationError as error:
        form.timezone.errors = [*form.timezone.errors, error.message]
        return _page(ApiTokenForm(formdata=None), timezone_form=form, status=400)
    zone = current_user.organisation.timezone
    flash(f"Times are now shown and read in {zone}." if changed else f"The time zone already was {zone}.",
          "success" if changed else "info")
    return redirect(url_for("client.account"), 303)
