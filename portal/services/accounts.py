"""Accounts: sign-up, log-in checks, password reset and invitations."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from flask import current_app, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select

from ..auth import burn_verification_time, hash_password, verify_password
from ..extensions import db
from ..models import Invitation, Organisation, Role, User
from . import outbox

RESET_MAX_AGE = timedelta(hours=1)
INVITE_LIFETIME = timedelta(days=7)


class AccountError(Exception):
    """A refusal with a message fit to show the user, and the field it concerns."""

    def __init__(self, message: str, field: Optional[str] = None):
        super().__init__(message)
        self.field = field


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


def sign_up(data: SignUp, now: datetime) -> Optional[User]:
    """Create the organisation and its client admin.

    An address already registered gets an email instead of an error page, so the
    sign-up form never tells a stranger which addresses have accounts.
    """
    email = normalise_email(data.email)
    existing = find_user(email)
    if existing is not None:
        outbox.enqueue(
            email,
            "Someone tried to sign up with your address",
            "An account already exists for this address. If this was you, log in or reset your password:\n"
            + url_for("auth.reset_request", _external=True),
            "signup_exists",
            now,
        )
        db.session.commit()
        return None
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
    )
    db.session.add_all([organisation, user])
    outbox.enqueue(
        email,
        f"Welcome to {current_app.config['FIRM_NAME']}",
        f"Your organisation {organisation.name} is registered. Choose a plan or report an emergency at "
        + url_for("client.dashboard", _external=True),
        "welcome",
        now,
    )
    db.session.commit()
    return user


def authenticate(email: str, password: str, now: datetime) -> Optional[User]:
    user = find_user(email)
    if user is None:
        burn_verification_time(password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    user.last_login_at = now
    db.session.commit()
    return user


def end_all_sessions(user: User) -> None:
    """Bumping the version invalidates every session and remember-me cookie of this user."""
    user.session_version = (user.session_version or 0) + 1
    db.session.commit()


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def _password_fingerprint(user: User) -> str:
    """Ties a reset token to the current password hash: once used, the token is dead."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def request_password_reset(email: str, now: datetime) -> None:
    """Email a reset link if the account exists; the caller shows the same message either way."""
    user = find_user(email)
    if user is None or not user.active:
        return
    token = _reset_serializer().dumps({"u": user.id, "p": _password_fingerprint(user)})
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
    if user is None or data.get("p") != _password_fingerprint(user):
        return None
    return user


def reset_password(token: str, new_password: str) -> Optional[User]:
    user = user_for_reset_token(token)
    if user is None:
        return None
    user.password_hash = hash_password(new_password)
    user.session_version = (user.session_version or 0) + 1
    db.session.commit()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_colleague(admin: User, email: str, role: str, now: datetime) -> Invitation:
    if role not in Role.CLIENT:
        raise AccountError("Choose member or admin.", "role")
    email = normalise_email(email)
    if find_user(email) is not None:
        raise AccountError("That address already has an account; ask the firm to move it.", "email")
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
    outbox.enqueue(
        email,
        f"{admin.full_name or admin.email} invites you to {admin.organisation.name}'s IT portal",
        "Follow this link within 7 days to set your password and follow your tickets:\n"
        + url_for("auth.accept_invitation", token=token, _external=True),
        "invitation",
        now,
    )
    db.session.commit()
    return invitation


def open_invitation(token: str, now: datetime) -> Optional[Invitation]:
    invitation = db.session.scalars(select(Invitation).where(Invitation.token_hash == _token_hash(token))).first()
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at < now:
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
    )
    invitation.accepted_at = now
    db.session.add(user)
    db.session.commit()
    return user
