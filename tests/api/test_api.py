"""JSON API v1: the organisation's tickets by session or Bearer token, the form's validation,
JSON errors naming the field, privacy, CSRF for session writes, rate limits, and the OpenAPI
document checked against real responses."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.extensions import db, limiter
from portal.models import Ticket, TicketStatus
from portal.services import api_tokens, tickets
from tests.client.helpers import add_done_tickets, set_clock, two_organisations, with_technician
from tests.conftest import login, make_user

TUESDAY_10_NY = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
BODY = {
    "title": "Core switch down",
    "description": "Nobody can reach the file server.",
    "category": "network",
    "impact": "company",
    "revenue_at_risk_per_hour": 2500,
    "client_deadline": "17:00",
    "onsite_needed": True,
    "safety_critical": False,
}


@pytest.fixture
def orgs(app, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    result = two_organisations()
    with_technician()
    return result


def bearer(org_id: int, admin) -> dict[str, str]:
    issued = api_tokens.create(org_id, "monitoring", admin, TUESDAY_10_NY)
    return {"Authorization": f"Bearer {issued.secret}"}


def ticket_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Ticket))


# --- a loose OpenAPI 3.1 checker: types (with null), required keys, enums, $refs ---------------

def resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        path = schema["$ref"].lstrip("#/").split("/")
        node: Any = document
        for part in path:
            node = node[part]
        schema = node
    return schema


def check(value: Any, schema: dict, document: dict, where: str = "$") -> None:
    schema = resolve(schema, document)
    types = schema.get("type")
    if types is not None:
        allowed = types if isinstance(types, list) else [types]
        python = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
                  "boolean": bool, "null": type(None)}
        ok = any(isinstance(value, python[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                 for t in allowed)
        assert ok, f"{where}: {value!r} is not {allowed}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, str) and schema.get("format") == "date-time":
        assert re.search(r"(\+|-)\d\d:\d\d$|Z$", value), f"{where}: {value} has no offset"
        datetime.fromisoformat(value)
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                check(value[key], sub, document, f"{where}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                check(item, extra, document, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(item, schema["items"], document, f"{where}[{i}]")


def check_response(document: dict, path: str, method: str, response) -> None:
    operation = document["paths"][path][method]
    spec = operation["responses"][str(response.status_code)]
    check(response.get_json(), spec["content"]["application/json"]["schema"], document)


# --- tests -----------------------------------------------------------------------------------

def test_openapi_document_is_public_and_well_formed(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    assert {"/tickets", "/tickets/{ticket_id}"} <= set(document["paths"])
    assert set(document["paths"]["/tickets"]) == {"get", "post"}
    assert "bearerToken" in document["components"]["securitySchemes"]


def test_the_document_names_every_field_of_a_ticket_as_always_present(client, orgs):
    """A client generated from the document (typed models) must find each field the API always sends
    declared, and declared as always there: one left out of `required` types as optional, and one
    missing from `properties` is unknown to it."""
    acme, admin, _, _ = orgs
    document = client.get("/api/v1/openapi.json").get_json()
    body = client.post("/api/v1/tickets", json=BODY, headers=bearer(acme.id, admin)).get_json()

    def declared(value: dict, schema: dict, where: str) -> None:
        schema = resolve(schema, document)
        assert set(value) == set(schema["properties"]), f"{where}: sent {sorted(value)}, described {sorted(schema['properties'])}"
        assert set(schema.get("required", ())) == set(value), f"{where}: required {sorted(schema.get('required', ()))}"
        for key, item in value.items():
            if isinstance(item, dict):
                declared(item, schema["properties"][key], f"{where}.{key}")

    declared(body, document["components"]["schemas"]["Ticket"], "$")


def test_token_opens_lists_and_reads_tickets_matching_the_document(client, orgs):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    document = client.get("/api/v1/openapi.json").get_json()
    created = client.post("/api/v1/tickets", json=BODY, headers=headers)
    assert created.status_code == 201, created.get_json()
    check_response(document, "/tickets", "post", created)
    body = created.get_json()
    assert body["title"] == BODY["title"] and body["status"] == "new"
    assert body["position"] == 1 and body["ahead"] == 0
    assert body["eta"]["median"] and body["eta"]["p90"] and body["eta"]["median"] <= body["eta"]["p90"]
    assert body["sla"]["due_at"] and body["sla"]["state"] in ("on_track", "at_risk")
    assert isinstance(body["reasons"], list) and body["reasons"]
    assert created.headers["Location"].endswith(f"/api/v1/tickets/{body['id']}")
    ticket = db.session.get(Ticket, body["id"])
    assert ticket.requester_id is None and ticket.organisation_id == acme.id
    assert ticket.client_deadline is not None
    # The on-site ticket shows its arrival deadline; the nearer response promise and the client's own
    # deadline are there too, as on the status page.
    assert body["sla"]["due_at"] == ticket.arrival_due_at.isoformat()
    assert body["sla"]["response_due_at"] == ticket.response_due_at.isoformat()
    assert body["client_deadline"] == ticket.client_deadline.isoformat()
    assert body["opened_at"] == ticket.opened_at.isoformat() and body["resolved_at"] is None

    listing = client.get("/api/v1/tickets", headers=headers)
    check_response(document, "/tickets", "get", listing)
    assert [t["id"] for t in listing.get_json()["tickets"]] == [body["id"]]
    one = client.get(f"/api/v1/tickets/{body['id']}", headers=headers)
    check_response(document, "/tickets/{ticket_id}", "get", one)
    assert one.get_json()["id"] == body["id"]


def test_idempotency_key_opens_one_ticket(client, orgs):
    acme, admin, _, _ = orgs
    headers = dict(bearer(acme.id, admin), **{"Idempotency-Key": "alert-7781"})
    first = client.post("/api/v1/tickets", json=BODY, headers=headers)
    second = client.post("/api/v1/tickets", json=BODY, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert ticket_count() == 1


def test_idempotency_key_reused_for_a_different_ticket_is_refused(client, orgs):
    """As Stripe does: a key replays only the request it was first used with; another body with it
    is a caller's mistake, answered 422 with nothing opened, never the earlier ticket."""
    acme, admin, _, _ = orgs
    headers = dict(bearer(acme.id, admin), **{"Idempotency-Key": "alert-7781"})
    document = client.get("/api/v1/openapi.json").get_json()
    first = client.post("/api/v1/tickets", json=BODY, headers=headers)
    other = client.post("/api/v1/tickets", json=dict(BODY, title="Whole office offline", impact="company"),
                        headers=headers)
    assert first.status_code == 201
    assert other.status_code == 422
    check_response(document, "/tickets", "post", other)
    assert "already used" in other.get_json()["errors"]["Idempotency-Key"]
    assert ticket_count() == 1
    again = client.post("/api/v1/tickets", json=BODY, headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]


