"""Triage order: the source articles' situations, overrides, reasons, weights and properties."""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from portal.domain.calendar import CoverageCalendar
from portal.domain.triage import (
    NOBODY_ON_CALL_MESSAGE,
    ON_CALL_HANDOVER_MARGIN,
    PAGED_MESSAGE,
    AfterHoursDecision,
    Impact,
    TriageTicket,
    TriageWeights,
    after_hours_decision,
    describe_local_time,
    holidays_words,
    rank_tickets,
)

NY_TZ = "America/New_York"
NY = ZoneInfo(NY_TZ)
UTC = timezone.utc
WEIGHTS = TriageWeights()
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=NY)  # Tuesday morning
BUSINESS = CoverageCalendar.business(NY_TZ)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def ticket(id: int, **changes) -> TriageTicket:
    base = TriageTicket(
        id=id,
        is_contract=True,
        plan_name="Essentials",
        impact=Impact.PERSON,
        revenue_per_hour=0.0,
        client_deadline=None,
        safety_critical=False,
        sla_due=None,
        effort_minutes=60.0,
        opened_at=NOW - timedelta(minutes=id),
    )
    return replace(base, **changes)


def order(tickets, now: datetime = NOW, weights: TriageWeights = WEIGHTS) -> list[int]:
    return [r.ticket_id for r in rank_tickets(tickets, weights, now, NY_TZ)]


# --- the source articles' situations ---------------------------------------------------------------


def test_company_wide_lan_outage_before_one_users_problem():
    one_user = ticket(1, impact=Impact.PERSON)
    lan = ticket(2, impact=Impact.COMPANY)
    assert order([one_user, lan]) == [2, 1]


def test_one_pc_blocking_todays_payroll_before_lan_outage_without_deadline():
    payroll_pc = ticket(1, impact=Impact.PERSON, client_deadline=ny(2026, 11, 24, 17, 0))
    lan = ticket(2, impact=Impact.COMPANY)
    results = rank_tickets([lan, payroll_pc], WEIGHTS, NOW, NY_TZ)
    assert [r.ticket_id for r in results] == [1, 2]
    assert "deadline today 17:00" in results[0].client_reasons


def test_manufacturer_losing_17000_an_hour_before_retailers_nuisance():
    label_printer = ticket(1, impact=Impact.DEPARTMENT, revenue_per_hour=17_000)
    nuisance = ticket(2, impact=Impact.PERSON, opened_at=NOW - timedelta(hours=3))
    results = rank_tickets([nuisance, label_printer], WEIGHTS, NOW, NY_TZ)
    assert [r.ticket_id for r in results] == [1, 2]
    assert "$17,000 an hour of revenue at risk" in results[0].client_reasons


def test_retailer_without_card_payments_before_christmas_before_manufacturers_spare_printer():
    last_weekend = ny(2026, 12, 19, 10, 0)  # Saturday before Christmas
    card_terminals = ticket(
        1, impact=Impact.COMPANY, revenue_per_hour=2_500, client_deadline=ny(2026, 12, 19, 12, 0),
        opened_at=last_weekend - timedelta(minutes=5),
    )
    spare_printer = ticket(2, impact=Impact.PERSON, opened_at=last_weekend - timedelta(hours=2), effort_minutes=15)
    assert order([spare_printer, card_terminals], now=last_weekend) == [1, 2]


def test_contract_client_before_break_fix_even_with_bigger_cost_of_delay():
    contract = ticket(1, impact=Impact.PERSON)
    break_fix = ticket(
        2, is_contract=False, plan_name="Break/Fix", impact=Impact.COMPANY, revenue_per_hour=50_000,
        safety_critical=True, client_deadline=NOW,
    )
    results = rank_tickets([break_fix, contract], WEIGHTS, NOW, NY_TZ)
    assert [r.ticket_id for r in results] == [1, 2]
    assert results[1].score > results[0].score
    assert results[0].client_reasons[0] == "Essentials contract: served before break/fix calls"
    assert results[1].client_reasons[0].startswith("Break/fix")


