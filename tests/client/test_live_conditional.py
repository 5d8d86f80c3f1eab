"""live.json's ETag is the ticket's change tag: an unchanged ticket answers 304 after one small
query, any change the client could see gives a new tag, and another organisation's ticket stays 404."""
from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import Technician, User
from tests.client.helpers import file_ticket, get_counting_statements, log_in_as



def test_unchanged_ticket_answers_304_with_fewer_statements_than_a_full_answer(client, acme):
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}/live.json"
    full, full_statements = get_counting_statements(client, url)
    again, again_statements = get_counting_statements(client, url, full.headers["ETag"])
    assert full.status_code == 200 and again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == full.headers["ETag"] and again.headers["Cache-Control"] == "no-cache, private"
    assert again_statements < full_statements, (again_statements, full_statements)


def test_a_technician_renamed_gives_a_new_tag(client, acme):
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}/live.json"
    first = client.get(url)
    assert "Tom" in first.get_data(as_text=True)  # the dispatch plan's likely technician is shown
    user = db.session.scalar(select(User).join(Technician, Technician.user_id == User.id))
    user.full_name = "Thomas Tech"
    db.session.commit()
    changed = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and "Thomas" in changed.get_data(as_text=True)


def test_another_organisations_ticket_stays_404_with_a_valid_tag(client, acme):
    _, _, _, other_admin = acme
    ticket_id, _ = file_ticket(client)
    url = f"/client/tickets/{ticket_id}/live.json"
    etag = client.get(url).headers["ETag"]
    log_in_as(client, other_admin)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 404
    assert client.get(f"/client/tickets/{ticket_id}").status_code == 404
