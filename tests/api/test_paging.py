"""Paging through an organisation's history with GET /api/v1/tickets: `limit`, an opaque `cursor`
(in the body and an RFC 8288 Link header), a stable order by end time then id, the refusals of a
bad limit or a changed or foreign cursor, and the OpenAPI document saying all of it."""
from __future__ import annotations

import random
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.models import Ticket, TicketStatus
from tests.api.test_api import BODY, TUESDAY_10_NY, bearer, check_response
from tests.client.helpers import add_done_tickets, set_clock, two_organisations, with_technician

LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


@pytest.fixture
def orgs(app, monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    result = two_organisations()
    with_technician()
    return result


@pytest.fixture
def document(client):
    return client.get("/api/v1/openapi.json").get_json()


def add_history(organisation_id: int, count: int) -> list[int]:
    """`count` resolved and closed tickets, opened in another order than they ended, three ending at
    each same instant (ties broken by id); returns their ids newest ended first."""
    rng = random.Random(7)
    opened = list(range(count))
    rng.shuffle(opened)
    tickets = [Ticket(organisation_id=organisation_id, title=f"Past fault {i}",
                      status=TicketStatus.CLOSED if i % 4 == 0 else TicketStatus.RESOLVED,
                      opened_at=TUESDAY_10_NY - timedelta(days=400) + timedelta(hours=opened[i]),
                      resolved_at=TUESDAY_10_NY - timedelta(hours=1 + i // 3, microseconds=7),
                      sla_best_effort=True)
               for i in range(count)]
    db.session.add_all(tickets)
    db.session.commit()
    return [t.id for t in sorted(tickets, key=lambda t: (t.resolved_at, t.id), reverse=True)]


def next_link(response) -> str | None:
    header = response.headers.get("Link")
    if header is None:
        return None
    match = LINK.match(header)
    assert match, header
    return match["url"]


def test_walking_450_done_tickets_lists_each_once_in_order_of_ending(client, orgs, document):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    open_id = client.post("/api/v1/tickets", json=BODY, headers=headers).get_json()["id"]
    history = add_history(acme.id, 450)

    seen: list[int] = []
    url, pages = "/api/v1/tickets?limit=100", 0
    while url is not None:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_json()
        check_response(document, "/tickets", "get", response)
        body = response.get_json()
        ids = [t["id"] for t in body["tickets"]]
        if pages == 0:
            assert ids[0] == open_id and body["tickets"][0]["position"] == 1, "open tickets first, with their place"
            ids = ids[1:]
        else:
            assert open_id not in ids, "open tickets are on the first page only"
        assert len(ids) <= 100 and body["done_limit"] == 100
        seen += ids
        pages += 1
        if pages == 2:
            # Meanwhile one ticket ends (it goes to the top, before the pages being walked), and one
            # already listed and one not yet listed are closed: their end time stays, so does their place.
            db.session.add(Ticket(organisation_id=acme.id, title="Just fixed", status=TicketStatus.RESOLVED,
                                  opened_at=TUESDAY_10_NY, resolved_at=TUESDAY_10_NY, sla_best_effort=True))
            for ticket_id in (history[50], history[350]):
                db.session.get(Ticket, ticket_id).status = TicketStatus.CLOSED
            db.session.commit()
        link = next_link(response)
        if link is None:
            assert body["next_cursor"] is None and body["more_done"] is False
        else:
            assert parse_qs(urlsplit(link).query)["cursor"] == [body["next_cursor"]] and body["more_done"] is True
            assert parse_qs(urlsplit(link).query)["limit"] == ["100"]
        url = link
    assert pages == 5
    assert seen == history, "every done ticket exactly once, newest ended first, ties by id"


def test_the_default_listing_is_the_first_page_of_200(client, orgs, document):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    open_id = client.post("/api/v1/tickets", json=BODY, headers=headers).get_json()["id"]
    history = add_history(acme.id, 205)
    first = client.get("/api/v1/tickets", headers=headers)
    check_response(document, "/tickets", "get", first)
    body = first.get_json()
    assert [t["id"] for t in body["tickets"]] == [open_id] + history[:200]
    assert body["done_limit"] == 200 and body["more_done"] is True and body["queue_length"] == 1
    assert next_link(first) == f"/api/v1/tickets?cursor={body['next_cursor']}"
    rest = client.get(next_link(first), headers=headers).get_json()
    assert [t["id"] for t in rest["tickets"]] == history[200:] and rest["next_cursor"] is None


def test_state_filters_keep_working_with_paging(client, orgs):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    open_id = client.post("/api/v1/tickets", json=BODY, headers=headers).get_json()["id"]
    history = add_history(acme.id, 7)
    done = client.get("/api/v1/tickets?state=done&limit=3", headers=headers)
    assert [t["id"] for t in done.get_json()["tickets"]] == history[:3]
    assert parse_qs(urlsplit(next_link(done)).query)["state"] == ["done"]
    seen = history[:3]
    url = next_link(done)
    while url:
        page = client.get(url, headers=headers)
        seen += [t["id"] for t in page.get_json()["tickets"]]
        url = next_link(page)
    assert seen == history
    opened = client.get("/api/v1/tickets?state=open&limit=1", headers=headers).get_json()
    assert [t["id"] for t in opened["tickets"]] == [open_id] and opened["next_cursor"] is None
    cursor = done.get_json()["next_cursor"]
    refused = client.get(f"/api/v1/tickets?state=open&cursor={cursor}", headers=headers)
    assert refused.status_code == 400 and set(refused.get_json()["errors"]) == {"cursor"}


@pytest.mark.parametrize("limit", ["0", "-1", "501", "abc", "1.5", "", " 5", "1e2", "\u0663", "99999999999999999999"])
def test_a_bad_limit_answers_400_naming_it(client, orgs, document, limit):
    acme, admin, _, _ = orgs
    response = client.get("/api/v1/tickets", query_string={"limit": limit}, headers=bearer(acme.id, admin))
    assert response.status_code == 400
    check_response(document, "/tickets", "get", response)
    errors = response.get_json()["errors"]
    assert set(errors) == {"limit"} and "1 to 500" in errors["limit"]


def test_limits_at_the_bounds_are_taken(client, orgs):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    add_history(acme.id, 3)
    assert len(client.get("/api/v1/tickets?limit=1", headers=headers).get_json()["tickets"]) == 1
    assert client.get("/api/v1/tickets?limit=500", headers=headers).get_json()["done_limit"] == 500


def test_a_changed_or_made_up_cursor_answers_400(client, orgs, document):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    add_history(acme.id, 5)
    cursor = client.get("/api/v1/tickets?limit=2", headers=headers).get_json()["next_cursor"]
    payload, signature = cursor.rsplit(".", 1)
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    for bad in (f"{flipped}.{signature}", f"{payload}.{signature[::-1]}", cursor[:-2], "abc", "", "x" * 5000,
                "WzEsMCwxXQ"):
        response = client.get("/api/v1/tickets", query_string={"limit": 2, "cursor": bad}, headers=headers)
        assert response.status_code == 400, bad
        check_response(document, "/tickets", "get", response)
        assert set(response.get_json()["errors"]) == {"cursor"}
    assert client.get("/api/v1/tickets", query_string={"limit": 2, "cursor": cursor}, headers=headers).status_code == 200


def test_another_organisations_cursor_is_refused_and_reveals_nothing(client, orgs):
    acme, acme_admin, other, other_admin = orgs
    add_history(acme.id, 5)
    theirs = add_history(other.id, 5)
    other_cursor = client.get("/api/v1/tickets?limit=2", headers=bearer(other.id, other_admin)).get_json()["next_cursor"]
    response = client.get("/api/v1/tickets", query_string={"cursor": other_cursor}, headers=bearer(acme.id, acme_admin))
    assert response.status_code == 400 and set(response.get_json()["errors"]) == {"cursor"}
    assert "tickets" not in response.get_json()
    text = response.get_data(as_text=True)
    assert "Past fault" not in text and not any(f'"id":{i}' in text.replace(" ", "") for i in theirs)


def test_the_last_page_has_no_link(client, orgs):
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    add_history(acme.id, 4)
    first = client.get("/api/v1/tickets?limit=2", headers=headers)
    assert first.headers["Link"].startswith("</api/v1/tickets?limit=2&cursor=")
    second = client.get(next_link(first), headers=headers)
    assert "Link" not in second.headers and second.get_json()["next_cursor"] is None
    whole = client.get("/api/v1/tickets?limit=4", headers=headers)
    assert "Link" not in whole.headers and whole.get_json()["more_done"] is False


def test_a_deep_page_costs_the_same_statements_as_the_second(client, orgs):
    """One query a page, however far back: the cursor seeks, it does not count rows to skip."""
    acme, admin, _, _ = orgs
    headers = bearer(acme.id, admin)
    add_history(acme.id, 60)
    counts, url = [], next_link(client.get("/api/v1/tickets?limit=10", headers=headers))
    while url:
        executed: list[str] = []

        def count(conn, cursor, statement, *args) -> None:
            executed.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            response = client.get(url, headers=headers)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        counts.append(len([s for s in executed if "FROM ticket" in s]))
        url = next_link(response)
    assert counts == [1] * 5, counts


def test_the_document_declares_limit_cursor_link_and_next_cursor(client, document):
    operation = document["paths"]["/tickets"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["limit"]["in"] == "query" and parameters["limit"]["schema"] == {
        "type": "integer", "minimum": 1, "maximum": 500, "default": 200}
    assert parameters["cursor"]["in"] == "query" and parameters["cursor"]["schema"]["type"] == "string"
    ok = operation["responses"]["200"]
    assert 'rel="next"' in ok["headers"]["Link"]["description"]
    body = ok["content"]["application/json"]["schema"]
    assert "next_cursor" in body["required"] and body["properties"]["next_cursor"]["type"] == ["string", "null"]
    assert "400" in operation["responses"]