def test_break_fix_target_is_worded_as_best_effort():
    break_fix = ticket(1, is_contract=False, plan_name="Break/Fix", sla_due=ny(2026, 11, 25, 8, 0))
    (result,) = rank_tickets([break_fix], WEIGHTS, NOW, NY_TZ)
    assert "aiming for tomorrow 08:00 (best effort, not a guarantee)" in result.client_reasons
    assert not any("contract" in reason for reason in result.client_reasons[1:])


def test_after_hours_contract_emergency_pages_on_call():
    night = ny(2026, 11, 24, 23, 0)
    decision = after_hours_decision(night, True, True, BUSINESS, BUSINESS)
    assert decision == AfterHoursDecision(covered_now=True, page_on_call=True, next_business_at=None, message=decision.message)
    assert "on-call" in decision.message


def test_after_hours_break_fix_is_told_next_business_day():
    night = ny(2026, 11, 25, 23, 0)  # Wednesday night before Thanksgiving
    decision = after_hours_decision(night, False, False, BUSINESS, BUSINESS)
    assert not decision.covered_now and not decision.page_on_call
    assert decision.next_business_at == ny(2026, 11, 27, 8, 0)
    assert decision.message == ("Outside business hours (Thu 26 Nov is Thanksgiving Day, a public holiday): "
                                "we will start on the next business day, Fri 27 Nov 2026 08:00.")
    monday = after_hours_decision(ny(2026, 11, 23, 23, 0), False, False, BUSINESS, BUSINESS)
    assert monday.message == "Outside business hours: we will start on the next business day, Tue 24 Nov 2026 08:00."


def test_every_holiday_that_closes_a_working_day_before_the_start_is_named():
    christmas_eve = ny(2026, 12, 24, 19, 0)  # Thursday evening; Friday is Christmas Day
    decision = after_hours_decision(christmas_eve, False, False, BUSINESS, BUSINESS)
    assert decision.message == ("Outside business hours (Fri 25 Dec is Christmas Day, a public holiday): "
                                "we will start on the next business day, Mon 28 Dec 2026 08:00.")
    both = BUSINESS.holidays_closed(christmas_eve, ny(2027, 1, 4, 8, 0))
    assert both == [(date(2026, 12, 25), "Christmas Day"), (date(2027, 1, 1), "New Year's Day")]
    assert holidays_words(both) == "Fri 25 Dec (Christmas Day) and Fri 01 Jan (New Year's Day) are public holidays"
    # Independence Day 2027 is a Sunday, which closes no working day; the Monday it is observed on does.
    assert BUSINESS.holidays_closed(ny(2027, 7, 2, 19, 0), ny(2027, 7, 6, 8, 0)) == [(date(2027, 7, 5), "Independence Day (observed)")]
    assert CoverageCalendar.always().holidays_closed(christmas_eve, ny(2027, 1, 4, 8, 0)) == []


def test_before_opening_the_next_business_day_is_called_today():
    early = ny(2026, 11, 25, 6, 30)  # Wednesday before opening time
    decision = after_hours_decision(early, False, False, BUSINESS, BUSINESS)
    assert decision.next_business_at == ny(2026, 11, 25, 8, 0)
    assert decision.message == (
        "Outside business hours: we will start when the next business day begins: today, Wed 25 Nov 2026 08:00.")


def test_after_hours_contract_without_emergency_cover_waits_for_its_plan_hours():
    decision = after_hours_decision(ny(2026, 11, 24, 23, 0), True, False, BUSINESS, BUSINESS)
    assert not decision.page_on_call and decision.next_business_at == ny(2026, 11, 25, 8, 0)


def test_24x7_plan_after_hours_pages_on_call_and_daytime_is_just_queued():
    always = CoverageCalendar.always()
    assert after_hours_decision(ny(2026, 11, 24, 23, 0), True, False, always, BUSINESS).page_on_call
    daytime = after_hours_decision(ny(2026, 11, 24, 10, 0), False, False, BUSINESS, BUSINESS)
    assert daytime.covered_now and not daytime.page_on_call and daytime.next_business_at is None