def test_idempotency_key_replays_the_same_ticket_written_another_way(client, orgs):
    acme, admin, _, _ = orgs
    headers = dict(bearer(acme.id, admin), **{"Idempotency-Key": "alert-7782"})
    first = client.post("/api/v1/tickets", json=BODY, headers=headers)
    same = dict(BODY, title=f" {BODY['title']}  ", revenue_at_risk_per_hour="2,500.00", category="NETWORK",
                onsite_needed="yes")
    second = client.post("/api/v1/tickets", json=same, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert ticket_count() == 1


@pytest.mark.parametrize("changes, field", [
    ({"title": ""}, "title"),
    ({"title": None}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"title": ["a"]}, "title"),
    ({"title": "Server\x00down"}, "title"),
    ({"description": "\x00"}, "description"),
    ({"title": "\ud800"}, "title"),
    ({"title": "Printer \udfff down"}, "title"),
    ({"description": "\ud800"}, "description"),
    ({"category": "\ud800"}, "category"),
    ({"impact": "\udbff"}, "impact"),
    ({"revenue_at_risk_per_hour": "\ud800"}, "revenue_at_risk_per_hour"),
    ({"client_deadline": "\ud800"}, "client_deadline"),
    ({"onsite_needed": "\ud800"}, "onsite_needed"),
    ({"safety_critical": "\ud800"}, "safety_critical"),
    ({"impact": "galaxy"}, "impact"),
    ({"category": "<script>alert(1)</script>"}, "category"),
    ({"revenue_at_risk_per_hour": -1}, "revenue_at_risk_per_hour"),
    ({"revenue_at_risk_per_hour": "1e400"}, "revenue_at_risk_per_hour"),
    ({"revenue_at_risk_per_hour": "1e3"}, "revenue_at_risk_per_hour"),
    ({"revenue_at_risk_per_hour": "sNaN"}, "revenue_at_risk_per_hour"),
    ({"revenue_at_risk_per_hour": "'; DROP TABLE ticket; --"}, "revenue_at_risk_per_hour"),
    ({"client_deadline": "yesterday"}, "client_deadline"),
    ({"client_deadline": "1999-01-01T10:00:00+00:00"}, "client_deadline"),
    ({"client_deadline": "9999-12-31T23:59:59"}, "client_deadline"),
    ({"client_deadline": "9999-12-31T23:59:59-12:00"}, "client_deadline"),
    ({"client_deadline": "0001-01-01T00:00:00"}, "client_deadline"),
    ({"client_deadline": "0001-01-01"}, "client_deadline"),
    ({"onsite_needed": "perhaps"}, "onsite_needed"),
    ({"follows_ticket_id": "the last one"}, "follows_ticket_id"),
    ({"follows_ticket_id": 1}, "follows_ticket_id"),
])
def test_bad_input_answers_400_naming_the_field_and_opens_nothing(client, orgs, changes, field):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    document = client.get("/api/v1/openapi.json").get_json()
    response = client.post("/api/v1/tickets", json=dict(BODY, **changes), headers=headers)
    assert response.status_code == 400
    check_response(document, "/tickets", "post", response)
    assert field in response.get_json()["errors"]
    assert ticket_count() == 0


