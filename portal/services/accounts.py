"""Accounts: sign-up, log-in checks, password reset, invitations, and a client admin's colleagues."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..auth import burn_verification_time, hash_password, verify_password
from ..extensions import db
from ..models import AccountEvent, ApiToken, Contract, Invitation, Organisation, OutboxMessage, Role, Ticket, User
from . import account_log, outbox
from .account_log import named
from .errors import Refusal
from .plans import plan_by_slug

RESET_MAX_AGE = timedelta(hours=1)
CONFIRM_HOURS = 48
CONFIRM_MAX_AGE = timedelta(hours=CONFIRM_HOURS)
CONFIRMATION_EMAIL = "email_confirmation"  # the outbox kind of a confirmation link
INVITE_LIFETIME = timedelta(days=7)
UNCONFIRMED_KEPT = timedelta(days=7)


class AccountError(Refusal):
    """A refusal of an account request, with a message fit to show the user and the field it concerns."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user(email: str) -> Optional[User]:
    return db.session.scalars(select(User).where(func.lower(User.email) == normalise_email(email))).first()


@dataclass(frozen=True)
class SignUp:
    organisation_name: str
    site_address: str
    full_name: str
    email: str
    password: str


class EmailNotConfirmed(AccountError):
    """The right password, but the address was never confirmed: the account stays closed."""