def test_on_call_ending_before_the_response_is_due_alerts_the_dispatchers_and_says_so():
    """Wed 06:55, a 24x7 contract, response due 07:25: the on-call technician goes off duty at 07:00
    and the day shift begins at 08:00. "Has been paged" alone promised someone who would be gone."""
    always = CoverageCalendar.always()
    decision = after_hours_decision(ny(2026, 11, 25, 6, 55), True, True, always, BUSINESS,
                                    on_call_ends_at=ny(2026, 11, 25, 7, 0), response_due_at=ny(2026, 11, 25, 7, 25))
    assert decision.page_on_call and decision.alert_dispatchers
    assert decision.message == (
        "After hours: your contract covers emergencies. The on-call technician has been paged but goes off duty "
        "at 07:00, so our dispatchers have also been alerted to find cover; the day shift begins at 08:00.")


def test_on_call_ending_just_after_the_response_is_due_counts_as_ending_before_it():
    always = CoverageCalendar.always()
    due = ny(2026, 11, 25, 7, 25)
    inside = after_hours_decision(ny(2026, 11, 25, 6, 55), True, True, always, BUSINESS,
                                  on_call_ends_at=due + ON_CALL_HANDOVER_MARGIN - timedelta(minutes=1),
                                  response_due_at=due)
    assert inside.alert_dispatchers
    clear = after_hours_decision(ny(2026, 11, 25, 6, 55), True, True, always, BUSINESS,
                                 on_call_ends_at=due + ON_CALL_HANDOVER_MARGIN, response_due_at=due)
    assert not clear.alert_dispatchers and clear.message == PAGED_MESSAGE


def test_on_call_cover_lasting_past_the_response_still_reads_paged():
    decision = after_hours_decision(ny(2026, 11, 24, 23, 0), True, True, BUSINESS, BUSINESS,
                                    on_call_ends_at=ny(2026, 11, 25, 7, 0), response_due_at=ny(2026, 11, 24, 23, 30))
    assert decision.message == PAGED_MESSAGE and not decision.alert_dispatchers


def test_cover_ending_on_a_weekend_names_the_monday_day_shift():
    always = CoverageCalendar.always()
    decision = after_hours_decision(ny(2026, 11, 28, 23, 50), True, True, always, BUSINESS,
                                    on_call_ends_at=ny(2026, 11, 29, 0, 0), response_due_at=ny(2026, 11, 29, 0, 20))
    assert "goes off duty tomorrow at 00:00" in decision.message
    assert "the day shift begins on Mon 30 Nov at 08:00" in decision.message


def test_nobody_on_call_still_reads_nobody_on_call():
    decision = after_hours_decision(ny(2026, 11, 24, 23, 0), True, True, BUSINESS, BUSINESS, on_call=False,
                                    response_due_at=ny(2026, 11, 24, 23, 30))
    assert decision.message == NOBODY_ON_CALL_MESSAGE and not decision.alert_dispatchers


@settings(max_examples=200, deadline=None)
@given(
    opened=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC)),
    cover_minutes=st.integers(min_value=1, max_value=60 * 24 * 3),
    response_minutes=st.integers(min_value=0, max_value=60 * 8),
)
def test_paged_alone_is_never_said_when_cover_ends_before_the_response_is_due(opened, cover_minutes, response_minutes):
    always = CoverageCalendar.always()
    ends, due = opened + timedelta(minutes=cover_minutes), opened + timedelta(minutes=response_minutes)
    decision = after_hours_decision(opened, True, True, always, BUSINESS, on_call_ends_at=ends, response_due_at=due)
    if BUSINESS.is_covered(opened):
        assert not decision.page_on_call
        return
    assert decision.page_on_call
    gap = BUSINESS.next_covered(opened) > ends
    if gap and ends < due + ON_CALL_HANDOVER_MARGIN:
        assert decision.alert_dispatchers and decision.message != PAGED_MESSAGE
        assert "goes off duty" in decision.message and "dispatchers" in decision.message
        assert "day shift begins" in decision.message
    else:
        assert not decision.alert_dispatchers and decision.message == PAGED_MESSAGE
    if decision.message == PAGED_MESSAGE and ends < due:
        assert not gap  # only when the day shift takes over as the call ends


