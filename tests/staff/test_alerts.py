"""Staff alerts: SLA at risk / breached to the dispatchers, after-hours emergencies to on-call."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage, QueueEntry, Role, Ticket, TicketEvent, TicketStatus
from portal.services import alerts
from tests.conftest import make_organisation, make_user

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def ticket(org, title="Server down", **fields) -> Ticket:
    t = Ticket(organisation_id=org.id, title=title, opened_at=NOW - timedelta(hours=1), **fields)
    db.session.add(t)
    db.session.commit()
    return t


def mails(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)))


def test_at_risk_ticket_alerts_every_dispatcher_once(app):
    make_user("d1@firm.example", role=Role.DISPATCHER)
    make_user("d2@firm.example", role=Role.DISPATCHER)
    make_user("o@firm.example", role=Role.OWNER)
    org = make_organisation("Acme")
    risky = ticket(org, sla_state="at_risk", response_due_at=NOW + timedelta(minutes=10))
    ticket(org, "Fine", sla_state="on_track")

    result = alerts.check_sla(NOW)
    assert (result.tickets_alerted, result.emails) == (1, 2)
    sent = mails(alerts.ALERT_KIND[alerts.AT_RISK])
    assert sorted(m.recipient for m in sent) == ["d1@firm.example", "d2@firm.example"]
    assert f"#{risky.id}" in sent[0].subject and "Acme" in sent[0].subject
    assert f"/staff/tickets/{risky.id}" in sent[0].body
    event = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == risky.id)).one()
    assert event.public is False and event.kind == "staff_alert_at_risk"

    # Running the check again changes nothing: the event proves the alert went out.
    assert alerts.check_sla(NOW + timedelta(minutes=1)) == alerts.CheckResult(0, 0)
    assert len(mails(alerts.ALERT_KIND[alerts.AT_RISK])) == 2


def test_breach_after_risk_is_a_second_alert(app):
    make_user("d@firm.example", role=Role.DISPATCHER)
    org = make_organisation("Acme")
    t = ticket(org, sla_state="at_risk")
    alerts.check_sla(NOW)
    t.sla_state = "breached"
    t.response_breached_at = NOW + timedelta(minutes=5)
    db.session.commit()
    assert alerts.check_sla(NOW + timedelta(minutes=6)).tickets_alerted == 1
    assert "SLA BREACHED" in mails(alerts.ALERT_KIND[alerts.BREACHED])[0].subject


def test_forecast_late_counts_as_at_risk_and_owner_hears_without_dispatcher(app):
    make_user("o@firm.example", role=Role.OWNER)
    org = make_organisation("Acme")
    t = ticket(org, sla_state="on_track", response_due_at=NOW + timedelta(hours=2, minutes=30))
    db.session.add(QueueEntry(ticket_id=t.id, organisation_id=org.id, position=1, ahead=0, sla_at_risk=True,
                              eta_median=NOW + timedelta(hours=2), eta_p90=NOW + timedelta(hours=3), computed_at=NOW))
    db.session.commit()
    assert alerts.check_sla(NOW).emails == 1
    mail = mails(alerts.ALERT_KIND[alerts.AT_RISK])[0]
    assert mail.recipient == "o@firm.example" and "Forecast start/arrival" in mail.body


def test_a_remote_response_the_technician_sets_off_too_late_for_alerts_the_dispatchers(app):
    """An on-site job: response due in 30 minutes, arrival in 4 hours. The plan has the technician setting
    off in 65 minutes and on site in 95: the arrival holds, the response does not. The board and the
    client's page said "at risk"; the dispatchers heard nothing, because only the arrival flag was read."""
    make_user("d@firm.example", role=Role.DISPATCHER)
    org = make_organisation("Acme")
    t = ticket(org, sla_state="on_track", onsite_needed=True, response_due_at=NOW + timedelta(minutes=30),
               arrival_due_at=NOW + timedelta(hours=4))
    db.session.add(QueueEntry(ticket_id=t.id, organisation_id=org.id, position=1, ahead=0, sla_at_risk=False,
                              eta_median=NOW + timedelta(minutes=95), eta_p90=NOW + timedelta(minutes=120),
                              set_off_median=NOW + timedelta(minutes=65), set_off_p90=NOW + timedelta(minutes=80),
                              computed_at=NOW))
    db.session.commit()

    assert alerts.check_sla(NOW) == alerts.CheckResult(1, 1)
    [mail] = mails(alerts.ALERT_KIND[alerts.AT_RISK])
    assert "SLA at risk" in mail.subject
    assert ("Forecast: the remote response is likely to be missed: the technician is expected to set off at "
            + alerts.firm_time(NOW + timedelta(minutes=65))) in mail.body

    # Once the response is made, the arrival alone is judged: on track, so a fresh ticket alike is not alerted.
    other = ticket(org, "Printer", sla_state="on_track", onsite_needed=True, response_due_at=NOW + timedelta(minutes=30),
                   arrival_due_at=NOW + timedelta(hours=4), first_response_at=NOW)
    db.session.add(QueueEntry(ticket_id=other.id, organisation_id=org.id, position=2, ahead=1, sla_at_risk=False,
                              eta_median=NOW + timedelta(minutes=95), eta_p90=NOW + timedelta(minutes=120),
                              set_off_median=NOW + timedelta(minutes=65), set_off_p90=NOW + timedelta(minutes=80),
                              computed_at=NOW))
    db.session.commit()
    assert alerts.check_sla(NOW) == alerts.CheckResult(0, 0)