class ConfirmationRefused(AccountError):
    """A confirmation link that cannot be used; `reason` is "invalid", "expired" or "used"."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Confirmation:
    user: User
    plan: str  # the plan slug picked before signing up ("" for none)


def sign_up(data: SignUp, now: datetime, plan: str = "") -> None:
    """Open the organisation and its client admin, unconfirmed, and email the confirmation link.

    The caller answers the same way whatever happened here, so the sign-up form never tells a
    stranger which addresses have accounts: an address already registered gets an email instead
    (its confirmation link again if it was never confirmed), and no row is added.
    """
    email = normalise_email(data.email)
    plan = _known_plan(plan)
    existing = find_user(email)
    if existing is None:
        organisation = Organisation(
            name=data.organisation_name.strip(),
            site_address=data.site_address.strip(),
            timezone=current_app.config["FIRM_TIMEZONE"],
            created_at=now,
        )
        user = User(
            email=email,
            full_name=data.full_name.strip(),
            password_hash=hash_password(data.password),
            role=Role.CLIENT_ADMIN,
            organisation=organisation,
            created_at=now,
            email_confirmed_at=None,
            sign_up_plan=plan or None,
        )
        db.session.add_all([organisation, user])
        try:
            db.session.flush()
        except IntegrityError:  # the same address signed up at the same moment by another request
            db.session.rollback()
            existing = find_user(email)
            if existing is None:
                raise
        else:
            _enqueue_confirmation(user, now)
            db.session.commit()
            return
    hash_password(data.password)  # as long as a new account takes (no enumeration by timing)
    if not existing.active:
        return
    if existing.email_confirmed_at is None:
        if plan:
            existing.sign_up_plan = plan
        _enqueue_confirmation(existing, now)
    else:
        outbox.enqueue(
            existing.email,
            "Someone tried to sign up with your address",
            f"Someone tried to open a new account on the {current_app.config['FIRM_NAME']} client portal with this address, "
            "which already has an account. Nothing was changed.\n\n"
            "If it was you, log in:\n" + url_for("auth.login", _external=True)
            + "\n\nForgot your password? Choose a new one:\n" + url_for("auth.reset_request", _external=True)
            + "\n\nIf it was not you, ignore this email.",
            "signup_exists",
            now,
        )
    db.session.commit()


def resend_confirmation(email: str, now: datetime) -> None:
    """Email a fresh confirmation link if the address waits for one; the caller answers alike either way."""
    user = find_user(email)
    if user is None or not user.active or user.email_confirmed_at is not None:
        return
    _enqueue_confirmation(user, now)
    db.session.commit()


def purge_unconfirmed_sign_ups(now: datetime) -> int:
    """Remove sign-ups left unconfirmed `UNCONFIRMED_KEPT` after their last link (links live `CONFIRM_HOURS`).

    Why: an unconfirmed account holds its address, and a stranger who signed up first with
    someone else's address would hold it for good. Only a sign-up that never did anything is
    removed: its organisation has no other user, ticket, contract, invitation or API token.
    Returns how many were removed.
    """
    cutoff = now - UNCONFIRMED_KEPT
    last_link = (
        select(func.max(OutboxMessage.created_at))
        .where(OutboxMessage.recipient == User.email, OutboxMessage.kind == CONFIRMATION_EMAIL)
        .scalar_subquery()
    )
    stale = db.session.scalars(
        select(User).where(
            User.email_confirmed_at.is_(None),
            User.role == Role.CLIENT_ADMIN,
            User.created_at < cutoff,
            func.coalesce(last_link, User.created_at) < cutoff,
        )
    ).all()
    removed = 0
    for user in stale:
        organisation = user.organisation
        if organisation is None or _organisation_in_use(organisation.id, user.id):
            continue
        db.session.delete(user)
        db.session.delete(organisation)
        removed += 1
    db.session.commit()
    return removed


def _organisation_in_use(organisation_id: int, user_id: int) -> bool:
    uses = [
        select(User.id).where(User.organisation_id == organisation_id, User.id != user_id),
        select(Ticket.id).where((Ticket.organisation_id == organisation_id) | (Ticket.requester_id == user_id)),
        select(Contract.id).where(Contract.organisation_id == organisation_id),
        select(Invitation.id).where((Invitation.organisation_id == organisation_id) | (Invitation.invited_by_id == user_id)),
        select(ApiToken.id).where(ApiToken.organisation_id == organisation_id),
        select(AccountEvent.id).where(AccountEvent.organisation_id == organisation_id),
    ]
    return any(db.session.scalar(use.limit(1)) is not None for use in uses)


def _known_plan(slug: str) -> str:
    return slug if slug and len(slug) <= 50 and plan_by_slug(slug) is not None else ""


def _confirm_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="email-confirmation")


def confirmation_token(user: User, plan: str, now: datetime) -> str:
    """Signed like the reset links, tied to the password hash; it carries its issue time from the
    portal clock (so its age is judged on the same clock) and the plan picked before signing up."""
    return _confirm_serializer().dumps(
        {"u": user.id, "p": _password_fingerprint(user), "t": int(now.timestamp()), "plan": plan}
    )


def _enqueue_confirmation(user: User, now: datetime) -> None:
    """The link leads on to the plan the sign-up picked (kept on the account), if it is still offered."""
    plan = _known_plan(user.sign_up_plan or "")
    outbox.enqueue(
        user.email,
        f"Confirm your address for the {current_app.config['FIRM_NAME']} client portal",
        f"Someone (we hope you) signed up for the {current_app.config['FIRM_NAME']} client portal with this address.\n"
        f"Open this link within {CONFIRM_HOURS} hours to confirm it and log in:\n"
        + url_for("auth.confirm_email", token=confirmation_token(user, plan, now), _external=True)
        + "\n\nIf it was not you, ignore this email: without the link the account never opens.",
        CONFIRMATION_EMAIL,
        now,
    )


def check_confirmation(token: str, now: datetime) -> Confirmation:
    """The account and plan a confirmation link opens, or ConfirmationRefused saying why not."""
    try:
        data = _confirm_serializer().loads(token)
    except BadSignature:
        raise ConfirmationRefused("invalid") from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("t"), int):
        raise ConfirmationRefused("invalid")
    user = db.session.get(User, data["u"])
    if user is None or not user.active:
        raise ConfirmationRefused("invalid")
    if user.email_confirmed_at is not None:
        raise ConfirmationRefused("used")
    issued = datetime.fromtimestamp(data["t"], timezone.utc)
    if now - issued > CONFIRM_MAX_AGE or data.get("p") != _password_fingerprint(user):
        raise ConfirmationRefused("expired")
    plan = data.get("plan")
    return Confirmation(user=user, plan=plan if isinstance(plan, str) else "")


def confirm_email(token: str, password: str, now: datetime) -> Confirmation:
    """Confirm the address of a sign-up, once. The password chosen at sign-up is asked again, so a
    stranger who signed up first with someone else's address cannot have them open the stranger's
    account (nor can a forwarded link log anyone in)."""
    confirmation = check_confirmation(token, now)
    user = confirmation.user
    if not verify_password(user.password_hash, password):
        raise AccountError("That is not the password chosen when this address was signed up.", "password")
    user.email_confirmed_at = now
    user.last_login_at = now
    user.sign_up_plan = None
    registered = f"Your organisation {user.organisation.name} is registered. " if user.organisation else ""
    outbox.enqueue(
        user.email,
        f"Welcome to {current_app.config['FIRM_NAME']}",
        f"{registered}Choose a plan or report an emergency at "
        + url_for("client.dashboard", _external=True),
        "welcome",
        now,
    )
    db.session.commit()
    return confirmation


def authenticate(email: str, password: str, now: datetime) -> Optional[User]:
    """The account for this address and password, or None (the same None whatever was wrong).

    The right password of an account whose address was never confirmed raises EmailNotConfirmed:
    only someone who knows the password learns that. A removed account answers as a wrong password
    does: a leaked password of someone who left must not learn that the account exists, nor whom
    to ask for it (tests/security/test_authentication.py).
    """
    user = find_user(email)
    if user is None:
        burn_verification_time(password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    if user.email_confirmed_at is None:
        raise EmailNotConfirmed("Your address is not confirmed yet: open the link we emailed to it when you signed up.")
    user.last_login_at = now
    db.session.commit()
    return user


def admins_to_ask(organisation_id: Optional[int], without: Optional[int] = None) -> str:
    """The organisation's active client admins, named for someone who needs one ("Ada Admin
    (ada@acme.example) or Carl Admin (carl@acme.example)"); empty when there is none."""
    if organisation_id is None:
        return ""
    admins = db.session.scalars(
        select(User).where(User.organisation_id == organisation_id, User.role == Role.CLIENT_ADMIN,
                           User.active.is_(True)).order_by(User.full_name, User.email)
    ).all()
    names = [named(admin) for admin in admins if admin.id != without]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + (" or " + names[-1] if names else "")