# --- other rules -----------------------------------------------------------------------------------


def test_quick_win_first_when_cost_is_equal():
    long_job = ticket(1, effort_minutes=240)
    quick = ticket(2, effort_minutes=15)
    results = rank_tickets([long_job, quick], WEIGHTS, NOW, NY_TZ)
    assert [r.ticket_id for r in results] == [2, 1]
    assert "quick fix (about 15 min)" in results[0].client_reasons


def test_closer_client_deadline_is_more_urgent():
    later = ticket(1, client_deadline=ny(2026, 11, 24, 20, 0))
    sooner = ticket(2, client_deadline=ny(2026, 11, 24, 12, 0))
    assert order([later, sooner]) == [2, 1]


def test_safety_critical_goes_first():
    clinic = ticket(1, safety_critical=True, opened_at=NOW)
    office = ticket(2, impact=Impact.DEPARTMENT, opened_at=NOW - timedelta(hours=1))
    results = rank_tickets([office, clinic], WEIGHTS, NOW, NY_TZ)
    assert [r.ticket_id for r in results] == [1, 2]
    assert "safety-critical" in results[0].client_reasons


def test_sla_due_sooner_goes_first():
    relaxed = ticket(1, sla_due=ny(2026, 11, 24, 16, 0))
    urgent = ticket(2, sla_due=ny(2026, 11, 24, 9, 30))
    results = rank_tickets([relaxed, urgent], WEIGHTS, NOW, NY_TZ)
    assert [r.ticket_id for r in results] == [2, 1]
    assert "contract target due today 09:30" in results[0].client_reasons


def test_a_client_in_another_zone_reads_its_deadlines_in_its_own_zone_labelled_and_staff_keep_the_firms():
    payroll = ticket(1, client_deadline=ny(2026, 11, 24, 17, 0), sla_due=ny(2026, 11, 24, 9, 30),
                     client_tz="America/Los_Angeles")
    (result,) = rank_tickets([payroll], WEIGHTS, NOW, NY_TZ)
    assert "deadline today 14:00 PST" in result.client_reasons
    assert "contract target due today 06:30 PST" in result.client_reasons
    assert any("(today 17:00)" in reason for reason in result.staff_reasons)
    assert not any("PST" in reason for reason in result.staff_reasons)
    # Past midnight in New York but not yet in Los Angeles: "today" is the client's own day.
    late = replace(payroll, sla_due=ny(2026, 11, 25, 1, 0))
    (result,) = rank_tickets([late], WEIGHTS, ny(2026, 11, 24, 20, 0), NY_TZ)
    assert "contract target due today 22:00 PST" in result.client_reasons
    assert any("(tomorrow 01:00)" in reason for reason in result.staff_reasons)


def test_a_client_in_the_firms_zone_reads_no_label():
    payroll = ticket(1, client_deadline=ny(2026, 11, 24, 17, 0), client_tz=NY_TZ)
    (result,) = rank_tickets([payroll], WEIGHTS, NOW, NY_TZ)
    assert "deadline today 17:00" in result.client_reasons


@settings(max_examples=50, deadline=None)
@given(zone=st.sampled_from(["America/Los_Angeles", "Europe/London", "Asia/Kolkata", NY_TZ]),
       minutes=st.integers(min_value=-600, max_value=3000))
def test_the_client_zone_changes_the_words_never_the_order_or_the_score(zone, minutes):
    tickets = [ticket(i, client_deadline=NOW + timedelta(minutes=minutes + 37 * i),
                      sla_due=NOW + timedelta(minutes=minutes * i % 900 + 5), impact=impact)
               for i, impact in enumerate([Impact.PERSON, Impact.COMPANY, Impact.DEPARTMENT], start=1)]
    firm = rank_tickets(tickets, WEIGHTS, NOW, NY_TZ)
    own = rank_tickets([replace(t, client_tz=zone) for t in tickets], WEIGHTS, NOW, NY_TZ)
    assert [(r.ticket_id, r.score, r.staff_reasons) for r in own] == [(r.ticket_id, r.score, r.staff_reasons) for r in firm]
    assert all(len(a.client_reasons) == len(b.client_reasons) for a, b in zip(own, firm))