def test_closed_tickets_are_not_alerted(app):
    make_user("d@firm.example", role=Role.DISPATCHER)
    org = make_organisation("Acme")
    ticket(org, status=TicketStatus.RESOLVED, sla_state="breached")
    assert alerts.check_sla(NOW) == alerts.CheckResult(0, 0)


def test_page_on_call_joins_the_callers_transaction_once(app):
    org = make_organisation("Acme")
    t = ticket(org, onsite_needed=True)
    assert alerts.page_on_call(t, "oncall@firm.example", NOW) is True
    db.session.commit()
    page = mails(alerts.PAGED_KIND)
    assert [m.recipient for m in page] == ["oncall@firm.example"]
    assert "AFTER-HOURS EMERGENCY" in page[0].subject and "1 Main St" in page[0].body
    assert alerts.page_on_call(t, "oncall@firm.example", NOW) is False
    db.session.commit()
    assert len(mails(alerts.PAGED_KIND)) == 1


def test_page_with_nobody_on_call_tells_the_dispatchers(app):
    make_user("d@firm.example", role=Role.DISPATCHER)
    org = make_organisation("Acme")
    t = ticket(org)
    alerts.page_on_call(t, None, NOW)
    db.session.commit()
    page = mails(alerts.PAGED_KIND)[0]
    assert page.recipient == "d@firm.example" and page.subject.startswith("[NOBODY ON CALL]")
    assert t.events[-1].public is False


def test_cli_check_refreshes_sla_states_then_alerts(app, monkeypatch):
    """Time passing alone makes a ticket breach: the worker refreshes states before alerting."""
    from tests.client.helpers import set_clock
    from tests.conftest import make_plan
    from tests.staff.test_actions import TUESDAY_10_NY, open_ticket

    make_user("d@firm.example", role=Role.DISPATCHER)
    set_clock(monkeypatch, TUESDAY_10_NY)
    t = open_ticket(make_organisation("Acme", make_plan("priority")), "Server down", impact="company")
    assert t.sla_state == "on_track"
    set_clock(monkeypatch, TUESDAY_10_NY + timedelta(hours=2))  # the 60-minute response is overdue
    result = app.test_cli_runner().invoke(args=["alerts", "check"])
    assert result.exit_code == 0, result.output
    assert "1 new breaches; 1 tickets, 1 emails" in result.output
    db.session.expire_all()
    assert db.session.get(Ticket, t.id).response_breached_at is not None
    assert len(mails(alerts.ALERT_KIND[alerts.BREACHED])) == 1
    assert "0 tickets, 0 emails" in app.test_cli_runner().invoke(args=["alerts", "check"]).output