def _sign_out_everywhere(user: User) -> None:
    """Bumping the version invalidates every session and remember-me cookie of this user."""
    user.session_version = (user.session_version or 0) + 1


def end_all_sessions(user: User, now: datetime) -> None:
    _sign_out_everywhere(user)
    account_log.record(user.organisation_id, "sessions_ended", f"{named(user)} signed out every session.", now,
                       actor=user, subject=user)
    db.session.commit()


def change_password(user: User, current_password: str, new_password: str, now: datetime) -> bool:
    """Set a new password for someone who knows the current one; False (nothing changed) when they do not.

    Why every session ends: a password is changed because it may be known to someone else, whose
    sessions and remember-me cookies must stop working with it. The caller starts a fresh session
    for the person who changed it.
    """
    if not verify_password(user.password_hash, current_password):
        return False
    _set_password(user, new_password, "password_changed", "changed their password; every other session was signed out",
                  now)
    return True


def _set_password(user: User, new_password: str, kind: str, what: str, now: datetime) -> None:
    """A new password ends every session of the account (`_sign_out_everywhere`) and is written to the
    organisation's account activity, in one commit."""
    user.password_hash = hash_password(new_password)
    _sign_out_everywhere(user)
    account_log.record(user.organisation_id, kind, f"{named(user)} {what}.", now, actor=user, subject=user)
    db.session.commit()