def test_ties_break_by_opened_at_then_id():
    a = ticket(5, opened_at=NOW - timedelta(hours=1))
    b = ticket(3, opened_at=NOW)
    c = ticket(4, opened_at=NOW)
    assert order([b, c, a]) == [5, 3, 4]


def test_client_reasons_read_like_the_brief():
    payroll = ticket(1, impact=Impact.COMPANY, client_deadline=ny(2026, 11, 24, 17, 0))
    (result,) = rank_tickets([payroll], WEIGHTS, NOW, NY_TZ)
    assert "; ".join(result.client_reasons[:3]) == (
        "Essentials contract: served before break/fix calls; whole office affected; deadline today 17:00")


def test_staff_reasons_show_the_scores():
    t = ticket(1, impact=Impact.COMPANY, revenue_per_hour=17_000, effort_minutes=30)
    (result,) = rank_tickets([t], WEIGHTS, NOW, NY_TZ)
    # No SLA due: counted as one horizon of slack, urgency e^-1.
    assert result.components == pytest.approx({
        "impact": 100.0, "revenue": 850.0, "deadline": 0.0, "safety": 0.0, "sla": 0.0,
        "effort_hours": 0.5, "sla_urgency": math.exp(-1),
    })
    assert result.score == pytest.approx(950 * (0.25 + math.exp(-1)) / 0.5)
    assert "impact company: +100.0" in result.staff_reasons
    assert "revenue at risk $17,000/h: +850.0" in result.staff_reasons
    assert "cost of delay: 950.0 points an hour" in result.staff_reasons
    assert "score 1174.0" in result.staff_reasons


def test_contract_sla_still_within_reach_goes_before_one_already_broken():
    broken = ticket(1, sla_due=NOW - timedelta(minutes=10))
    within_reach = ticket(2, sla_due=NOW + timedelta(minutes=70))
    results = rank_tickets([broken, within_reach], WEIGHTS, NOW, NY_TZ)
    assert [r.ticket_id for r in results] == [2, 1]
    assert results[0].components["sla"] == WEIGHTS.sla_max and results[1].components["sla"] == 0.0


def test_sla_urgency_rises_as_the_slack_runs_out():
    scores = [rank_tickets([ticket(1, sla_due=NOW + timedelta(hours=h))], WEIGHTS, NOW, NY_TZ)[0].score
              for h in (8, 4, 2, 1)]
    assert scores == sorted(scores) and scores[-1] > 10 * scores[0]


def test_weights_saved_before_the_score_change_still_load():
    assert TriageWeights.from_dict({"effort_points_per_hour": 5.0, "sla_max": 80}).sla_max == 80.0


def test_deadline_is_shown_in_the_firms_local_time():
    assert describe_local_time(datetime(2026, 11, 24, 22, 0, tzinfo=UTC), NOW, NY_TZ) == "today 17:00"
    assert describe_local_time(ny(2026, 11, 25, 9, 0), NOW, NY_TZ) == "tomorrow 09:00"
    assert describe_local_time(ny(2026, 11, 27, 9, 0), NOW, NY_TZ) == "Fri 27 Nov 09:00"
    assert describe_local_time(ny(2027, 1, 4, 9, 0), NOW, NY_TZ) == "Mon 4 Jan 2027 09:00"


# --- overrides -------------------------------------------------------------------------------------


