"""Organisation API tokens for the JSON API: shown once, stored hashed, revocable.

Why hashed: a leaked database must not hand out working tokens, so only the SHA-256 of the
token is kept (tokens are 256 random bits, so a fast hash is enough; no salt is needed).
The short prefix is kept in clear so the client admin can tell tokens apart on the account page.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import ApiToken, Role, User
from . import account_log
from .account_log import named
from .errors import Refusal

TOKEN_MARK = "nwp_"
PREFIX_LENGTH = 12
NAME_MAX = 100
LAST_USED_GRANULARITY = timedelta(minutes=1)


class ApiTokenError(Refusal):
    """A refused token change."""


@dataclass(frozen=True)
class IssuedToken:
    """The only moment the secret exists in clear: the page shows it once. `secret` is None when
    the same form was sent again: the token exists, and its secret was shown to the first answer."""

    token: ApiToken
    secret: Optional[str]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _require_admin(actor: User, organisation_id: int) -> None:
    if actor.role != Role.CLIENT_ADMIN or actor.organisation_id != organisation_id:
        raise ApiTokenError("Only an admin of this organisation can manage its API tokens.")


def create(organisation_id: int, name: str, actor: User, now: datetime,
           request_key: Optional[str] = None) -> IssuedToken:
    """Issue a token for one organisation; the caller shows `secret` once and forgets it.

    A `request_key` already used by this organisation returns its token without a secret: a second
    live token nobody saw the secret of would be a credential that is only ever leaked, never used.
    """
    _require_admin(actor, organisation_id)
    label = (name or "").strip()
    if not label:
        raise ApiTokenError("Give the token a name, e.g. the tool that will use it.", "name")
    if len(label) > NAME_MAX:
        raise ApiTokenError(f"Use at most {NAME_MAX} characters.", "name")
    # The same form with another name typed after Back is another request: it makes its own token.
    key = _digest(f"{request_key}\0{label}") if request_key else None
    earlier = _made_by(organisation_id, key)
    if earlier is not None:
        return IssuedToken(token=earlier, secret=None)
    secret = TOKEN_MARK + secrets.token_urlsafe(32)
    token = ApiToken(
        organisation_id=organisation_id,
        name=label,
        prefix=secret[:PREFIX_LENGTH],
        token_hash=_digest(secret),
        created_by_id=actor.id,
        created_at=now,
        request_key=key,
    )
    db.session.add(token)
    account_log.record(organisation_id, "token_created", f"{named(actor)} created the API token \u201c{label}\u201d.",
                       now, actor=actor)
    try:
        db.session.commit()
    except IntegrityError:  # the same form, sent twice at once: the other request made it
        db.session.rollback()
        earlier = _made_by(organisation_id, key)
        if earlier is None:
            raise
        return IssuedToken(token=earlier, secret=None)
    return IssuedToken(token=token, secret=secret)


def _made_by(organisation_id: int, key: Optional[str]) -> Optional[ApiToken]:
    if key is None:
        return None
    return db.session.scalars(select(ApiToken).where(
        ApiToken.organisation_id == organisation_id, ApiToken.request_key == key)).first()


def revoke(organisation_id: int, token_id: int, actor: User, now: datetime) -> Optional[ApiToken]:
    """Stop a token working at once; None when the organisation has no such token (the view answers 404)."""
    _require_admin(actor, organisation_id)
    token = db.session.get(ApiToken, token_id)
    if token is None or token.organisation_id != organisation_id:
        return None
    if token.revoked_at is None:
        token.revoked_at = now
        account_log.record(organisation_id, "token_revoked",
                           f"{named(actor)} revoked the API token \u201c{token.name}\u201d.", now, actor=actor)
        db.session.commit()
    return token


def tokens_for(organisation_id: int) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.organisation_id == organisation_id).order_by(ApiToken.id.desc())
        )
    )


def authenticate(secret: str, now: datetime) -> Optional[ApiToken]:
    """The live token matching `secret`, or None; records when it was last used.

    Why the minute granularity: a monitoring tool polling every few seconds should not turn
    every read into a database write.
    """
    if not secret or not secret.startswith(TOKEN_MARK) or len(secret) > 200:
        return None
    digest = _digest(secret)
    token = db.session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if token is None or not hmac.compare_digest(token.token_hash, digest) or token.revoked_at is not None:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_GRANULARITY:
        token.last_used_at = now
        db.session.commit()
    return token
