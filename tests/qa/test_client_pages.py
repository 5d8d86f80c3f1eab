"""Client pages, from the QA walk: "Money lost: $0 an hour" after answering No; a paused deadline that read
as fixed; the dashboard table squeezed on a phone."""
from __future__ import annotations

from tests.client.helpers import acme_admin_logged_in, file_ticket


def _client_with_ticket(client, monkeypatch, **changes) -> int:
    acme_admin_logged_in(client, monkeypatch)
    ticket_id, _ = file_ticket(client, **changes)
    return ticket_id


def test_no_money_lost_reads_no(client, monkeypatch):
    ticket_id = _client_with_ticket(client, monkeypatch, money_lost="no", revenue_at_risk_per_hour="")
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "<dt>Money lost</dt><dd>No</dd>" in page and "$0 an hour" not in page


def test_money_lost_keeps_the_amount(client, monkeypatch):
    ticket_id = _client_with_ticket(client, monkeypatch)
    assert "$17,000 an hour" in client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)


def test_paused_deadline_says_the_clock_is_stopped(client, monkeypatch):
    ticket_id = _client_with_ticket(client, monkeypatch)
    assert "clock paused" not in client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    client.post(f"/client/tickets/{ticket_id}/status", data={"status": "waiting_on_client"})
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "(clock paused while we wait on you)" in page
    live = client.get(f"/client/tickets/{ticket_id}/live.json").get_json()
    assert "clock paused" in live["display"]["sla"]


def test_dashboard_rows_become_cards_on_phones(client, monkeypatch):
    _client_with_ticket(client, monkeypatch)
    section = client.get("/client/").get_data(as_text=True).split('id="open-tickets"')[1].split("</section>")[0]
    assert '<table class="stack">' in section
    for label in ("Place", "Expected", "Deadline", "Technician"):
        assert f'data-label="{label}"' in section
