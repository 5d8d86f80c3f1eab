"""Who is calling the API: an organisation API token (Bearer) or the logged-in client's session.

Why two paths with different CSRF rules: a browser session carries cookies the browser sends on
its own, so session writes need the CSRF header; a Bearer token is never sent implicitly, so
token requests are exempt from CSRF but rate-limited per token.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

from flask import current_app, g, request
from flask_login import current_user

from .. import clock
from ..extensions import csrf
from ..models import ApiToken
from ..services import api_tokens

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Caller:
    organisation_id: int
    user_id: Optional[int]
    token: Optional[ApiToken]


class ApiAuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bearer_secret() -> Optional[str]:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def uses_token() -> bool:
    return bearer_secret() is not None


def rate_limit_key() -> str:
    """One bucket per presented token (hashed: the secret never reaches the limiter's storage)."""
    return "api-token:" + hashlib.sha256((bearer_secret() or "").encode()).hexdigest()


def identify() -> Caller:
    """Resolve the caller once per request (stored on `g.api_caller`), or raise ApiAuthError."""
    secret = bearer_secret()
    if secret is not None:
        token = api_tokens.authenticate(secret, clock.now())
        if token is None:
            raise ApiAuthError(401, "The API token is unknown or revoked.")
        return Caller(organisation_id=token.organisation_id, user_id=None, token=token)
    if not current_user.is_authenticated:
        raise ApiAuthError(401, "Log in or send an organisation API token (Authorization: Bearer <token>).")
    if not current_user.is_client or current_user.organisation_id is None:
        raise ApiAuthError(403, "The API serves client organisations; staff use the dispatch console.")
    if request.method in WRITE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()  # raises CSRFError (answered as JSON by the blueprint)
    return Caller(organisation_id=current_user.organisation_id, user_id=current_user.id, token=None)


def caller() -> Caller:
    return g.api_caller
