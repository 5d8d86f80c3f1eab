"""From the QA walk: a break/fix ticket's staff page read "SLA: Best effort (best effort, no guarantee)" and
listed its best-effort aims as "Response due" / "Arrival due"."""
from __future__ import annotations

from portal.models import Role
from tests.conftest import make_organisation, make_plan
from tests.staff.helpers import staff
from tests.staff.test_actions import open_ticket


def test_break_fix_ticket_shows_aims_not_deadlines(client):
    make_plan("break-fix", name="Break/Fix")
    ticket = open_ticket(make_organisation("Bolt"), "Tills down", onsite=True)
    staff(client, Role.DISPATCHER)
    page = client.get(f"/staff/tickets/{ticket.id}").get_data(as_text=True)
    assert "Response aim (best effort)" in page and "Arrival aim (best effort)" in page
    assert "<dt>Response due</dt>" not in page
    assert "(best effort, no guarantee)" not in page and "break/fix, no guarantee" in page


def test_contract_ticket_keeps_its_due_times(client):
    ticket = open_ticket(make_organisation("Acme", make_plan("priority")), "Server down", onsite=True)
    staff(client, Role.DISPATCHER)
    page = client.get(f"/staff/tickets/{ticket.id}").get_data(as_text=True)
    assert "<dt>Response due</dt>" in page and "<dt>Arrival due</dt>" in page and "aim (best effort)" not in page