EMAIL_CHANGE_HOURS = 24
EMAIL_CHANGE_MAX_AGE = timedelta(hours=EMAIL_CHANGE_HOURS)
EMAIL_CHANGE_EMAIL = "email_change"  # the outbox kind of the link sent to the new address
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EmailChangeRefused(AccountError):
    """A link to change an address that cannot be used; `reason` is "invalid", "expired", "other_user" or "taken"."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


@dataclass(frozen=True)
class EmailChange:
    user: User
    old_email: str
    new_email: str


def _email_change_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="email-change")


def _account_fingerprint(user: User) -> str:
    """Ties a change link to the address and the session version it was asked under: once the address
    changes (which bumps the version) the link is dead, even if the address later changes back."""
    return hashlib.sha256(f"{user.email}\n{user.session_version}".encode()).hexdigest()[:16]


def email_change_token(user: User, new_email: str, now: datetime) -> str:
    """Signed, naming the account and the new address; its age is judged on the portal clock."""
    return _email_change_serializer().dumps(
        {"u": user.id, "e": new_email, "f": _account_fingerprint(user), "t": int(now.timestamp())}
    )


def request_email_change(user: User, new_email: str, current_password: str, now: datetime) -> str:
    """Email a link to the new address; the address changes only when it is opened. Returns the new address.

    Why a link: the new address must be proved by its owner, or a typo (or a hijacker) would move the
    account to an inbox nobody controls. An address that already has an account gets an email saying
    so instead of a link, and the caller answers alike, so this form tells nobody which addresses have
    accounts. A wrong password, the same address or an unusable one raise AccountError (nothing sent).
    """
    if not verify_password(user.password_hash, current_password):
        raise AccountError("That is not your current password. Nothing changed.", "current")
    email = normalise_email(new_email)
    if len(email) > 254 or not _ADDRESS.match(email):
        raise AccountError("Enter an address like name@company.com.", "email")
    if email == normalise_email(user.email):
        raise AccountError("That is already your address. Nothing changed.", "email")
    firm = current_app.config["FIRM_NAME"]
    existing = find_user(email)
    if existing is None:
        outbox.enqueue(
            email,
            f"Confirm your new address for the {firm} client portal",
            f"Someone asked to log in to the {firm} client portal with this address instead of their current one.\n"
            f"If it was you, open this link within {EMAIL_CHANGE_HOURS} hours, logged in to your account, "
            "to make the change:\n"
            + url_for("auth.confirm_email_change", token=email_change_token(user, email, now), _external=True)
            + "\n\nIf it was not you, ignore this email: nothing changes without the link, and only the account "
            "that asked can use it.",
            EMAIL_CHANGE_EMAIL,
            now,
        )
    elif existing.active:
        outbox.enqueue(
            email,
            "Someone tried to move a portal account to your address",
            f"Someone logged in to the {firm} client portal asked to use this address for their account, "
            "but this address already has an account of its own. Nothing was changed.\n\n"
            "If it was you, log in with this address instead:\n" + url_for("auth.login", _external=True)
            + "\n\nForgot your password? Choose a new one:\n" + url_for("auth.reset_request", _external=True)
            + "\n\nIf it was not you, ignore this email.",
            "email_change_exists",
            now,
        )
    db.session.commit()
    return email


def check_email_change(token: str, now: datetime, viewer: User, lock: bool = False) -> EmailChange:
    """The change a link asks for, or EmailChangeRefused saying why it cannot be made.

    `viewer` is who is logged in where the link was opened: only the account itself may use it, so
    a mistyped address's owner who receives the link cannot move someone else's account to their
    inbox, and nobody confirms a change for an account they did not mean. `lock` holds the account's
    row (PostgreSQL) until the commit, so two links confirmed at once cannot both pass the check.
    """
    try:
        data = _email_change_serializer().loads(token)
    except BadSignature:
        raise EmailChangeRefused("invalid") from None
    if (not isinstance(data, dict) or not isinstance(data.get("u"), int) or not isinstance(data.get("t"), int)
            or not isinstance(data.get("e"), str)):
        raise EmailChangeRefused("invalid")
    user = db.session.get(User, data["u"], with_for_update=lock, populate_existing=lock)
    if user is None or not user.active:
        raise EmailChangeRefused("invalid")
    if viewer.id != user.id:
        raise EmailChangeRefused("other_user")
    issued = datetime.fromtimestamp(data["t"], timezone.utc)
    if now - issued > EMAIL_CHANGE_MAX_AGE or data.get("f") != _account_fingerprint(user):
        raise EmailChangeRefused("expired")
    return EmailChange(user=user, old_email=user.email, new_email=data["e"])


def confirm_email_change(token: str, now: datetime, viewer: User) -> EmailChange:
    """Move the account to the new address, once, and tell the old address.

    Why every session ends: it makes the link single use, and whoever may have been using the account
    under its old address loses it. The notice to the old address lets its owner notice a hijack. The
    address is checked free again here (it may have been taken since the link was sent); the unique
    constraint settles a race. Invitations still waiting for the new address end: the address has an
    account now, so they could never be accepted.
    """
    change = check_email_change(token, now, viewer, lock=True)
    user, old, new = change.user, change.old_email, change.new_email
    taken = EmailChangeRefused("taken", f"{new} has been given to another account since the link was sent. "
                                        "Nothing changed: you still log in with your old address.")
    if find_user(new) is not None:
        raise taken
    before = named(user)
    user.email = new
    try:
        db.session.flush()
    except IntegrityError:  # taken by another request at the same moment
        db.session.rollback()
        raise taken from None
    user.email_confirmed_at = now  # the link reached the new inbox: the address is proved
    _sign_out_everywhere(user)
    _revoke_pending_invitations(new, now)
    account_log.record(user.organisation_id, "email_changed",
                       f"{before} changed their address to {new}; every other session was signed out.", now,
                       actor=user, subject=user)
    firm = current_app.config["FIRM_NAME"]
    outbox.enqueue(
        old,
        f"Your {firm} portal address was changed",
        f"The account that logged in to the {firm} client portal as {old} now logs in as {new}. "
        "Every session of it was signed out, and emails about it now go to the new address.\n\n"
        f"If you did not make this change, contact {firm} at once: someone who knew your password did.",
        "email_changed",
        now,
    )
    db.session.commit()
    return change


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def _password_fingerprint(user: User) -> str:
    """Ties a reset token to the current password hash: once used, the token is dead."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def _address_fingerprint(user: User) -> str:
    """Ties a reset link to the address it was sent to: once the account moves, the old inbox's link is dead."""
    return hashlib.sha256(normalise_email(user.email).encode()).hexdigest()[:16]