@pytest.mark.parametrize("field, words", [("on_site_needed", "did you mean onsite_needed?"),
                                          ("priority", "the fields are title, description")])
def test_an_unknown_field_is_refused_by_name_and_opens_nothing(client, orgs, field, words):
    """Ignored, a typo of onsite_needed opened a remote ticket with no arrival deadline."""
    acme, admin, _, _ = orgs
    response = client.post("/api/v1/tickets", json=dict(BODY, **{field: True}), headers=bearer(acme.id, admin))
    assert response.status_code == 400
    check_response(client.get("/api/v1/openapi.json").get_json(), "/tickets", "post", response)
    assert words in response.get_json()["errors"][field] and "Nothing was opened" in response.get_json()["errors"][field]
    assert ticket_count() == 0


def test_a_lone_surrogate_is_refused_with_the_surrogate_message(client, orgs):
    """JSON can escape half of a UTF-16 pair; no database can store it (a 500 on save before)."""
    acme, admin, _, _ = orgs
    raw = '{"title": "t", "impact": "company", "description": "\\ud800"}'
    response = client.post("/api/v1/tickets", data=raw, content_type="application/json", headers=bearer(acme.id, admin))
    assert response.status_code == 400
    assert "half of a UTF-16 pair" in response.get_json()["errors"]["description"]
    assert ticket_count() == 0


@pytest.mark.parametrize("raw, content_type", [("not json", "application/json"), ("[1, 2]", "application/json"),
                                               ("title=x", "application/x-www-form-urlencoded"),
                                               ("[" * 100_000 + "]" * 100_000, "application/json"),
                                               ('{"title": ' + "[" * 50_000 + "]" * 50_000 + ', "impact": "person"}',
                                                "application/json")])
def test_a_body_that_is_not_a_json_object_is_refused(client, orgs, raw, content_type):
    acme, admin, _, _ = orgs
    response = client.post("/api/v1/tickets", data=raw, content_type=content_type, headers=bearer(acme.id, admin))
    assert response.status_code == 400 and "body" in response.get_json()["errors"]
    assert ticket_count() == 0


