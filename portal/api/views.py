"""JSON API v1: list, read and open tickets for the caller's organisation.

Views parse and answer; validation is the form's (`tickets.parse_ticket_input`) and the body is
the status page's read model (`ticket_status`), so the API, the page and live.json agree.
"""
from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .. import clock
from ..extensions import csrf, db, limiter
from ..models import Organisation
from ..services import ticket_status, tickets
from ..services.text import unstorable
from . import auth, paging
from .openapi import TICKET_INPUT, openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # session writes are checked in auth.identify(); token requests need no CSRF

TOKEN_RATE = "120/minute"
ADDRESS_RATE = "600/minute"

limiter.limit(TOKEN_RATE, key_func=auth.rate_limit_key, exempt_when=lambda: not auth.uses_token())(bp)
limiter.limit(ADDRESS_RATE, exempt_when=lambda: not auth.uses_token())(bp)


def _error(status: int, errors: dict[str, str]):
    response = jsonify({"errors": errors})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="portal-api"'
    return response


@bp.before_request
def authenticate():
    if request.endpoint == "api.openapi":
        return None
    try:
        g.api_caller = auth.identify()
    except auth.ApiAuthError as error:
        return _error(error.status, {"auth": error.message})
    return None


@bp.errorhandler(CSRFError)
def csrf_failed(error: CSRFError):
    return _error(400, {"csrf_token": f"{error.description} Send it in the X-CSRFToken header."})


API_PATHS = "/api/"


def answers_in_json() -> bool:
    """Any path under /api/ is the API's, matched or not: routing's 404 and 405 happen before a blueprint is known."""
    return request.path.startswith(API_PATHS) or request.path == API_PATHS.rstrip("/")


def http_error(error: HTTPException):
    """Every API error is JSON, including 404, 405, 413, 429 and 500 (the app's HTML pages are for browsers).

    The app's error handler calls it for every path under /api/ (`answers_in_json`), so an
    unknown path or method gets the API's shape too.
    """
    code = error.code or 500
    messages = {
        404: "There is no such ticket." if request.url_rule is not None
        else "There is nothing at this address; the API is described at /api/v1/openapi.json.",
        429: "Too many requests with this token; slow down and retry in a minute.",
        500: "Something went wrong on our side; retry shortly.",
    }
    response = _error(code, {"request": messages.get(code, error.description or error.name)})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


TICKET_FIELDS = tuple(TICKET_INPUT["properties"])


def _unknown_field(payload: dict) -> dict[str, str]:
    """A field the API does not know, named with the one it is likely a typo of: ignored, "on_site_needed"
    opened a remote ticket with no arrival deadline while the caller believed it asked for a visit."""
    for name in payload:
        if name not in TICKET_FIELDS:
            guess = difflib.get_close_matches(str(name), TICKET_FIELDS, n=1)
            hint = f"did you mean {guess[0]}?" if guess else "the fields are " + ", ".join(TICKET_FIELDS) + "."
            return {str(name)[:100]: f"Unknown field; {hint} Nothing was opened."}
    return {}


def _conditional(response):
    """ETag on reads: a tool polling an unchanged ticket gets 304 and no body."""
    response.headers["Cache-Control"] = "no-cache, private"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@bp.get("/tickets")
def list_tickets():
    """Open tickets (all, in queue order) on the first page, then resolved and closed ones, newest ended
    first, `limit` a page; `cursor` (the previous page's next_cursor) reads the next page of those."""
    state = request.args.get("state", "all")
    choices = {"all": None, "open": True, "done": False}
    if state not in choices:
        return _error(400, {"state": "Use one of: all, open, done."})
    organisation_id = auth.caller().organisation_id
    try:
        limit = paging.parse_limit(request.args.get("limit"))
        cursor = request.args.get("cursor")
        after = None if cursor is None else paging.decode(organisation_id, cursor)
    except paging.PagingError as error:
        return _error(400, {error.field: error.message})
    if after is not None and state == "open":
        return _error(400, {"cursor": "Open tickets are all listed on one page; a cursor pages through "
                                      "resolved and closed ones (state=all or state=done)."})
    listing = ticket_status.tickets_for(organisation_id, open_only=choices[state], done_limit=limit, after=after)
    next_cursor = paging.encode(organisation_id, listing.next_after) if listing.next_after is not None else None
    response = jsonify({"tickets": [v.as_json() for v in listing.views],
                        "queue_length": ticket_status.queue_length(),
                        "done_limit": listing.done_limit, "more_done": listing.more_done,
                        "next_cursor": next_cursor})
    if next_cursor is not None:
        query = {"state": state} if "state" in request.args else {}
        if "limit" in request.args:
            query["limit"] = str(limit)
        query["cursor"] = next_cursor
        response.headers["Link"] = f'<{bp.url_prefix}/tickets?{urlencode(query)}>; rel="next"'
    return _conditional(response)


@bp.get("/tickets/<int:ticket_id>")
def get_ticket(ticket_id: int):
    """Polled by tools: the change tag (one small query) answers an unchanged ticket with 304 before loading it."""
    organisation_id = auth.caller().organisation_id
    tag = ticket_status.change_tag(organisation_id, ticket_id)
    if tag is None:
        return _error(404, {"ticket": "There is no such ticket."})
    tag = f"api-{tag}"
    response = Response(status=304)
    if not request.if_none_match.contains(tag):
        view = ticket_status.ticket_view(organisation_id, ticket_id)
        if view is None:
            return _error(404, {"ticket": "There is no such ticket."})
        response = jsonify(view.as_json())
    response.headers["Cache-Control"] = "no-cache, private"
    response.set_etag(tag)
    return response


def _json_body() -> Any:
    """The request's JSON, or None when it is not JSON.

    Why RecursionError: brackets nested a few thousand deep (far inside the size cap) exhaust the
    JSON parser's recursion, which `silent` does not cover: the API answered 500.
    """
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


@bp.post("/tickets")
def create_ticket():
    payload: Any = _json_body()
    if not isinstance(payload, dict):
        return _error(400, {"body": "Send a JSON object with the ticket's fields (Content-Type: application/json)."})
    unknown = _unknown_field(payload)
    if unknown:
        return _error(400, unknown)
    who = auth.caller()
    organisation = db.session.get(Organisation, who.organisation_id)
    now = clock.now()
    try:
        data = tickets.parse_ticket_input(payload, organisation.timezone, now)
    except tickets.TicketError as error:
        return _error(400, {error.field or "body": error.message})
    key = request.headers.get("Idempotency-Key", "").strip() or None
    if key is not None and len(key) > 64:
        return _error(400, {"Idempotency-Key": "Use at most 64 characters."})
    problem = unstorable(key)
    if problem:
        return _error(400, {"Idempotency-Key": problem})
    try:
        opened = tickets.open_ticket(who.organisation_id, who.user_id, data, now, idempotency_key=key)
    except tickets.IdempotencyKeyReused as error:
        return _error(422, {"Idempotency-Key": error.message})
    except tickets.TicketError as error:
        return _error(400, {error.field or "body": error.message})
    view = ticket_status.ticket_view(who.organisation_id, opened.ticket.id)
    response = jsonify(view.as_json())
    response.status_code = 201 if opened.created else 200
    response.headers["Location"] = f"{bp.url_prefix}/tickets/{opened.ticket.id}"
    return response