def request_password_reset(email: str, now: datetime) -> None:
    """Email a reset link if the account exists; the caller shows the same message either way."""
    user = find_user(email)
    if user is None or not user.active:
        return
    token = _reset_serializer().dumps({"u": user.id, "p": _password_fingerprint(user), "e": _address_fingerprint(user)})
    outbox.enqueue(
        user.email,
        "Reset your portal password",
        "Open this link within one hour to choose a new password:\n"
        + url_for("auth.reset_password", token=token, _external=True)
        + "\nIf you did not ask for this, ignore this email.",
        "password_reset",
        now,
    )
    db.session.commit()


def user_for_reset_token(token: str) -> Optional[User]:
    try:
        data = _reset_serializer().loads(token, max_age=int(RESET_MAX_AGE.total_seconds()))
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict):
        return None
    user = db.session.get(User, data.get("u"))
    # A colleague removed after asking for the link: it dies with their access, as the log-in does.
    if user is None or not user.active or data.get("p") != _password_fingerprint(user):
        return None
    # A link sent to an address the account has since left dies: that inbox may be why it moved.
    # (Links made before addresses could change carry no "e" and live out their hour.)
    if "e" in data and data["e"] != _address_fingerprint(user):
        return None
    return user


def reset_password(token: str, new_password: str, now: datetime) -> Optional[User]:
    user = user_for_reset_token(token)
    if user is None:
        return None
    if user.email_confirmed_at is None:
        user.email_confirmed_at = now  # the reset link reached the inbox: the address is proved
    _set_password(user, new_password, "password_reset", "set a new password with a reset link; every session was "
                  "signed out", now)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _revoke_pending_invitations(email: str, now: datetime, organisation_id: Optional[int] = None) -> int:
    """End the links not yet used for this address (of one organisation, or of all)."""
    query = select(Invitation).where(Invitation.email == email, Invitation.accepted_at.is_(None),
                                     Invitation.expires_at > now)
    if organisation_id is not None:
        query = query.where(Invitation.organisation_id == organisation_id)
    pending = db.session.scalars(query).all()
    for invitation in pending:
        invitation.expires_at = now
    return len(pending)


@dataclass(frozen=True)
class InvitationSent:
    invitation: Invitation
    replaced: int  # earlier links for the same address that no longer work