def test_another_organisations_ticket_is_404_and_never_listed(client, orgs):
    acme, admin, other, other_admin = orgs
    mine = client.post("/api/v1/tickets", json=BODY, headers=bearer(acme.id, admin)).get_json()
    theirs = bearer(other.id, other_admin)
    response = client.get(f"/api/v1/tickets/{mine['id']}", headers=theirs)
    assert response.status_code == 404 and BODY["title"] not in response.get_data(as_text=True)
    assert response.get_json() == {"errors": {"ticket": "There is no such ticket."}}
    assert client.get("/api/v1/tickets", headers=theirs).get_json()["tickets"] == []


def test_a_monitoring_alert_that_comes_back_follows_up_its_resolved_ticket_only(client, orgs):
    """A follow-up names a resolved or closed ticket of the caller's organisation; an open one or
    another organisation's answers 400 and opens nothing."""
    acme, admin, other, other_admin = orgs
    document = client.get("/api/v1/openapi.json").get_json()
    first = client.post("/api/v1/tickets", json=BODY, headers=bearer(acme.id, admin)).get_json()
    refused = client.post("/api/v1/tickets", json=dict(BODY, follows_ticket_id=first["id"]),
                          headers=bearer(acme.id, admin))
    assert refused.status_code == 400 and "still open" in refused.get_json()["errors"]["follows_ticket_id"]
    check_response(document, "/tickets", "post", refused)
    tickets.set_status(first["id"], TicketStatus.RESOLVED, admin, TUESDAY_10_NY)

    theirs = client.post("/api/v1/tickets", json=dict(BODY, follows_ticket_id=first["id"]),
                         headers=bearer(other.id, other_admin))
    assert theirs.status_code == 400 and BODY["title"] not in theirs.get_data(as_text=True)
    assert ticket_count() == 1
    again = client.post("/api/v1/tickets", json=dict(BODY, follows_ticket_id=f"#{first['id']}"),
                        headers=bearer(acme.id, admin))
    assert again.status_code == 201
    check_response(document, "/tickets", "post", again)
    assert again.get_json()["follows_ticket_id"] == first["id"] and again.get_json()["id"] != first["id"]
    listed = client.get("/api/v1/tickets", headers=bearer(acme.id, admin)).get_json()["tickets"]
    assert {t["id"]: t["follows_ticket_id"] for t in listed} == {first["id"]: None, again.get_json()["id"]: first["id"]}


def test_missing_bad_or_revoked_token_is_401(client, orgs):
    acme, admin, _, _ = orgs
    assert client.get("/api/v1/tickets").status_code == 401
    response = client.get("/api/v1/tickets", headers={"Authorization": "Bearer nwp_wrong"})
    assert response.status_code == 401 and "Bearer" in response.headers["WWW-Authenticate"]
    issued = api_tokens.create(acme.id, "old", admin, TUESDAY_10_NY)
    api_tokens.revoke(acme.id, issued.token.id, admin, TUESDAY_10_NY)
    assert client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {issued.secret}"}).status_code == 401
    assert client.post("/api/v1/tickets", json=BODY, headers={"Authorization": f"Bearer {issued.secret}"}).status_code == 401
    assert ticket_count() == 0


def test_token_use_is_recorded(client, orgs):
    acme, admin, _, _ = orgs
    issued = api_tokens.create(acme.id, "nagios", admin, TUESDAY_10_NY)
    client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {issued.secret}"})
    db.session.expire_all()
    assert db.session.get(type(issued.token), issued.token.id).last_used_at == TUESDAY_10_NY


def test_session_reads_and_staff_are_refused(client, orgs):
    acme, admin, _, _ = orgs
    login(client, admin.email)
    assert client.get("/api/v1/tickets").status_code == 200
    client.post("/auth/logout")
    make_user("d@firm.example", role="dispatcher")
    login(client, "d@firm.example")
    assert client.get("/api/v1/tickets").status_code == 403
    document = client.get("/api/v1/openapi.json").get_json()
    for method, path, documented in (("get", "/api/v1/tickets", "/tickets"), ("post", "/api/v1/tickets", "/tickets"),
                                     ("get", "/api/v1/tickets/1", "/tickets/{ticket_id}")):
        response = client.open(path, method=method.upper(), json=BODY if method == "post" else None)
        assert response.status_code == 403
        check_response(document, documented, method, response)  # the document says it may answer so


