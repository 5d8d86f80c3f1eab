"""Authentication helpers: password hashing, the session loader and role gates."""
from __future__ import annotations

from functools import wraps
from typing import Callable, Optional, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import abort
from flask_login import current_user, login_required
from zxcvbn import zxcvbn

from ..extensions import db
from ..models import User

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
F = TypeVar("F", bound=Callable)


def safe_next(target: Optional[str]) -> Optional[str]:
    """A `next` address to go back to, if it is a path on this site (never another host)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")


def burn_verification_time(password: str) -> None:
    """Spend the time of a real check when there is no such account (no enumeration by timing)."""
    verify_password(_DUMMY_HASH, password)


# zxcvbn raises past this many characters (a 73-character passphrase answered 500, found by the
# fuzz test); the first 72 are judged, and more characters only make a password stronger.
ZXCVBN_MAX_LENGTH = 72


def password_problem(password: str, user_inputs: tuple[str, ...] = ()) -> Optional[str]:
    """A plain-words reason the password is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 200:
        return "Use at most 200 characters."
    if zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[u for u in user_inputs if u])["score"] < 2:
        return "This password is too common or easy to guess; choose a longer or less predictable one."
    return None


def load_user(session_id: str) -> Optional[User]:
    try:
        user_id, version = (int(part) for part in session_id.split(":"))
    except ValueError:
        return None
    user = db.session.get(User, user_id)
    if user is None or user.session_version != version or not user.active:
        return None
    return user


def roles_required(*roles: str) -> Callable[[F], F]:
    """Log-in required, then 403 unless the user has one of `roles`."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