def invite_colleague(admin: User, email: str, role: str, now: datetime) -> InvitationSent:
    """Invite a colleague; inviting the same address again sends a fresh link and ends the earlier
    one, so one person never holds two live invitations."""
    if role not in Role.CLIENT:
        raise AccountError("Choose member or admin.", "role")
    email = normalise_email(email)
    existing = find_user(email)
    if existing is not None and not existing.active and existing.organisation_id == admin.organisation_id:
        raise AccountError(f"{existing.email} no longer has access: restore it in the list above.", "email")
    if existing is not None:
        raise AccountError("That address already has an account; ask the firm to move it.", "email")
    replaced = _revoke_pending_invitations(email, now, admin.organisation_id)
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        organisation_id=admin.organisation_id,
        email=email,
        role=role,
        token_hash=_token_hash(token),
        invited_by_id=admin.id,
        created_at=now,
        expires_at=now + INVITE_LIFETIME,
    )
    db.session.add(invitation)
    account_log.record(admin.organisation_id, "invited",
                       f"{named(admin)} invited {email} as {Role.LABELS[role].lower()}"
                       + (" (the earlier link no longer works)." if replaced else "."), now, actor=admin)
    outbox.enqueue(
        email,
        f"{admin.full_name or admin.email} invites you to the {admin.organisation.name} IT portal",
        "Follow this link within 7 days to set your password and follow your tickets:\n"
        + url_for("auth.accept_invitation", token=token, _external=True),
        "invitation",
        now,
    )
    db.session.commit()
    return InvitationSent(invitation, replaced)


def open_invitation(token: str, now: datetime) -> Optional[Invitation]:
    invitation = db.session.scalars(select(Invitation).where(Invitation.token_hash == _token_hash(token))).first()
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= now:
        return None
    if find_user(invitation.email) is not None:  # joined through another invitation meanwhile
        return None
    return invitation


def accepted_by(token: str, user: User) -> Optional[Invitation]:
    """The invitation behind `token` if `user` is the one who accepted it: the join form sent twice
    (a double click, or Back and send) is a repeat of a join that went through, not a dead link."""
    invitation = db.session.scalars(select(Invitation).where(Invitation.token_hash == _token_hash(token))).first()
    if invitation is None or invitation.accepted_at is None or invitation.email != user.email:
        return None
    return invitation


def accept_invitation(token: str, full_name: str, password: str, now: datetime) -> Optional[User]:
    invitation = open_invitation(token, now)
    if invitation is None or find_user(invitation.email) is not None:
        return None
    user = User(
        email=invitation.email,
        full_name=full_name.strip(),
        password_hash=hash_password(password),
        role=invitation.role,
        organisation_id=invitation.organisation_id,
        created_at=now,
        email_confirmed_at=now,  # the invitation link reached this inbox
    )
    invitation.accepted_at = now
    _revoke_pending_invitations(invitation.email, now)
    db.session.add(user)
    db.session.flush()
    account_log.record(user.organisation_id, "joined",
                       f"{named(user)} accepted the invitation and joined as {Role.LABELS[user.role].lower()}.", now,
                       actor=user, subject=user)
    db.session.commit()
    return user


# --- a client admin's colleagues ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColleagueChange:
    """What an admin's action did; `changed` is False when it had already been done (a double submit)."""

    user: User
    changed: bool
    invitations_cancelled: tuple[str, ...] = ()  # addresses a removed person had invited, whose links now end


def colleague(admin: User, user_id: int) -> Optional[User]:
    """A person of the admin's organisation, or None: another organisation's people and staff do not exist here."""
    user = db.session.get(User, user_id)
    if user is None or admin.organisation_id is None or user.organisation_id != admin.organisation_id:
        return None
    return user


def _lock_organisation(organisation_id: int) -> None:
    """Serialise admin changes of one organisation (PostgreSQL row lock; SQLite serialises writers anyway):
    two admins demoting each other at once must not leave the organisation with none."""
    db.session.get(Organisation, organisation_id, with_for_update=True, populate_existing=True)


def _other_active_admins(user: User) -> int:
    return db.session.scalar(
        select(func.count()).select_from(User).where(
            User.organisation_id == user.organisation_id, User.role == Role.CLIENT_ADMIN,
            User.active.is_(True), User.id != user.id,
        )
    ) or 0


def _last_admin_message(user: User) -> str:
    name = user.organisation.name if user.organisation else "The organisation"
    return f"{name} must keep at least one active admin: make someone else admin first."


def removal_refusal(admin: User, user: User) -> Optional[str]:
    """Why the admin may not remove `user`, or None; the confirmation page asks it before offering the button."""
    if user.id == admin.id:
        return "You cannot remove your own access: ask another admin to do it."
    if user.active and user.role == Role.CLIENT_ADMIN and _other_active_admins(user) == 0:
        return _last_admin_message(user)
    return None


