"""SLA clocks on stored tickets: plans, pauses, states, breaches, contract changes, compliance, settings, CLI."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update as sa_update

from portal.extensions import db
from portal.models import Contract, ContractStatus, Setting, Ticket, TicketEvent, TicketStatus
from portal.services import queue, settings, sla, tickets

from .conftest import open_for


def events(ticket_id: int, kind: str) -> list[TicketEvent]:
    return list(db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id, TicketEvent.kind == kind)))


def test_current_plan(firm):
    assert sla.current_plan(firm.acme.id).id == firm.priority.id
    assert sla.current_plan(firm.bolt.id) is None


def test_plan_calendars(firm, now):
    assert settings.plan_calendar(firm.premium).is_covered(now.replace(hour=3))
    assert not settings.plan_calendar(firm.priority).is_covered(datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc))  # Thanksgiving
    assert settings.plan_calendar(None) is settings.business_calendar()


def test_upgrade_rebases_open_tickets_from_the_moment_of_change(firm, now):
    mine = open_for(firm.bolt, firm.bolt_admin, now, title="Tills offline", onsite_needed=True, impact="company").ticket
    other = open_for(firm.acme, firm.acme_admin, now, title="Acme mouse").ticket
    assert mine.sla_best_effort and queue.entry_for(mine.id).position == 2
    change = now + timedelta(hours=1)
    db.session.add(Contract(organisation_id=firm.bolt.id, plan_id=firm.priority.id, status=ContractStatus.ACTIVE,
                            payment_method="card", starts_at=change))
    db.session.commit()
    assert sla.rebase_organisation(firm.bolt.id, change, "Upgraded to Priority") == 1
    t = db.session.get(Ticket, mine.id)
    assert t.sla_plan_id == firm.priority.id and not t.sla_best_effort and t.sla_clock_start == change
    assert t.response_due_at == change + timedelta(minutes=60)
    assert t.arrival_due_at == change + timedelta(minutes=240)
    [event] = events(mine.id, "sla_rebased")
    assert event.public and "Upgraded to Priority" in event.message and event.detail["before"]["plan"] == "Break/Fix"
    assert queue.entry_for(mine.id).position == 1  # whole company now beats one mouse within the contract class
    assert queue.entry_for(other.id).position == 2
    # The client's own upgrade is why its ticket moved: not "a technician became free sooner than planned".
    moved = max(events(mine.id, "re-ranked"), key=lambda e: e.id)
    assert moved.at == change and moved.message == "Moved from 2nd to 1st in line: your organisation's plan changed."
    passed = max(events(other.id, "re-ranked"), key=lambda e: e.id)
    assert passed.at == change and "plan changed" not in passed.message  # another client's contract is never named


def test_lapse_rebases_to_best_effort(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == firm.acme.id)).one()
    contract.status = ContractStatus.CANCELED
    db.session.commit()
    sla.rebase_organisation(firm.acme.id, now + timedelta(minutes=10), "Contract ended")
    t = db.session.get(Ticket, ticket.id)
    assert t.sla_plan_id is None and t.sla_best_effort and t.sla_state == "best_effort"


def test_pause_before_a_rebase_no_longer_shifts_the_clock(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    tickets.set_status(ticket.id, TicketStatus.WAITING_ON_CLIENT, firm.dispatcher, now + timedelta(minutes=5))
    tickets.set_status(ticket.id, TicketStatus.NEW, firm.acme_admin, now + timedelta(minutes=35))
    change = now + timedelta(minutes=40)
    db.session.scalars(select(Contract).where(Contract.organisation_id == firm.acme.id)).one().plan_id = firm.premium.id
    db.session.commit()
    sla.rebase_organisation(firm.acme.id, change, "Plan changed")
    assert db.session.get(Ticket, ticket.id).response_due_at == change + timedelta(minutes=firm.premium.remote_response_minutes)


def test_a_contract_change_that_keeps_the_plan_keeps_the_clock(firm, now):
    """The contract past due (a failed card payment, still served) and active again: same plan, same promise."""
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    due = ticket.response_due_at
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == firm.acme.id)).one()
    contract.status = ContractStatus.PAST_DUE
    db.session.commit()
    assert sla.rebase_organisation(firm.acme.id, now + timedelta(minutes=50), "Priority payment failed") == 0
    t = db.session.get(Ticket, ticket.id)
    assert (t.sla_clock_start, t.response_due_at) == (ticket.opened_at, due) and events(ticket.id, "sla_rebased") == []


def test_pause_extends_the_due_time_while_it_lasts(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    due = ticket.response_due_at
    tickets.set_status(ticket.id, TicketStatus.WAITING_ON_CLIENT, firm.dispatcher, now + timedelta(minutes=10))
    sla.refresh_states(now + timedelta(minutes=100))  # paused 90 minutes so far: never breached while waiting
    t = db.session.get(Ticket, ticket.id)
    assert t.response_due_at == due + timedelta(minutes=90) and t.response_breached_at is None


def test_the_clock_passing_does_not_make_a_ticket_read_as_changed_by_someone(firm, now):
    """`flask alerts check --loop` refreshes every minute; a ticket waiting on the client has its due times
    slide each time. That bumped the version the dispatcher's forms and the technician's taps carry, so
    'carry on' from a phone page over a minute old was refused as 'changed by someone else'."""
    from portal.services import staff

    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    tickets.set_status(ticket.id, TicketStatus.WAITING_ON_CLIENT, firm.tech_user, now + timedelta(minutes=10))
    drawn = db.session.get(Ticket, ticket.id).version
    due = db.session.get(Ticket, ticket.id).response_due_at
    for minutes in (11, 12, 13, 50):
        sla.refresh_states(now + timedelta(minutes=minutes))
    db.session.expire_all()
    t = db.session.get(Ticket, ticket.id)
    assert t.response_due_at == due + timedelta(minutes=40)  # the due time still slides while paused
    assert t.version == drawn
    outcome = staff.change_status(ticket.id, TicketStatus.IN_PROGRESS, "", drawn, firm.tech_user,
                                  now + timedelta(minutes=51))
    assert outcome.ok and db.session.get(Ticket, ticket.id).status == TicketStatus.IN_PROGRESS


def test_a_refresh_never_overwrites_a_change_saved_after_it_read_the_ticket(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    loaded = db.session.get(Ticket, ticket.id)
    assert loaded.sla_state == "on_track"
    # Another worker resolves the ticket between the refresh's read and its write.
    with db.engine.begin() as other:
        other.execute(Ticket.__table__.update().where(Ticket.__table__.c.id == ticket.id).values(
            status=TicketStatus.RESOLVED, sla_state="met", version=loaded.version + 1))
    share = settings.at_risk_share()
    assert sla._refresh_unversioned(loaded, now + timedelta(minutes=61), share) == 0  # a breach, not saved
    db.session.commit()
    db.session.expire_all()
    t = db.session.get(Ticket, ticket.id)
    assert (t.status, t.sla_state, t.response_breached_at) == (TicketStatus.RESOLVED, "met", None)
    assert events(ticket.id, "sla_breached_response") == []


def test_states_move_from_on_track_to_at_risk_to_breached_once(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    sla.refresh_states(now + timedelta(minutes=30))
    assert db.session.get(Ticket, ticket.id).sla_state == "on_track"
    sla.refresh_states(now + timedelta(minutes=50))
    assert db.session.get(Ticket, ticket.id).sla_state == "at_risk"
    result = sla.refresh_states(now + timedelta(minutes=61))
    again = sla.refresh_states(now + timedelta(minutes=70))
    t = db.session.get(Ticket, ticket.id)
    assert t.sla_state == "breached" and t.response_breached_at == now + timedelta(minutes=60)
    assert result.breaches == 1 and again.breaches == 0 and len(events(ticket.id, "sla_breached_response")) == 1
    # The client reads it in the firm's time, like the rest of the timeline (not ISO UTC).
    assert events(ticket.id, "sla_breached_response")[0].message == (
        "Remote response target missed: it was due Tue 24 Nov 11:00 (still pending at Tue 24 Nov 11:01).")


def test_at_risk_share_is_a_setting(firm, now):
    ticket = open_for(firm.acme, firm.acme_admin, now).ticket
    settings.save_at_risk_share(0.5, now)
    assert settings.at_risk_share() == 0.5
    sla.refresh_states(now + timedelta(minutes=35))
    assert db.session.get(Ticket, ticket.id).sla_state == "at_risk"
    with pytest.raises(ValueError):
        settings.save_at_risk_share(1.5, now)


def test_compliance_counts_guaranteed_tickets_only(firm, now):
    on_time = open_for(firm.acme, firm.acme_admin, now, title="On time").ticket
    late = open_for(firm.acme, firm.acme_admin, now, title="Late", onsite_needed=True).ticket
    open_for(firm.bolt, firm.bolt_admin, now, title="Break/fix")
    tickets.set_status(on_time.id, TicketStatus.IN_PROGRESS, firm.tech_user, now + timedelta(minutes=20))
    tickets.set_status(late.id, TicketStatus.EN_ROUTE, firm.tech_user, now + timedelta(minutes=90))
    tickets.set_status(late.id, TicketStatus.ON_SITE, firm.tech_user, now + timedelta(minutes=120))
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), now + timedelta(hours=3))
    assert (result.responses_total, result.responses_on_time) == (2, 1)
    assert (result.arrivals_total, result.arrivals_on_time) == (1, 1)
    assert result.response_share == 0.5
    assert sla.compliance_for(firm.bolt.id, now - timedelta(days=90), now).responses_total == 0


def test_a_ticket_the_client_closed_before_its_due_counts_as_its_page_says(firm, now):
    """Closed by the client 10 minutes in, before anyone answered: the ticket reads 'met', and the
    compliance figures agree instead of counting it as a missed response and arrival."""
    closed = open_for(firm.acme, firm.acme_admin, now, title="Fixed itself", onsite_needed=True).ticket
    tickets.set_status(closed.id, TicketStatus.RESOLVED, firm.acme_admin, now + timedelta(minutes=10))
    assert db.session.get(Ticket, closed.id).sla_state == "met"
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), now + timedelta(hours=6))
    assert (result.responses_total, result.responses_on_time) == (1, 1)
    assert (result.arrivals_total, result.arrivals_on_time) == (1, 1)


def test_triage_weights_are_validated_stored_and_used(firm, now):
    defaults = settings.triage_weights()
    with pytest.raises(ValueError):
        settings.save_triage_weights({**defaults.to_dict(), "safety_critical": -1}, firm.dispatcher, now)
    assert db.session.get(Setting, settings.TRIAGE_WEIGHTS_KEY) is None
    before = queue.generation()
    saved = settings.save_triage_weights({**defaults.to_dict(), "safety_critical": 500.0}, firm.dispatcher, now)
    assert settings.triage_weights() == saved and saved.safety_critical == 500.0
    assert queue.generation() == before + 1


def test_cli_commands(firm, now, app):
    open_for(firm.acme, firm.acme_admin, now)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["queue", "recompute"])
    assert result.exit_code == 0 and "1 tickets waiting" in result.output
    result = runner.invoke(args=["sla", "check"])
    assert result.exit_code == 0 and "sla: 1 open tickets" in result.output



def test_a_breach_recorded_before_an_upgrade_still_counts_as_missed(firm, now):
    """Acme's response was missed at 11:00 (breach recorded, the ticket reads 'breached'); upgrading at
    12:00 restarts the clock under the new plan, yet the missed response stays missed in the dashboard
    figures and the firm's report, as the ticket's own state and timeline say."""
    ticket = open_for(firm.acme, firm.acme_admin, now, title="Server down").ticket
    sla.refresh_states(now + timedelta(minutes=61))
    change = now + timedelta(hours=2)
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == firm.acme.id)).one()
    contract.plan_id = firm.premium.id
    db.session.commit()
    sla.rebase_organisation(firm.acme.id, change, "Upgraded to Premium 24/7")
    tickets.set_status(ticket.id, TicketStatus.IN_PROGRESS, firm.tech_user, change + timedelta(minutes=10))
    t = db.session.get(Ticket, ticket.id)
    assert t.sla_state == "breached" and t.response_breached_at == now + timedelta(minutes=60)
    later = change + timedelta(hours=1)
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), later)
    assert (result.responses_total, result.responses_on_time) == (1, 0)
    report = sla.promise_report(now - timedelta(days=90), later)
    assert (report.total.responses_total, report.total.responses_on_time) == (1, 0)
    [(missed, miss)] = report.missed
    assert missed.id == ticket.id and miss.due == now + timedelta(minutes=60)
    assert miss.late_by == timedelta(minutes=70)


def _end_contract(firm) -> None:
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == firm.acme.id)).one()
    contract.status = ContractStatus.CANCELED
    db.session.commit()


def test_a_promise_broken_before_the_contract_ended_stays_broken(firm, now):
    """Acme's remote response was due at 16:00 and missed (breach recorded at 16:01); the contract ends
    at 17:00 and the ticket goes best effort. The missed response still counts, under the plan it was
    promised on, in the dashboard and the firm's report; the arrival, due at 19:00, was never owed."""
    ticket = open_for(firm.acme, firm.acme_admin, now, title="Server down", onsite_needed=True).ticket
    sla.refresh_states(now + timedelta(minutes=61))
    _end_contract(firm)
    change = now + timedelta(hours=2)
    sla.rebase_organisation(firm.acme.id, change, "Contract ended")
    t = db.session.get(Ticket, ticket.id)
    assert t.sla_best_effort and t.sla_promise_ended_at == change
    tickets.set_status(ticket.id, TicketStatus.EN_ROUTE, firm.tech_user, now + timedelta(hours=5))
    tickets.set_status(ticket.id, TicketStatus.ON_SITE, firm.tech_user, now + timedelta(hours=6))
    later = now + timedelta(hours=7)
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), later)
    assert (result.responses_total, result.responses_on_time) == (1, 0)
    assert (result.arrivals_total, result.arrivals_on_time) == (0, 0)
    report = sla.promise_report(now - timedelta(days=90), later)
    assert (report.total.responses_total, report.total.arrivals_total) == (1, 0)
    assert [name for name, _ in report.by_plan] == [firm.priority.name]
    [(missed, miss)] = report.missed
    assert missed.id == ticket.id and miss.which == "response" and miss.due == now + timedelta(minutes=60)
    assert miss.done == now + timedelta(hours=5)