def test_session_writes_need_the_csrf_header_but_token_writes_do_not(make_app, monkeypatch):
    """Requests run outside the test's app context, as in production (Flask-WTF caches the token on `g`)."""
    app = make_app(WTF_CSRF_ENABLED=True)
    set_clock(monkeypatch, TUESDAY_10_NY)
    with app.app_context():
        acme, admin, _, _ = two_organisations()
        with_technician()
        headers = bearer(acme.id, admin)
        email = admin.email
    client = app.test_client()
    login_page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page).group(1)
    client.post("/auth/login", data={"email": email, "password": "correct-horse-battery-staple", "csrf_token": token})
    assert client.get("/api/v1/tickets").status_code == 200
    refused = client.post("/api/v1/tickets", json=BODY)
    assert refused.status_code == 400 and "csrf_token" in refused.get_json()["errors"]
    with app.app_context():
        assert ticket_count() == 0
    page = client.get("/client/tickets/new").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    accepted = client.post("/api/v1/tickets", json=BODY, headers={"X-CSRFToken": csrf})
    assert accepted.status_code == 201, accepted.get_json()
    anonymous = app.test_client()
    assert anonymous.post("/api/v1/tickets", json=dict(BODY, title="From Nagios"), headers=headers).status_code == 201
    with app.app_context():
        assert ticket_count() == 2


def test_token_requests_are_rate_limited(make_app, monkeypatch):
    app = make_app(RATELIMIT_ENABLED=True)
    set_clock(monkeypatch, TUESDAY_10_NY)
    with app.app_context():
        limiter.reset()
        acme, admin, _, _ = two_organisations()
        headers = bearer(acme.id, admin)
        client = app.test_client()
        codes = [client.get("/api/v1/tickets", headers=headers).status_code for _ in range(125)]
        assert codes[:120] == [200] * 120 and codes[-1] == 429
        limited = client.get("/api/v1/tickets", headers=headers)
        assert limited.get_json()["errors"]["request"].startswith("Too many requests")
        assert 0 < int(limited.headers["Retry-After"]) <= 60 and limited.headers["X-RateLimit-Remaining"] == "0"
        document = client.get("/api/v1/openapi.json").get_json()
        check_response(document, "/tickets", "get", limited)
        for path, method in (("/tickets/{ticket_id}", "get"), ("/tickets", "post")):
            for _ in range(121):  # each operation has its own allowance
                response = client.open("/api/v1" + path.format(ticket_id=1), method=method.upper(), headers=headers,
                                       json=BODY if method == "post" else None)
            assert response.status_code == 429
            check_response(document, path, method, response)  # every operation is limited, and says so
        other_token = bearer(acme.id, admin)
        assert client.get("/api/v1/tickets", headers=other_token).status_code == 200
        limiter.reset()


def test_list_filter_by_state(client, orgs):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    client.post("/api/v1/tickets", json=BODY, headers=headers)
    assert len(client.get("/api/v1/tickets?state=open", headers=headers).get_json()["tickets"]) == 1
    assert client.get("/api/v1/tickets?state=done", headers=headers).get_json()["tickets"] == []
    bad = client.get("/api/v1/tickets?state=weird", headers=headers)
    assert bad.status_code == 400 and "state" in bad.get_json()["errors"]


def test_every_open_ticket_is_listed_and_the_cap_on_done_ones_is_said(client, orgs):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    document = client.get("/api/v1/openapi.json").get_json()
    old_open = client.post("/api/v1/tickets", json=BODY, headers=headers).get_json()["id"]
    ticket = db.session.get(Ticket, old_open)
    ticket.opened_at = datetime(2026, 10, 1, 15, 0, tzinfo=timezone.utc)
    db.session.commit()
    add_done_tickets(acme.id, 205, TUESDAY_10_NY)

    listing = client.get("/api/v1/tickets", headers=headers)
    check_response(document, "/tickets", "get", listing)
    body = listing.get_json()
    assert body["tickets"][0]["id"] == old_open, "open tickets first, however old"
    assert len(body["tickets"]) == 201
    assert body["done_limit"] == 200 and body["more_done"] is True
    done = client.get("/api/v1/tickets?state=done", headers=headers).get_json()
    assert len(done["tickets"]) == 200 and done["more_done"] is True
    opened = client.get("/api/v1/tickets?state=open", headers=headers).get_json()
    assert [t["id"] for t in opened["tickets"]] == [old_open] and opened["more_done"] is False