def test_override_pins_ticket_at_its_place_and_shows_the_reason():
    tickets = [ticket(i, impact=Impact.COMPANY if i == 1 else Impact.PERSON) for i in range(1, 6)]
    natural = order(tickets)
    pinned = replace(tickets[4], is_contract=False, override_position=2, override_reason="CEO's laptop, board meeting at 10")
    tickets[4] = pinned
    results = rank_tickets(tickets, WEIGHTS, NOW, NY_TZ)
    ids = [r.ticket_id for r in results]
    assert ids[1] == 5
    assert [i for i in ids if i != 5] == [i for i in natural if i != 5]
    assert results[1].client_reasons[0] == "Moved in the queue by our dispatcher: CEO's laptop, board meeting at 10"
    assert not any("position" in reason for reason in results[1].client_reasons)  # the place shown is dispatch's
    assert any(r.startswith("override: pinned at place 2") for r in results[1].staff_reasons)


def test_override_beyond_the_end_goes_last_and_same_place_keeps_natural_order():
    tickets = [ticket(1), ticket(2), ticket(3, override_position=9), ticket(4, override_position=1), ticket(5, override_position=1)]
    ids = order(tickets)
    assert ids[:2] == [5, 4]  # both pinned first: 5 was opened earlier, so it keeps the lead
    assert ids[-1] == 3
    assert [r.rank for r in rank_tickets(tickets, WEIGHTS, NOW, NY_TZ)] == [1, 2, 3, 4, 5]


def test_bad_input_is_refused_with_the_field():
    with pytest.raises(ValueError, match="override_position"):
        order([ticket(1, override_position=0)])
    with pytest.raises(ValueError, match="revenue_per_hour"):
        order([ticket(1, revenue_per_hour=-5)])
    with pytest.raises(ValueError, match="appears twice"):
        order([ticket(1), ticket(1)])


# --- weights ---------------------------------------------------------------------------------------


def test_weights_round_trip_and_partial_update():
    assert TriageWeights.from_dict(WEIGHTS.to_dict()) == WEIGHTS
    changed = TriageWeights.from_dict({"safety_critical": "300", "impact_person": 5})
    assert changed.safety_critical == 300.0 and changed.impact_person == 5.0
    assert changed.impact_company == WEIGHTS.impact_company


@pytest.mark.parametrize(
    "data, key",
    [
        ({"impact_comapny": 1}, "impact_comapny"),
        ({"revenue_cap": "lots"}, "revenue_cap"),
        ({"revenue_cap": -1}, "revenue_cap"),
        ({"sla_max": float("nan")}, "sla_max"),
        ({"sla_horizon_hours": 0}, "sla_horizon_hours"),
        ({"deadline_max": True}, "deadline_max"),
        ({"impact_department": 500}, "impact_company"),
        ({"impact_person": 50}, "impact_department"),
        ({"cost_before_due_share": 5}, "cost_before_due_share"),
        ({"cost_before_due_share": 1.01}, "cost_before_due_share"),
        ({"deadline_horizon_hours": 1e-300}, "deadline_horizon_hours"),
        ({"sla_horizon_hours": 0.001}, "sla_horizon_hours"),
        ({"effort_floor_minutes": 1e-300}, "effort_floor_minutes"),
        ({"effort_cap_hours": 0.001}, "effort_cap_hours"),
        ({"effort_floor_minutes": 600, "effort_cap_hours": 8}, "effort_cap_hours"),
    ],
)
def test_bad_weights_name_the_key(data: dict, key: str):
    with pytest.raises(ValueError, match=f"^{key}:"):
        TriageWeights.from_dict(data)


def test_weights_change_the_order():
    payroll_pc = ticket(1, impact=Impact.PERSON, client_deadline=ny(2026, 11, 24, 17, 0))
    lan = ticket(2, impact=Impact.COMPANY)
    assert order([payroll_pc, lan]) == [1, 2]
    no_deadlines = TriageWeights.from_dict({"deadline_max": 0})
    assert order([payroll_pc, lan], weights=no_deadlines) == [2, 1]


# --- properties ------------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2026, 11, 20), max_value=datetime(2026, 11, 28), timezones=st.just(UTC))


@st.composite
def triage_tickets(draw, id: int, with_override: bool = False) -> TriageTicket:
    return TriageTicket(
        id=id,
        is_contract=draw(st.booleans()),
        plan_name=draw(st.sampled_from(["Essentials", "Premium 24/7", "Break/Fix"])),
        impact=draw(st.sampled_from(list(Impact))),
        revenue_per_hour=draw(st.sampled_from([0.0, 500.0, 2_500.0, 17_000.0, 40_000.0])),
        client_deadline=draw(st.none() | instants),
        safety_critical=draw(st.booleans()),
        sla_due=draw(st.none() | instants),
        effort_minutes=draw(st.sampled_from([0.0, 15.0, 60.0, 240.0, 900.0])),
        opened_at=draw(st.sampled_from([NOW, NOW - timedelta(hours=1)])),
        override_position=draw(st.none() | st.integers(1, 8)) if with_override else None,
    )


@st.composite
def ticket_sets(draw, with_override: bool = False) -> list[TriageTicket]:
    count = draw(st.integers(0, 8))
    return [draw(triage_tickets(id, with_override)) for id in range(1, count + 1)]


@settings(max_examples=100, deadline=None)
@given(tickets=ticket_sets(), newcomer=triage_tickets(99), now=instants)
def test_no_unrelated_ticket_can_flip_two_others(tickets, newcomer, now):
    before = order(tickets, now=now)
    after = [i for i in order(tickets + [newcomer], now=now) if i != 99]
    assert after == before


@settings(max_examples=100, deadline=None)
@given(tickets=ticket_sets(with_override=True), now=instants, seed=st.randoms())
def test_order_is_total_and_independent_of_input_order(tickets, now, seed):
    first = order(tickets, now=now)
    shuffled = list(tickets)
    seed.shuffle(shuffled)
    assert order(shuffled, now=now) == first
    assert sorted(first) == sorted(t.id for t in tickets)


@settings(max_examples=100, deadline=None)
@given(tickets=ticket_sets(), now=instants)
def test_contract_never_behind_break_fix_without_override(tickets, now):
    by_id = {t.id: t for t in tickets}
    classes = [by_id[i].is_contract for i in order(tickets, now=now)]
    assert classes == sorted(classes, reverse=True)


@settings(max_examples=100, deadline=None)
@given(tickets=ticket_sets(with_override=True), now=instants)
def test_pins_land_in_place_and_the_rest_keep_their_order(tickets, now):
    results = rank_tickets(tickets, WEIGHTS, now, NY_TZ)
    ranks = {r.ticket_id: r.rank for r in results}
    pins = sorted(t.override_position for t in tickets if t.override_position is not None)
    free = [t for t in tickets if t.override_position is None]
    # The unpinned tickets keep exactly the order they would have without any pinned ticket.
    assert [r.ticket_id for r in results if r.ticket_id in {t.id for t in free}] == order(free, now=now)
    for t in tickets:
        position = t.override_position
        # A ticket holding the lowest pin, alone there, with room for the later pins, is exactly in place.
        if position is not None and pins.count(position) == 1 and position == pins[0] and position <= len(tickets) - len(pins) + 1:
            assert ranks[t.id] == position


def test_weights_at_their_bounds_are_accepted():
    """A share is a fraction of the cost (0..1); horizons and the effort floor are at least a minute."""
    weights = TriageWeights.from_dict({"cost_before_due_share": 1, "deadline_horizon_hours": 1 / 60,
                                       "sla_horizon_hours": 1 / 60, "effort_floor_minutes": 1,
                                       "effort_cap_hours": 1 / 60})
    assert weights.cost_before_due_share == 1.0 and weights.effort_floor_minutes == 1.0
    assert TriageWeights.from_dict({"cost_before_due_share": 0}).cost_before_due_share == 0.0
    with pytest.raises(ValueError, match="^cost_before_due_share: .*between 0 and 1"):
        TriageWeights.from_dict({"cost_before_due_share": 5})
    with pytest.raises(ValueError, match="^deadline_horizon_hours: .*at least a minute"):
        TriageWeights.from_dict({"deadline_horizon_hours": 1e-300})