def test_a_promise_overdue_when_the_contract_ends_is_recorded_missed_not_forgotten(firm, now):
    """No clock round has run since the 16:00 response was due: the contract ending at 16:00:30 still
    records the miss on the timeline and in the figures, rather than letting best effort absorb it."""
    ticket = open_for(firm.acme, firm.acme_admin, now, title="Server down").ticket
    _end_contract(firm)
    change = now + timedelta(minutes=60, seconds=30)
    sla.rebase_organisation(firm.acme.id, change, "Contract ended")
    t = db.session.get(Ticket, ticket.id)
    assert t.response_breached_at == now + timedelta(minutes=60) and len(events(ticket.id, "sla_breached_response")) == 1
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), change + timedelta(hours=1))
    assert (result.responses_total, result.responses_on_time) == (1, 0)


def test_a_promise_kept_before_the_contract_ended_stays_kept_and_one_not_yet_due_is_not_owed(firm, now):
    """The remote response came at 15:20, in time; the contract ends at 16:00 before the technician
    (due on site by 19:00) arrives. The response counts as kept; the arrival is no longer owed, so
    arriving at 21:00 counts neither way."""
    kept = open_for(firm.acme, firm.acme_admin, now, title="Printer", onsite_needed=True).ticket
    untouched = open_for(firm.acme, firm.acme_admin, now, title="Mouse").ticket
    tickets.set_status(kept.id, TicketStatus.IN_PROGRESS, firm.tech_user, now + timedelta(minutes=20))
    _end_contract(firm)
    change = now + timedelta(minutes=59)
    sla.rebase_organisation(firm.acme.id, change, "Contract ended")
    tickets.set_status(kept.id, TicketStatus.ON_SITE, firm.tech_user, now + timedelta(hours=6))
    tickets.set_status(untouched.id, TicketStatus.IN_PROGRESS, firm.tech_user, now + timedelta(hours=6))
    later = now + timedelta(hours=7)
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), later)
    assert (result.responses_total, result.responses_on_time) == (1, 1)
    assert (result.arrivals_total, result.arrivals_on_time) == (0, 0)
    report = sla.promise_report(now - timedelta(days=90), later)
    assert (report.total.responses_total, report.total.responses_on_time, report.total.arrivals_total) == (1, 1, 0)
    assert report.missed == []
    assert [name for name, _ in report.by_plan] == [firm.priority.name]