def test_a_short_history_is_listed_whole(client, orgs):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    add_done_tickets(acme.id, 200, TUESDAY_10_NY)
    body = client.get("/api/v1/tickets", headers=headers).get_json()
    assert len(body["tickets"]) == 200 and body["more_done"] is False


def test_reads_carry_an_etag_and_unchanged_answers_304(client, orgs):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    ticket = client.post("/api/v1/tickets", json=BODY, headers=headers).get_json()
    for url in (f"/api/v1/tickets/{ticket['id']}", "/api/v1/tickets"):
        first = client.get(url, headers=headers)
        again = client.get(url, headers=dict(headers, **{"If-None-Match": first.headers["ETag"]}))
        assert again.status_code == 304 and again.get_data() == b""
    client.post("/api/v1/tickets", json=dict(BODY, title="Second"), headers=headers)
    changed = client.get("/api/v1/tickets", headers=dict(headers, **{"If-None-Match": first.headers["ETag"]}))
    assert changed.status_code == 200 and len(changed.get_json()["tickets"]) == 2


# --- every error under /api/ is JSON -----------------------------------------------------------------


def json_error(response) -> dict:
    assert response.mimetype == "application/json", (response.status_code, response.get_data(as_text=True)[:200])
    errors = response.get_json()["errors"]
    assert isinstance(errors, dict) and errors and all(isinstance(v, str) and v for v in errors.values())
    return errors


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api/v1/nothing", 404),
    ("GET", "/api/v2/tickets", 404),
    ("GET", "/api/", 404),
    ("POST", "/api/v1/openapi.json", 405),
    ("DELETE", "/api/v1/tickets/2", 405),
    ("PUT", "/api/v1/tickets", 405),
])
def test_unknown_paths_and_methods_under_api_answer_json(client, orgs, method, path, status):
    acme, admin, _, _ = orgs
    document = client.get("/api/v1/openapi.json").get_json()
    response = client.open(path, method=method, headers=bearer(acme.id, admin))
    assert response.status_code == status
    json_error(response)
    check({"errors": response.get_json()["errors"]}, {"$ref": "#/components/schemas/Errors"}, document)
    if status == 405:
        assert "GET" in response.headers["Allow"]
    assert ticket_count() == 0


def test_pages_keep_their_html_error_pages(client, orgs):
    for path in ("/nothing", "/apiary", "/client/nothing"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert "There is nothing at this address." in response.get_data(as_text=True)
    assert client.delete("/").mimetype == "text/html"


def test_a_body_over_the_size_limit_answers_413_in_json(make_app, monkeypatch):
    app = make_app(MAX_CONTENT_LENGTH=1024)
    set_clock(monkeypatch, TUESDAY_10_NY)
    with app.app_context():
        acme, admin, _, _ = two_organisations()
        headers = bearer(acme.id, admin)
        client = app.test_client()
        response = client.post("/api/v1/tickets", json=dict(BODY, description="x" * 4000), headers=headers)
        assert response.status_code == 413
        json_error(response)
        check_response(client.get("/api/v1/openapi.json").get_json(), "/tickets", "post", response)
        assert ticket_count() == 0


def test_a_server_error_under_api_answers_500_in_json(make_app, monkeypatch):
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    set_clock(monkeypatch, TUESDAY_10_NY)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("portal.services.ticket_status.tickets_for", broken)
    with app.app_context():
        acme, admin, _, _ = two_organisations()
        headers = bearer(acme.id, admin)
    response = app.test_client().get("/api/v1/tickets", headers=headers)
    assert response.status_code == 500
    assert "boom" not in json_error(response).get("request", "")

