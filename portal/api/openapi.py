"""The OpenAPI 3.1 description of /api/v1, written by hand so it reads as documentation.

Why by hand: the API is small and its words (position, ahead, eta, sla) need explaining more
than generating; tests check real responses against these schemas so the two cannot drift.
"""
from __future__ import annotations

from typing import Any

from .paging import CURSOR_MAX_LENGTH, LIMIT_DEFAULT, LIMIT_MAX

NULLABLE_DATETIME = {"type": ["string", "null"], "format": "date-time"}

TICKET = {
    "type": "object",
    # Every field is always sent (null when it does not apply), so every one is required.
    "required": ["id", "title", "status", "position", "ahead", "eta", "sla", "client_deadline", "technician", "reasons",
                 "follows_ticket_id", "opened_at", "resolved_at", "updated_at"],
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "status": {
            "type": "string",
            "enum": ["new", "assigned", "en_route", "on_site", "in_progress", "waiting_on_client", "resolved", "closed"],
        },
        "position": {
            "type": ["integer", "null"], "minimum": 1,
            "description": "Place in the queue, 1 = next to be started; null once work has started or the ticket is done.",
        },
        "ahead": {"type": ["integer", "null"], "minimum": 0, "description": "How many tickets will be started before this one."},
        "eta": {
            "type": "object",
            "required": ["median", "p90", "kind"],
            "properties": {
                "median": {**NULLABLE_DATETIME, "description": "Expected arrival (on site) or remote start; half of the time sooner."},
                "p90": {**NULLABLE_DATETIME, "description": "Nine times out of ten by then."},
                "kind": {"type": "string", "enum": ["arrival", "remote_start"]},
            },
        },
        "sla": {
            "type": "object",
            "required": ["due_at", "state", "best_effort", "response_missed_due_at", "response_due_at", "at_risk"],
            "properties": {
                "due_at": {**NULLABLE_DATETIME, "description": "The contract's deadline; for break/fix the best-effort time, never a promise."},
                "state": {"type": ["string", "null"], "enum": ["on_track", "at_risk", "met", "breached", "best_effort", None]},
                "best_effort": {"type": "boolean"},
                "response_missed_due_at": {
                    **NULLABLE_DATETIME,
                    "description": "Set when the remote response target was missed while the on-site deadline "
                                   "(due_at) is still ahead: state is then 'breached' for the response.",
                },
                "response_due_at": {
                    **NULLABLE_DATETIME,
                    "description": "Set while the remote response is still owed on an on-site ticket: the nearer "
                                   "promise, before the on-site deadline (due_at).",
                },
                "at_risk": {
                    "type": ["object", "null"],
                    "description": "The promise the dispatch plan expects to slip, while the ticket is open; null "
                                   "while every promise still owed is on track.",
                    "required": ["promise", "due_at", "expected_at", "likely_missed"],
                    "properties": {
                        "promise": {"type": "string", "enum": ["response", "arrival"],
                                    "description": "'response': the technician is expected to set off (or start "
                                                   "remote work) after the response is due; 'arrival': to reach "
                                                   "the site after the on-site deadline."},
                        "due_at": {"type": "string", "format": "date-time"},
                        "expected_at": {**NULLABLE_DATETIME,
                                        "description": "When the technician is expected to set off (response) "
                                                       "or arrive (arrival); the median estimate."},
                        "likely_missed": {"type": "boolean",
                                          "description": "true: the median estimate is past the due time; false: "
                                                         "only the 90% bound is."},
                    },
                },
            },
        },
        "client_deadline": {**NULLABLE_DATETIME,
                            "description": "Your own deadline given when the ticket was opened, while it is open."},
        "technician": {"type": ["string", "null"], "description": "First name of the assigned technician, once known."},
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "Plain-words reasons for the place."},
        "follows_ticket_id": {"type": ["integer", "null"],
                              "description": "The resolved or closed ticket this one reports again, if any."},
        "opened_at": {"type": "string", "format": "date-time"},
        "resolved_at": {**NULLABLE_DATETIME, "description": "When it was resolved or closed; null while open."},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

TICKET_INPUT = {
    "type": "object",
    "required": ["title", "impact"],
    "additionalProperties": False,  # an unknown field (a typo) answers 400 naming it
    "properties": {
        "title": {"type": "string", "maxLength": 200, "description": "What is broken, in a line."},
        "description": {"type": "string"},
        "category": {"type": "string", "description": "e.g. network, hardware, software, email, security, other."},
        "impact": {"type": "string", "enum": ["company", "department", "person"], "description": "Who is affected."},
        "revenue_at_risk_per_hour": {"type": ["number", "string"], "minimum": 0, "description": "Money lost per hour, roughly."},
        "client_deadline": {"type": ["string", "null"], "description": "A deadline today, HH:MM in the organisation's time zone, or an ISO 8601 date-time."},
        "onsite_needed": {"type": "boolean"},
        "safety_critical": {"type": "boolean"},
        "follows_ticket_id": {"type": ["integer", "string", "null"],
                              "description": "Your resolved or closed ticket whose problem is back (42 or \"#42\"); "
                                             "an open one answers 400: comment on it instead."},
    },
}

ERRORS = {
    "type": "object",
    "required": ["errors"],
    "properties": {"errors": {"type": "object", "additionalProperties": {"type": "string"},
                              "description": "Field name -> what is wrong with it."}},
}


def _error_response(text: str) -> dict[str, Any]:
    return {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}}