def test_a_renewed_contract_owes_its_promises_again(firm, now):
    """Ended at 15:30, renewed at 16:30: the ticket is under a guarantee again, from the renewal."""
    ticket = open_for(firm.acme, firm.acme_admin, now, title="Mouse").ticket
    _end_contract(firm)
    sla.rebase_organisation(firm.acme.id, now + timedelta(minutes=30), "Contract ended")
    renewal = now + timedelta(minutes=90)
    db.session.add(Contract(organisation_id=firm.acme.id, plan_id=firm.priority.id, status=ContractStatus.ACTIVE,
                            payment_method="card", starts_at=renewal))
    db.session.commit()
    sla.rebase_organisation(firm.acme.id, renewal, "Contract renewed")
    t = db.session.get(Ticket, ticket.id)
    assert not t.sla_best_effort and t.sla_promise_ended_at is None and t.response_due_at == renewal + timedelta(minutes=60)
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), renewal + timedelta(minutes=61))
    assert (result.responses_total, result.responses_on_time) == (1, 0)


def test_the_migration_fills_in_promises_ended_from_the_timeline(firm, now):
    """Tickets moved to break/fix, or closed without work, before the columns existed: the upgrade reads
    when from their timeline, so their kept and missed promises count again."""
    import importlib

    migration = importlib.import_module(
        "migrations.versions.a7d3c5e1f902_promises_made_before_a_contract_ended_still_count")
    lapsed = open_for(firm.acme, firm.acme_admin, now, title="Server down").ticket
    duplicate = open_for(firm.acme, firm.acme_admin, now, title="Server down again").ticket
    resolved = open_for(firm.acme, firm.acme_admin, now, title="Mouse").ticket
    tickets.set_status(resolved.id, TicketStatus.RESOLVED, firm.tech_user, now + timedelta(minutes=5))
    tickets.set_status(resolved.id, TicketStatus.CLOSED, firm.dispatcher, now + timedelta(minutes=6))
    tickets.set_status(duplicate.id, TicketStatus.CLOSED, firm.dispatcher, now + timedelta(minutes=10))
    sla.refresh_states(now + timedelta(minutes=61))
    _end_contract(firm)
    sla.rebase_organisation(firm.acme.id, now + timedelta(hours=2), "Contract ended")
    db.session.execute(sa_update(Ticket).values(sla_promise_ended_at=None, sla_promise_plan_id=None))
    migration._backfill(db.session.connection())
    db.session.commit()
    db.session.expire_all()
    assert (db.session.get(Ticket, lapsed.id).sla_promise_ended_at, db.session.get(Ticket, lapsed.id).sla_promise_plan_id) \
        == (now + timedelta(hours=2), firm.priority.id)
    assert db.session.get(Ticket, duplicate.id).sla_promise_ended_at == now + timedelta(minutes=10)
    assert db.session.get(Ticket, resolved.id).sla_promise_ended_at is None


