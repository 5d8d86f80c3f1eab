"""Reporting a resolved ticket again: the fix did not hold. The new report starts from what the
client told us, files as a new ticket in the queue, and each ticket links the other for the
client and the dispatcher; an open ticket or another organisation's is never followed up."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage, Role, Ticket, TicketEvent, TicketStatus
from portal.services import tickets
from tests.client.helpers import GOOD_FORM, TUESDAY_10_NY, file_ticket, log_in_as, tickets_in_db
from tests.conftest import make_user


def _resolved_ticket(client) -> int:
    ticket_id, _ = file_ticket(client)
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": TicketStatus.RESOLVED})
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status == TicketStatus.RESOLVED
    return ticket_id


class _FormValues(HTMLParser):
    """What a browser would send for the form as rendered: text and hidden inputs, ticked boxes and
    radios, the selected option."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.values[a["name"]] = a.get("value") or ""
        elif tag == "select":
            self._select = a.get("name", "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")


def _form_values(page: str) -> dict[str, str]:
    reader = _FormValues()
    reader.feed(page)
    return reader.values


def test_a_resolved_ticket_offers_to_report_it_again_with_what_the_client_told_us_filled_in(client, acme):
    first = _resolved_ticket(client)
    page = client.get(f"/client/tickets/{first}").get_data(as_text=True)
    assert f'href="/client/tickets/new?follows={first}"' in page and "Report it again" in page

    form = client.get(f"/client/tickets/new?follows={first}").get_data(as_text=True)
    values = _form_values(form)
    assert values["title"] == GOOD_FORM["title"]
    assert values["category"] == "printer" and values["impact"] == "department"
    assert values["money_lost"] == "yes" and values["revenue_at_risk_per_hour"] == "17,000.00"
    assert values["onsite_needed"] == "y" and "safety_critical" not in values
    assert values["follows_ticket_id"] == str(first)
    assert f"This reports <a href=\"/client/tickets/{first}\">#{first} · {GOOD_FORM['title']}</a>" in form


def test_the_report_files_a_new_ticket_in_the_queue_and_both_pages_link_each_other(client, acme):
    first = _resolved_ticket(client)
    second, _ = file_ticket(client, follows_ticket_id=str(first), description="Labels print blank again.")
    db.session.expire_all()
    new = db.session.get(Ticket, second)
    assert second != first and new.follows_ticket_id == first and new.status == TicketStatus.NEW
    assert new.description == "Labels print blank again."

    page = client.get(f"/client/tickets/{second}").get_data(as_text=True)
    assert "1st in line" in page
    assert f'This reports <a href="/client/tickets/{first}">#{first} · {GOOD_FORM["title"]}</a> again.' in page
    assert "reporting #%d again" % first in page

    old_page = client.get(f"/client/tickets/{first}").get_data(as_text=True)
    assert f'Reported again as <a href="/client/tickets/{second}">#{second}</a>' in old_page
    assert f"Reported again as #{second}: the problem is back." in old_page
    assert db.session.get(Ticket, first).status == TicketStatus.RESOLVED


def test_an_open_ticket_is_commented_on_not_reported_again(client, acme):
    open_id, _ = file_ticket(client)
    response = client.get(f"/client/tickets/new?follows={open_id}")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/client/tickets/{open_id}")
    assert "still open: add a comment" in client.get(response.headers["Location"]).get_data(as_text=True)

    form = client.get("/client/tickets/new").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([^"]+)"', form).group(1)
    refused = client.post("/client/tickets/new", data=dict(GOOD_FORM, idempotency_key=key, title="Printer again",
                                                            follows_ticket_id=str(open_id)))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert f"Ticket #{open_id} is still open: add a comment to it instead" in page
    assert 'value="Printer again"' in page
    assert len(tickets_in_db()) == 1


def test_another_organisations_ticket_cannot_be_followed_up_nor_named(client, acme):
    _, _, other, other_admin = acme
    theirs = _resolved_ticket(client)
    log_in_as(client, other_admin)
    for address in (f"/client/tickets/new?follows={theirs}", "/client/tickets/new?follows=abc",
                    "/client/tickets/new?follows=99999999999"):
        response = client.get(address)
        assert response.status_code == 404, address
        assert GOOD_FORM["title"] not in response.get_data(as_text=True)

    form = client.get("/client/tickets/new").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" type="hidden" value="([^"]+)"', form).group(1)
    refused = client.post("/client/tickets/new", data=dict(GOOD_FORM, idempotency_key=key, title="Our printer",
                                                            follows_ticket_id=str(theirs)))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and f"There is no ticket #{theirs} of yours to follow up." in page
    assert GOOD_FORM["title"] not in page and 'value="Our printer"' in page
    assert len(tickets_in_db()) == 1
    assert db.session.scalars(select(TicketEvent).where(TicketEvent.kind == "followed_up")).all() == []


def test_the_dispatcher_sees_which_ticket_came_back_and_who_resolved_it(client, acme):
    first = _resolved_ticket(client)
    second, _ = file_ticket(client, follows_ticket_id=str(first))
    log_in_as(client, make_user("d@firm.example", role=Role.DISPATCHER))
    page = client.get(f"/staff/tickets/{second}").get_data(as_text=True)
    assert f'Reports <a href="/staff/tickets/{first}">#{first}</a> again (resolved' in page
    old = client.get(f"/staff/tickets/{first}").get_data(as_text=True)
    assert f'reported again as <a href="/staff/tickets/{second}">#{second}</a>' in old


def test_the_resolved_email_links_to_the_report_filled_in(client, acme):
    first = _resolved_ticket(client)
    email = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_resolved")).one()
    assert f"/client/tickets/new?follows={first}" in email.body and "filled in" in email.body


def _follows(value) -> object:
    return tickets.parse_ticket_input({"title": "Again", "impact": "person", "follows_ticket_id": value},
                                      "America/New_York", TUESDAY_10_NY).follows_ticket_id


def test_a_ticket_number_is_read_as_people_write_it():
    assert _follows(42) == _follows("42") == _follows(" #42 ") == 42
    assert _follows(None) is None and _follows("") is None


@pytest.mark.parametrize("wrong", [True, 0, -3, "forty-two", "4.2", 4.2, "²", "9" * 40, ["42"]])
def test_anything_else_is_refused_under_its_field(wrong):
    with pytest.raises(tickets.TicketError) as refused:
        _follows(wrong)
    assert refused.value.field == "follows_ticket_id" and "e.g. 42" in refused.value.message
