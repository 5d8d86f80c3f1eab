"""The firm's report of guaranteed deadlines kept: the same judgement as each client's dashboard,
per plan and per client, and each miss named with how late it was."""
import re
from datetime import datetime, timedelta, timezone

from portal.extensions import db
from portal.models import Role, Ticket, TicketStatus
from tests.client.helpers import set_clock
from tests.conftest import login, make_organisation, make_plan, make_user
from tests.staff.helpers import staff

NOW = datetime(2026, 11, 30, 17, 0, tzinfo=timezone.utc)  # Monday 12:00 in New York


def _ticket(org, plan, title: str, opened_days_ago: float, response_late_minutes=None, arrival_late_minutes=None,
            still_open: bool = False, best_effort: bool = False) -> Ticket:
    """A guaranteed ticket whose response (and arrival, when given) came that many minutes after its due time."""
    opened = NOW - timedelta(days=opened_days_ago)
    response_due = opened + timedelta(hours=1)
    ticket = Ticket(organisation=org, title=title, description="", category="network", impact="person",
                    status=TicketStatus.NEW if still_open else TicketStatus.RESOLVED, opened_at=opened,
                    sla_clock_start=opened, sla_plan=plan, sla_best_effort=best_effort,
                    response_due_at=None if best_effort else response_due,
                    onsite_needed=arrival_late_minutes is not None)
    if response_late_minutes is not None:
        ticket.first_response_at = response_due + timedelta(minutes=response_late_minutes)
    if arrival_late_minutes is not None:
        ticket.arrival_due_at = opened + timedelta(hours=4)
        ticket.arrived_at = ticket.arrival_due_at + timedelta(minutes=arrival_late_minutes)
    if not still_open:
        ticket.resolved_at = opened + timedelta(hours=6)
    db.session.add(ticket)
    return ticket


def _rows(page: str, caption: str) -> list[list[str]]:
    """The table's rows under `caption`, each as its cells' text."""
    table = re.split(f"<caption[^>]*>{re.escape(caption)}</caption>", page)[1].split("</table>")[0]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)][1:]


def _world():
    priority, premium = make_plan("priority", name="Priority"), make_plan("premium", name="Premium 24/7")
    acme, bolt = make_organisation("Acme", priority), make_organisation("Bolt", premium)
    tickets = {
        "on time": _ticket(acme, priority, "Printer", 2, response_late_minutes=-20, arrival_late_minutes=-30),
        "late response": _ticket(acme, priority, "VPN", 3, response_late_minutes=95),
        "late arrival": _ticket(bolt, premium, "Switch", 1, response_late_minutes=-5, arrival_late_minutes=200),
        "still overdue": _ticket(bolt, premium, "Server", 0.1, still_open=True),
        "old miss": _ticket(acme, priority, "Old", 40, response_late_minutes=30),
        "break/fix": _ticket(acme, None, "Mouse", 1, best_effort=True),
    }
    db.session.commit()
    return acme, bolt, tickets


def test_the_report_counts_per_plan_and_client_and_lists_each_miss(client, monkeypatch):
    set_clock(monkeypatch, NOW)
    acme, bolt, tickets = _world()
    staff(client, Role.DISPATCHER)
    page = client.get("/staff/promises?days=30").get_data(as_text=True)
    assert _rows(page, "By plan") == [
        ["Premium 24/7", "1 of 2 (50%)", "0 of 1 (0%)"],
        ["Priority", "1 of 2 (50%)", "1 of 1 (100%)"],
        ["All plans", "2 of 4 (50%)", "1 of 2 (50%)"],
    ]
    assert [row[0] for row in _rows(page, "By client, most missed first")] == ["Bolt", "Acme"]
    missed = _rows(page, "Each deadline missed, latest first")
    assert missed == [
        [f"#{tickets['still overdue'].id} Server", "Bolt", "Response", "Mon 30 Nov 10:36", "not yet", "1 h 24 min and counting"],
        [f"#{tickets['late arrival'].id} Switch", "Bolt", "On-site arrival", "Sun 29 Nov 16:00", "Sun 29 Nov 19:20", "3 h 20 min"],
        [f"#{tickets['late response'].id} VPN", "Acme", "Response", "Fri 27 Nov 13:00", "Fri 27 Nov 14:35", "1 h 35 min"],
    ]
    assert "Old" not in page and "Mouse" not in page


def test_the_report_agrees_with_each_clients_own_dashboard(client, monkeypatch):
    set_clock(monkeypatch, NOW)
    acme, _, _ = _world()
    staff(client, Role.OWNER)
    report = client.get("/staff/promises").get_data(as_text=True)  # 90 days, as the dashboard
    assert ["Acme", "1 of 3 (33%)", "1 of 1 (100%)"] in _rows(report, "By client, most missed first")
    client.post("/auth/logout")
    make_user("admin@acme.example", organisation=acme)
    login(client, "admin@acme.example")
    dashboard = client.get("/client/").get_data(as_text=True).split('id="compliance"')[1]
    assert "1 of 3 (33%)" in dashboard and "1 of 1 (100%)" in dashboard


def test_nothing_due_and_a_bad_period_read_plainly(client, monkeypatch):
    set_clock(monkeypatch, NOW)
    staff(client, Role.DISPATCHER)
    page = client.get("/staff/promises").get_data(as_text=True)
    assert "No guaranteed tickets were opened in the last 90 days." in page
    assert "None: every deadline that fell due was kept." in page
    bad = client.get("/staff/promises?days=12")
    assert bad.status_code == 400 and "Choose one of the periods listed." in bad.get_data(as_text=True)


def test_technicians_and_clients_do_not_see_the_report(client, monkeypatch):
    set_clock(monkeypatch, NOW)
    staff(client, Role.TECHNICIAN)
    assert client.get("/staff/promises").status_code == 403