def test_a_ticket_closed_as_a_duplicate_before_its_due_is_not_judged(firm, now):
    """The client reported the outage twice; the dispatcher closes the second at 15:10, before anything
    was due. Its closing is no response: neither the dashboard nor Promises kept counts it kept, and
    the ticket does not read 'met' (the original, answered at 15:20, carries the promise)."""
    original = open_for(firm.acme, firm.acme_admin, now, title="Server down", onsite_needed=True).ticket
    duplicate = open_for(firm.acme, firm.acme_admin, now, title="Server down (again)", onsite_needed=True).ticket
    tickets.set_status(duplicate.id, TicketStatus.CLOSED, firm.dispatcher, now + timedelta(minutes=10),
                       note=f"Duplicate of #{original.id}.")
    tickets.set_status(original.id, TicketStatus.IN_PROGRESS, firm.tech_user, now + timedelta(minutes=20))
    t = db.session.get(Ticket, duplicate.id)
    assert t.sla_state == "best_effort" and t.response_breached_at is None
    later = now + timedelta(hours=6)
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), later)
    assert (result.responses_total, result.responses_on_time) == (1, 1)
    assert (result.arrivals_total, result.arrivals_on_time) == (1, 0)  # the original's arrival, due 19:00, is overdue
    report = sla.promise_report(now - timedelta(days=90), later)
    assert report.total == result
    assert {ticket.id for ticket, _ in report.missed} == {original.id}


