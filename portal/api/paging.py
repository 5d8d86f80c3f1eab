"""The cursor of the ticket listing: where the next page of resolved and closed tickets starts.

Why signed and bound to the organisation: a caller must treat the cursor as opaque, and one that
was changed, made up, or given to another organisation is refused (400) rather than read. The
listing is scoped to the caller's organisation anyway, so even a forged place reveals nothing of
another's tickets.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

from ..services.ticket_status import DoneKey

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SALT = "api-tickets-cursor"
LIMIT_DEFAULT = 200  # the listing's cap before paging existed: callers that send no limit see the same page
LIMIT_MAX = 500
CURSOR_MAX_LENGTH = 200


class PagingError(ValueError):
    """A bad paging parameter: `field` is the query parameter at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def parse_limit(raw: str | None) -> int:
    """Digits only (no sign, spaces, exponent or other scripts' digits), from 1 to LIMIT_MAX."""
    if raw is None:
        return LIMIT_DEFAULT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= LIMIT_MAX):
        raise PagingError("limit", f"Use a whole number from 1 to {LIMIT_MAX} (resolved and closed tickets a page; "
                                   f"{LIMIT_DEFAULT} when not given).")
    return int(raw)


def encode(organisation_id: int, key: DoneKey) -> str:
    micros = (key.resolved_at - EPOCH) // timedelta(microseconds=1)
    return _serializer().dumps([organisation_id, micros, key.ticket_id])


def decode(organisation_id: int, cursor: str) -> DoneKey:
    """The place a cursor this API gave the organisation stands for; PagingError for any other text."""
    refused = PagingError("cursor", "This cursor was not given to your organisation by this API, or it was changed; "
                                    "use the next_cursor of a previous page as it is, or start again without one.")
    if not cursor or len(cursor) > CURSOR_MAX_LENGTH:
        raise refused
    try:
        payload = _serializer().loads(cursor)
    except (BadData, UnicodeError, ValueError):
        raise refused from None
    if not (isinstance(payload, list) and len(payload) == 3
            and all(isinstance(part, int) and not isinstance(part, bool) for part in payload)):
        raise refused
    owner, micros, ticket_id = payload
    if owner != organisation_id:
        raise refused
    try:
        return DoneKey(EPOCH + timedelta(microseconds=micros), ticket_id)
    except OverflowError:
        raise refused from None