def remove_colleague(admin: User, user_id: int, now: datetime) -> Optional[ColleagueChange]:
    """Close a colleague's account and sign out every session of it at once; None if no such colleague (404).

    Why: someone who left must lose access to the tickets and the emergency form now, not when their
    cookie expires. Their tickets stay with the organisation (emails about them go to the admins).
    API tokens belong to the organisation, not to a person, so they keep working. Invitations they
    sent and nobody accepted yet end too: a link they handed out must not let someone in after them.
    """
    user = colleague(admin, user_id)
    if user is None:
        return None
    _lock_organisation(user.organisation_id)
    problem = removal_refusal(admin, user)
    if problem:
        raise AccountError(problem)
    if not user.active:
        return ColleagueChange(user, changed=False)
    user.active = False
    _sign_out_everywhere(user)  # so cookies copied before stay dead even if access is restored later
    account_log.record(user.organisation_id, "removed",
                       f"{named(admin)} removed the access of {named(user)}; every session was signed out.", now,
                       actor=admin, subject=user)
    sent = db.session.scalars(select(Invitation).where(
        Invitation.invited_by_id == user.id, Invitation.organisation_id == user.organisation_id,
        Invitation.accepted_at.is_(None), Invitation.expires_at > now).order_by(Invitation.email)).all()
    for invitation in sent:
        invitation.expires_at = now
        account_log.record(user.organisation_id, "invitation_cancelled",
                           f"{named(admin)} cancelled the invitation {named(user)} had sent to {invitation.email}, "
                           "with their access.", now, actor=admin, subject=user)
    db.session.commit()
    return ColleagueChange(user, changed=True, invitations_cancelled=tuple(i.email for i in sent))


def restore_colleague(admin: User, user_id: int, now: datetime) -> Optional[ColleagueChange]:
    """Open a removed colleague's account again, with the role and password it had; None if no such colleague.

    Why: undoing a removal made by mistake should not need a new invitation and a new password.
    Sessions from before the removal stay signed out (their version was bumped).
    """
    user = colleague(admin, user_id)
    if user is None:
        return None
    if user.active:
        return ColleagueChange(user, changed=False)
    user.active = True
    account_log.record(user.organisation_id, "restored",
                       f"{named(admin)} restored the access of {named(user)}, as {Role.LABELS[user.role].lower()}.",
                       now, actor=admin, subject=user)
    db.session.commit()
    return ColleagueChange(user, changed=True)


def change_role(admin: User, user_id: int, role: str, now: datetime) -> Optional[ColleagueChange]:
    """Make a colleague member or admin; None if no such colleague. The organisation keeps one active admin."""
    user = colleague(admin, user_id)
    if user is None:
        return None
    if role not in Role.CLIENT:
        raise AccountError("Choose member or admin.", "role")
    if not user.active:
        raise AccountError(f"{named(user)} no longer has access: restore it first.", "role")
    _lock_organisation(user.organisation_id)
    if user.role == role:
        return ColleagueChange(user, changed=False)
    if user.role == Role.CLIENT_ADMIN and _other_active_admins(user) == 0:
        raise AccountError(_last_admin_message(user), "role")
    user.role = role
    account_log.record(user.organisation_id, "role_changed",
                       f"{named(admin)} made {named(user)} {Role.LABELS[role].lower()}.", now, actor=admin, subject=user)
    db.session.commit()
    return ColleagueChange(user, changed=True)


@dataclass(frozen=True)
class InvitationCancelled:
    invitation: Invitation
    changed: bool  # False when the link had already stopped working (a double submit, or it expired)


def cancel_invitation(admin: User, invitation_id: int, now: datetime) -> Optional[InvitationCancelled]:
    """End an invitation's link at once (it expires now, as a replaced one does); None if not the admin's (404)."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or admin.organisation_id is None or invitation.organisation_id != admin.organisation_id:
        return None
    if invitation.accepted_at is not None:
        raise AccountError(f"{invitation.email} already accepted this invitation: remove their access instead.")
    if invitation.expires_at <= now:
        return InvitationCancelled(invitation, changed=False)
    invitation.expires_at = now
    account_log.record(invitation.organisation_id, "invitation_cancelled",
                       f"{named(admin)} cancelled the invitation to {invitation.email}.", now, actor=admin)
    db.session.commit()
    return InvitationCancelled(invitation, changed=True)