def test_a_duplicate_closed_after_its_due_stays_missed(firm, now):
    """Nobody answered by 16:00; the ticket is marked a duplicate at 16:30. The client had already been
    kept waiting past the due time: the miss recorded stays on the ticket, the dashboard and the report."""
    duplicate = open_for(firm.acme, firm.acme_admin, now, title="Printer jam").ticket
    tickets.set_status(duplicate.id, TicketStatus.CLOSED, firm.dispatcher, now + timedelta(minutes=90),
                       note="Duplicate.")
    t = db.session.get(Ticket, duplicate.id)
    assert t.sla_state == "breached" and t.response_breached_at == now + timedelta(minutes=60)
    later = now + timedelta(hours=3)
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), later)
    assert (result.responses_total, result.responses_on_time) == (1, 0)
    [(missed, miss)] = sla.promise_report(now - timedelta(days=90), later).missed
    assert missed.id == duplicate.id and miss.late_by == timedelta(minutes=30)


def test_a_response_made_before_the_ticket_was_closed_without_work_stays_kept(firm, now):
    """The technician answered at 15:05, asked the client, who then said it was a duplicate: the response
    was made, in time, and counts; the ticket reads 'met'."""
    ticket = open_for(firm.acme, firm.acme_admin, now, title="VPN").ticket
    tickets.set_status(ticket.id, TicketStatus.IN_PROGRESS, firm.tech_user, now + timedelta(minutes=5))
    tickets.set_status(ticket.id, TicketStatus.WAITING_ON_CLIENT, firm.tech_user, now + timedelta(minutes=6))
    tickets.set_status(ticket.id, TicketStatus.ASSIGNED, firm.dispatcher, now + timedelta(minutes=7))
    tickets.set_status(ticket.id, TicketStatus.CLOSED, firm.dispatcher, now + timedelta(minutes=8), note="Duplicate.")
    assert db.session.get(Ticket, ticket.id).sla_state == "met"
    result = sla.compliance_for(firm.acme.id, now - timedelta(days=90), now + timedelta(hours=3))
    assert (result.responses_total, result.responses_on_time) == (1, 1)