# Every operation can answer these: a staff session (the API is for client organisations) and the
# per-token and per-address rate limits apply to the whole API, reads of one ticket included.
COMMON_ERRORS = {
    "403": _error_response("Logged in as staff: the API serves client organisations"),
    "429": {**_error_response("Too many requests with this token (or from this address)"),
            "headers": {"Retry-After": {"description": "Seconds until a request is allowed again.",
                                        "schema": {"type": "integer", "minimum": 0}}}},
}


def openapi_document() -> dict[str, Any]:
    ticket_ref = {"$ref": "#/components/schemas/Ticket"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Client portal API",
            "version": "1.0.0",
            "description": "Your organisation's tickets: place in the queue, arrival estimate, SLA and reasons. "
                           "Authenticate with an organisation API token (created by a client admin on the account page) "
                           "as `Authorization: Bearer <token>`, or with the logged-in session plus the X-CSRFToken header for writes.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerToken": []}, {"session": []}],
        "paths": {
            "/tickets": {
                "get": {
                    "summary": "Your organisation's tickets: every open one in queue order first, then the "
                               "resolved and closed ones, most recently ended first, a page at a time",
                    "description": "The first page lists every open ticket (with its place in the queue) and the "
                                   "`limit` most recently resolved or closed. When older ones exist, `next_cursor` "
                                   "and the `Link` header (rel=\"next\") give the next page, which lists only "
                                   "resolved and closed tickets. Pages are ordered by the time each ticket ended, "
                                   "then by id, so walking them neither repeats nor skips a ticket; one that ends "
                                   "meanwhile goes to the top of the first page. To catch up later, read from the "
                                   "first page until you reach a ticket you already have.",
                    "parameters": [
                        {"name": "state", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": ["all", "open", "done"], "default": "all"}},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": LIMIT_DEFAULT},
                         "description": "Resolved and closed tickets a page (open tickets are always all listed, "
                                        "on the first page). Anything else answers 400 naming limit."},
                        {"name": "cursor", "in": "query", "required": False,
                         "schema": {"type": "string", "maxLength": CURSOR_MAX_LENGTH},
                         "description": "The next_cursor of the previous page, sent as it is (it is opaque). A cursor "
                                        "that was changed or given to another organisation answers 400 naming cursor, "
                                        "as does one sent with state=open (open tickets all fit on the first page)."},
                    ],
                    "responses": {
                        "200": {"description": "The tickets",
                                "headers": {"Link": {
                                    "description": "RFC 8288 link to the next page, "
                                                   "`</api/v1/tickets?cursor=...>; rel=\"next\"`, when there is one "
                                                   "(your state and limit, with next_cursor as the cursor).",
                                    "schema": {"type": "string"}}},
                                "content": {"application/json": {"schema": {
                            "type": "object", "required": ["tickets", "queue_length", "done_limit", "more_done",
                                                           "next_cursor"],
                            "properties": {"tickets": {"type": "array", "items": ticket_ref},
                                           "queue_length": {"type": "integer", "minimum": 0},
                                           "done_limit": {"type": "integer", "minimum": 1,
                                                          "description": "At most this many resolved or closed tickets "
                                                                         "are listed on this page (the limit asked "
                                                                         "for), the most recently ended first; "
                                                                         "open tickets are always all listed."},
                                           "more_done": {"type": "boolean",
                                                         "description": "Older resolved or closed tickets exist and "
                                                                        "are not listed on this page: read them with "
                                                                        "next_cursor."},
                                           "next_cursor": {"type": ["string", "null"],
                                                           "description": "Send as `cursor` for the next page; null on "
                                                                          "the last page."}}}}}},
                        "304": {"description": "Unchanged since the ETag sent in If-None-Match"},
                        "400": _error_response("Bad query parameter (state, limit or cursor), named in errors"),
                        "401": _error_response("Not authenticated"),
                        **COMMON_ERRORS,
                    },
                },
                "post": {
                    "summary": "Open a ticket (same fields and validation as the emergency form)",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "maxLength": 64},
                                    "description": "Repeat a request with the same key and only one ticket is opened. "
                                                   "A key replays only the request it was first sent with: another "
                                                   "ticket's fields with it answer 422."}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TicketInput"}}}},
                    "responses": {
                        "201": {"description": "Opened", "content": {"application/json": {"schema": ticket_ref}}},
                        "200": {"description": "Already opened with this Idempotency-Key", "content": {"application/json": {"schema": ticket_ref}}},
                        "400": _error_response("A field is wrong; nothing was opened"),
                        "401": _error_response("Not authenticated"),
                        "413": _error_response("The body is larger than the portal accepts; nothing was opened"),
                        "422": _error_response("The Idempotency-Key was already used for a different ticket; nothing was opened"),
                        **COMMON_ERRORS,
                    },
                },
            },
            "/tickets/{ticket_id}": {
                "get": {
                    "summary": "One ticket",
                    "parameters": [{"name": "ticket_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {"description": "The ticket", "content": {"application/json": {"schema": ticket_ref}}},
                        "304": {"description": "Unchanged since the ETag sent in If-None-Match"},
                        "401": _error_response("Not authenticated"),
                        "404": _error_response("No such ticket for your organisation"),
                        **COMMON_ERRORS,
                    },
                },
            },
        },
        "components": {
            "schemas": {"Ticket": TICKET, "TicketInput": TICKET_INPUT, "Errors": ERRORS},
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer", "description": "Organisation API token"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }
