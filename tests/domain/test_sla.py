"""SLA clocks: due times in covered time, best effort, pauses, states and compliance."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from portal.domain.calendar import CoverageCalendar
from portal.domain.sla import (
    ARRIVAL,
    RESPONSE,
    Compliance,
    DueTimes,
    Outlook,
    MissedPromise,
    Pause,
    SlaOutcome,
    SlaState,
    settled_by,
    SlaTerms,
    compliance,
    due_times,
    estimate_outlook,
    missed_promises,
    owed_outlook,
    owed_promises,
    promise_outlook,
    sla_state,
)

NY_TZ = "America/New_York"
NY = ZoneInfo(NY_TZ)
UTC = timezone.utc
BUSINESS = CoverageCalendar.business(NY_TZ)
ESSENTIALS = SlaTerms(guaranteed=True, response_minutes=120, onsite_minutes=480, calendar=BUSINESS)
PREMIUM = SlaTerms(guaranteed=True, response_minutes=30, onsite_minutes=120, calendar=CoverageCalendar.always())
BREAK_FIX = SlaTerms(guaranteed=False, response_minutes=None, onsite_minutes=None, calendar=BUSINESS)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


# --- due times -----------------------------------------------------------------------------------


def test_business_hours_contract_counts_only_covered_time():
    due = due_times(ESSENTIALS, ny(2026, 11, 24, 16, 0), onsite_needed=True)
    assert due == DueTimes(response_due=ny(2026, 11, 24, 18, 0), arrival_due=ny(2026, 11, 25, 14, 0), best_effort=False)


def test_arrival_is_only_due_when_someone_must_come():
    due = due_times(ESSENTIALS, ny(2026, 11, 24, 16, 0), onsite_needed=False)
    assert due.arrival_due is None and due.response_due is not None


def test_holiday_is_skipped_for_due_times():
    # Opened Wednesday before Thanksgiving 17:00: 1 h Wednesday + 1 h Friday.
    due = due_times(ESSENTIALS, ny(2026, 11, 25, 17, 0), onsite_needed=True)
    assert due.response_due == ny(2026, 11, 27, 9, 0)
    assert due.arrival_due == ny(2026, 11, 27, 15, 0)  # 1 h Wednesday + 7 h Friday


def test_24x7_plan_runs_through_the_night():
    due = due_times(PREMIUM, ny(2026, 11, 26, 2, 0), onsite_needed=True)
    assert due.response_due == ny(2026, 11, 26, 2, 30)
    assert due.arrival_due == ny(2026, 11, 26, 4, 0)


def test_break_fix_is_best_effort_next_business_day():
    due = due_times(BREAK_FIX, ny(2026, 11, 25, 10, 0), onsite_needed=True)
    assert due.best_effort is True
    assert due.response_due == due.arrival_due == ny(2026, 11, 27, 8, 0)  # Thursday is Thanksgiving
    assert due_times(BREAK_FIX, ny(2026, 11, 24, 10, 0), onsite_needed=False).arrival_due is None


def test_pause_shifts_due_time_by_exactly_the_covered_time_that_passed():
    start = ny(2026, 11, 24, 9, 0)  # response due 11:00
    pause = Pause(ny(2026, 11, 24, 9, 30), ny(2026, 11, 24, 10, 15))
    assert due_times(ESSENTIALS, start, False, [pause]).response_due == ny(2026, 11, 24, 11, 45)


def test_pause_over_the_night_only_counts_covered_time():
    start = ny(2026, 11, 24, 17, 0)  # response due Wed 09:00
    pause = Pause(ny(2026, 11, 24, 17, 30), ny(2026, 11, 25, 8, 30))  # 30 covered min Tue + 30 Wed
    assert due_times(ESSENTIALS, start, False, [pause]).response_due == ny(2026, 11, 25, 10, 0)


def test_open_pause_counts_until_now_and_needs_now():
    start = ny(2026, 11, 24, 9, 0)
    open_pause = Pause(ny(2026, 11, 24, 9, 30), None)
    due = due_times(ESSENTIALS, start, False, [open_pause], now=ny(2026, 11, 24, 10, 0))
    assert due.response_due == ny(2026, 11, 24, 11, 30)
    with pytest.raises(ValueError, match="now is needed"):
        due_times(ESSENTIALS, start, False, [open_pause])


def test_pause_after_the_deadline_passed_cannot_rescue_a_breach():
    start = ny(2026, 11, 24, 9, 0)  # due 11:00
    late_pause = Pause(ny(2026, 11, 24, 12, 0), ny(2026, 11, 24, 15, 0))
    assert due_times(ESSENTIALS, start, False, [late_pause]).response_due == ny(2026, 11, 24, 11, 0)


def test_overlapping_pauses_are_counted_once():
    start = ny(2026, 11, 24, 9, 0)
    pauses = [Pause(ny(2026, 11, 24, 9, 30), ny(2026, 11, 24, 10, 0)), Pause(ny(2026, 11, 24, 9, 45), ny(2026, 11, 24, 10, 15))]
    assert due_times(ESSENTIALS, start, False, pauses).response_due == ny(2026, 11, 24, 11, 45)


def test_pause_before_the_clock_started_is_ignored():
    start = ny(2026, 11, 24, 9, 0)
    early = Pause(ny(2026, 11, 24, 8, 0), ny(2026, 11, 24, 9, 0))
    assert due_times(ESSENTIALS, start, False, [early]).response_due == ny(2026, 11, 24, 11, 0)


@pytest.mark.parametrize("opened, aimed", [
    (ny(2026, 11, 24, 0, 5), ny(2026, 11, 24, 8, 0)),  # just after midnight: today's opening, as 23:55 would be
    (ny(2026, 11, 23, 23, 55), ny(2026, 11, 24, 8, 0)),
    (ny(2026, 11, 24, 7, 59), ny(2026, 11, 24, 8, 0)),
    (ny(2026, 11, 24, 8, 0), ny(2026, 11, 25, 8, 0)),  # open for business: the next business day
    (ny(2026, 11, 24, 19, 0), ny(2026, 11, 25, 8, 0)),
    (ny(2026, 11, 26, 2, 0), ny(2026, 11, 27, 8, 0)),  # Thanksgiving night: Friday
    (ny(2027, 3, 14, 1, 30), ny(2027, 3, 15, 8, 0)),  # Sunday of spring forward: Monday 08:00 EDT
])
def test_break_fix_opened_before_opening_time_aims_for_that_mornings_opening(opened, aimed):
    """The after-hours notice says "we will start when the next business day begins: today, 08:00":
    the best-effort target of a ticket opened at 00:05 was the day after, a day later than one
    opened ten minutes earlier."""
    assert due_times(BREAK_FIX, opened, onsite_needed=True).response_due == aimed


def test_break_fix_best_effort_target_also_moves_with_a_pause():
    start = ny(2026, 11, 24, 10, 0)  # target Wed 08:00
    pause = Pause(ny(2026, 11, 24, 11, 0), ny(2026, 11, 24, 12, 0))
    assert due_times(BREAK_FIX, start, True, [pause]).response_due == ny(2026, 11, 25, 9, 0)


def test_nonpositive_target_is_refused():
    with pytest.raises(ValueError, match="response_minutes"):
        due_times(SlaTerms(True, 0, None, BUSINESS), ny(2026, 11, 24, 9, 0), False)


# --- states --------------------------------------------------------------------------------------


START = ny(2026, 11, 24, 9, 0)
DUE = ny(2026, 11, 24, 11, 0)  # 120 covered minutes


@pytest.mark.parametrize(
    "now, done_at, expected",
    [
        (ny(2026, 11, 24, 9, 10), None, SlaState.ON_TRACK),
        (ny(2026, 11, 24, 10, 29), None, SlaState.ON_TRACK),
        (ny(2026, 11, 24, 10, 30), None, SlaState.AT_RISK),  # exactly 25% left
        (ny(2026, 11, 24, 11, 0), None, SlaState.AT_RISK),  # due now, not yet late
        (ny(2026, 11, 24, 11, 1), None, SlaState.BREACHED),
        (ny(2026, 11, 24, 12, 0), ny(2026, 11, 24, 11, 0), SlaState.MET),
        (ny(2026, 11, 24, 12, 0), ny(2026, 11, 24, 11, 1), SlaState.BREACHED),
    ],
)
def test_sla_state(now: datetime, done_at, expected: SlaState):
    assert sla_state(DUE, 120, START, BUSINESS, now, done_at) is expected


def test_at_risk_share_is_configurable_and_counts_covered_time():
    # Due Wed 09:00 after a 120-min target started Tue 17:00; at 17:45 Tue 75 covered min are left.
    start, due = ny(2026, 11, 24, 17, 0), ny(2026, 11, 25, 9, 0)
    assert sla_state(due, 120, start, BUSINESS, ny(2026, 11, 24, 17, 45), None, at_risk_share=0.5) is SlaState.ON_TRACK
    assert sla_state(due, 120, start, BUSINESS, ny(2026, 11, 24, 17, 45), None, at_risk_share=0.7) is SlaState.AT_RISK
    # Overnight nothing is used up: still 60 min left at 07:00 Wednesday.
    assert sla_state(due, 120, start, BUSINESS, ny(2026, 11, 25, 7, 0), None, at_risk_share=0.25) is SlaState.ON_TRACK
    with pytest.raises(ValueError, match="at_risk_share"):
        sla_state(due, 120, start, BUSINESS, start, None, at_risk_share=1.5)


def test_best_effort_is_never_judged():
    assert sla_state(DUE, None, START, BUSINESS, ny(2026, 11, 30, 9, 0), None, best_effort=True) is SlaState.BEST_EFFORT
    assert sla_state(None, None, START, BUSINESS, START, None) is SlaState.BEST_EFFORT


# --- compliance ----------------------------------------------------------------------------------


def test_compliance_counts_on_time_late_and_open_breaches():
    now = ny(2026, 11, 30, 12, 0)
    outcomes = [
        SlaOutcome(ny(2026, 11, 24, 11, 0), ny(2026, 11, 24, 10, 0), ny(2026, 11, 24, 17, 0), ny(2026, 11, 24, 16, 0)),
        SlaOutcome(ny(2026, 11, 24, 11, 0), ny(2026, 11, 24, 12, 0), None, None),  # late response
        SlaOutcome(ny(2026, 11, 25, 11, 0), None, ny(2026, 11, 25, 17, 0), None),  # both overdue, still open
        SlaOutcome(ny(2026, 11, 30, 14, 0), None, ny(2026, 12, 1, 9, 0), None),  # still running: not judged
        SlaOutcome(None, None, None, None),  # break/fix: nothing promised
    ]
    result = compliance(outcomes, now)
    assert result == Compliance(responses_total=3, responses_on_time=1, arrivals_total=2, arrivals_on_time=1)
    assert result.response_share == pytest.approx(1 / 3)
    assert result.arrival_share == 0.5


def test_missed_promises_name_each_miss_and_how_late():
    now = ny(2026, 11, 30, 12, 0)
    late_response = SlaOutcome(ny(2026, 11, 24, 11, 0), ny(2026, 11, 24, 12, 30), ny(2026, 11, 24, 17, 0),
                               ny(2026, 11, 24, 16, 0))
    assert missed_promises(late_response, now) == [
        MissedPromise("response", ny(2026, 11, 24, 11, 0), ny(2026, 11, 24, 12, 30), timedelta(minutes=90))]
    still_open = SlaOutcome(ny(2026, 11, 30, 11, 0), None, ny(2026, 11, 30, 14, 0), None)
    assert missed_promises(still_open, now) == [
        MissedPromise("response", ny(2026, 11, 30, 11, 0), None, timedelta(hours=1))]
    assert missed_promises(SlaOutcome(None, None, None, None), now) == []


outcomes = st.builds(
    SlaOutcome,
    st.one_of(st.none(), st.datetimes(datetime(2026, 11, 1), datetime(2026, 12, 31), timezones=st.just(UTC))),
    st.one_of(st.none(), st.datetimes(datetime(2026, 11, 1), datetime(2026, 12, 31), timezones=st.just(UTC))),
    st.one_of(st.none(), st.datetimes(datetime(2026, 11, 1), datetime(2026, 12, 31), timezones=st.just(UTC))),
    st.one_of(st.none(), st.datetimes(datetime(2026, 11, 1), datetime(2026, 12, 31), timezones=st.just(UTC))),
)


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(outcomes, max_size=20),
       now=st.datetimes(datetime(2026, 11, 1), datetime(2026, 12, 31), timezones=st.just(UTC)))
def test_the_misses_listed_are_exactly_the_ones_the_shares_count(batch, now):
    result = compliance(batch, now)
    misses = [miss for outcome in batch for miss in missed_promises(outcome, now)]
    assert sum(m.which == "response" for m in misses) == result.responses_total - result.responses_on_time
    assert sum(m.which == "arrival" for m in misses) == result.arrivals_total - result.arrivals_on_time
    assert all(m.late_by > timedelta(0) for m in misses)


def test_compliance_with_nothing_judged_has_no_share():
    result = compliance([], ny(2026, 11, 30, 12, 0))
    assert result.response_share is None and result.arrival_share is None


# --- properties ----------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))


@st.composite
def pause_lists(draw, start: datetime):
    pauses = []
    for _ in range(draw(st.integers(0, 4))):
        begin = start + timedelta(minutes=draw(st.integers(-600, 60 * 24 * 10)))
        length = timedelta(minutes=draw(st.integers(0, 60 * 24 * 3)))
        pauses.append(Pause(begin, begin + length))
    return pauses


@settings(max_examples=150, deadline=None)
@given(data=st.data(), start=instants, terms=st.sampled_from([ESSENTIALS, PREMIUM, BREAK_FIX]))
def test_pauses_never_shorten_a_deadline(data, start: datetime, terms: SlaTerms):
    pauses = data.draw(pause_lists(start))
    plain = due_times(terms, start, True)
    paused = due_times(terms, start, True, pauses)
    assert paused.response_due >= plain.response_due
    assert paused.arrival_due >= plain.arrival_due
    # Adding one more pause never makes it earlier either.
    extra = data.draw(pause_lists(start))
    more = due_times(terms, start, True, pauses + extra)
    assert more.response_due >= paused.response_due


@settings(max_examples=150, deadline=None)
@given(start=instants, pause_at=st.integers(0, 119), length=st.integers(0, 60 * 24 * 4))
def test_a_pause_before_the_due_shifts_it_by_its_covered_minutes(start: datetime, pause_at: int, length: int):
    begin = BUSINESS.add(start, pause_at)
    pause = Pause(begin, begin + timedelta(minutes=length))
    plain = due_times(ESSENTIALS, start, False).response_due
    paused = due_times(ESSENTIALS, start, False, [pause]).response_due
    assert BUSINESS.covered_minutes(plain, paused) == pytest.approx(BUSINESS.covered_minutes(pause.started_at, pause.ended_at), abs=1e-6)
    assert BUSINESS.is_covered(paused - timedelta(microseconds=1))


def test_naive_datetimes_are_refused_by_name():
    with pytest.raises(ValueError, match="clock_start"):
        due_times(ESSENTIALS, datetime(2026, 11, 24, 9, 0), False)
    with pytest.raises(ValueError, match="due"):
        compliance([SlaOutcome(datetime(2026, 11, 24, 9, 0), None, None, None)], ny(2026, 11, 30, 12, 0))


def test_due_times_across_the_autumn_clock_change_keep_local_hours():
    # Opened Friday 14:00 EDT; 4 h Friday, 4 h Monday after the clocks went back: Monday 12:00 EST.
    due = due_times(ESSENTIALS, ny(2026, 10, 30, 14, 0), onsite_needed=True)
    assert due.arrival_due == ny(2026, 11, 2, 12, 0)
    assert due.arrival_due == datetime(2026, 11, 2, 17, 0, tzinfo=UTC)


SEVERITY = {SlaState.ON_TRACK: 0, SlaState.AT_RISK: 1, SlaState.BREACHED: 2}


@settings(max_examples=150, deadline=None)
@given(start=instants, later=st.integers(0, 60 * 24 * 10), sooner=st.integers(0, 60 * 24 * 10),
       share=st.floats(0, 1))
def test_state_only_gets_worse_while_nothing_happens(start: datetime, later: int, sooner: int, share: float):
    due = due_times(ESSENTIALS, start, False).response_due
    first, second = sorted((start + timedelta(minutes=sooner), start + timedelta(minutes=later)))
    before = sla_state(due, 120, start, BUSINESS, first, None, at_risk_share=share)
    after = sla_state(due, 120, start, BUSINESS, second, None, at_risk_share=share)
    assert SEVERITY[before] <= SEVERITY[after]
    assert (after is SlaState.BREACHED) == (second > due)


# --- the outlook of promises still owed -------------------------------------------------------------------------

SIX_55 = datetime(2026, 11, 25, 11, 55, tzinfo=UTC)  # Wed 06:55 in New York


def test_an_estimate_past_the_due_is_likely_missed_and_a_bound_past_it_at_risk():
    due = SIX_55 + timedelta(minutes=30)
    assert estimate_outlook(due, due, due) is Outlook.ON_TRACK
    assert estimate_outlook(due - timedelta(minutes=5), due + timedelta(minutes=1), due) is Outlook.AT_RISK
    assert estimate_outlook(due + timedelta(minutes=1), due + timedelta(minutes=9), due) is Outlook.LIKELY_MISSED
    assert estimate_outlook(None, None, due) is Outlook.ON_TRACK


def test_an_on_site_job_setting_off_after_the_response_is_due_is_not_on_track():
    """06:55: response due 07:25, arrival due 08:55; the day technician sets off at 08:00 and arrives 08:30."""
    response_due, arrival_due = SIX_55 + timedelta(minutes=30), SIX_55 + timedelta(minutes=120)
    set_off, arrival = SIX_55 + timedelta(minutes=65), SIX_55 + timedelta(minutes=95)
    promises = owed_promises(ARRIVAL, arrival_due, arrival, arrival + timedelta(minutes=15),
                             response_owed=response_due, set_off_median=set_off, set_off_p90=set_off)
    assert [p.promise for p in promises] == [ARRIVAL, RESPONSE] and promises[0].outlook is Outlook.ON_TRACK
    verdict = owed_outlook(SlaState.ON_TRACK.value, promises)
    assert verdict.state == SlaState.AT_RISK.value and verdict.outlook is Outlook.LIKELY_MISSED
    assert verdict.worst.promise == RESPONSE and verdict.worst.expected == set_off
    # Once responded, only the arrival is owed: on track.
    assert owed_outlook(SlaState.ON_TRACK.value, promises[:1]).worst is None
    assert owed_outlook(SlaState.ON_TRACK.value, promises[:1]).state == SlaState.ON_TRACK.value


def test_settled_clocks_keep_their_state_and_a_plan_flag_counts_as_at_risk():
    due = SIX_55 + timedelta(minutes=30)
    late = [promise_outlook(RESPONSE, due, due + timedelta(hours=1), None)]
    for settled in (SlaState.BREACHED, SlaState.MET, SlaState.BEST_EFFORT):
        assert owed_outlook(settled.value, late).state == settled.value
    flagged = promise_outlook(ARRIVAL, due, due - timedelta(minutes=20), None, flagged=True)
    assert flagged.outlook is Outlook.AT_RISK
    assert owed_outlook(SlaState.ON_TRACK.value, [flagged]).state == SlaState.AT_RISK.value


_STATE_RANK = {SlaState.ON_TRACK.value: 0, SlaState.AT_RISK.value: 1}
minutes = st.integers(-180, 180)


@settings(max_examples=300, deadline=None)
@given(clock=st.sampled_from([SlaState.ON_TRACK.value, SlaState.AT_RISK.value]),
       estimates=st.lists(st.tuples(st.sampled_from([RESPONSE, ARRIVAL]), minutes, minutes, st.integers(0, 120),
                                    st.booleans()), max_size=3))
def test_the_combined_state_is_never_better_than_any_promise_or_the_clock(clock, estimates):
    promises = [promise_outlook(name, SIX_55 + timedelta(minutes=due), SIX_55 + timedelta(minutes=median),
                                SIX_55 + timedelta(minutes=median + spread), flagged)
                for name, due, median, spread, flagged in estimates]
    verdict = owed_outlook(clock, promises)
    assert _STATE_RANK[verdict.state] >= _STATE_RANK[clock]
    for p in promises:
        assert verdict.outlook >= p.outlook  # the worst promise is the one named
        own = SlaState.AT_RISK.value if p.outlook > Outlook.ON_TRACK else SlaState.ON_TRACK.value
        assert _STATE_RANK[verdict.state] >= _STATE_RANK[own]
    assert (verdict.worst is None) == all(p.outlook is Outlook.ON_TRACK for p in promises)


@settings(max_examples=300, deadline=None)
@given(due=minutes, median=minutes, spread=st.integers(0, 120), owed=st.none() | minutes,
       set_off=st.none() | minutes, set_off_spread=st.integers(0, 120))
def test_a_response_owed_is_judged_on_the_set_off_and_never_hides_the_arrival(due, median, spread, owed, set_off,
                                                                              set_off_spread):
    """The upgrade panel, the alerts and the ticket page share `owed_promises`: the shown deadline is
    always judged as it would be alone, and the response only when it is owed and a set-off is known."""
    at = lambda m: SIX_55 + timedelta(minutes=m)  # noqa: E731
    promises = owed_promises(ARRIVAL, at(due), at(median), at(median + spread),
                             response_owed=None if owed is None else at(owed),
                             set_off_median=None if set_off is None else at(set_off),
                             set_off_p90=None if set_off is None else at(set_off + set_off_spread))
    assert promises[0] == promise_outlook(ARRIVAL, at(due), at(median), at(median + spread))
    judged = owed is not None and set_off is not None
    assert len(promises) == (2 if judged else 1)
    if judged:
        assert promises[1].promise == RESPONSE and promises[1].expected == at(set_off)
        assert (promises[1].outlook is Outlook.ON_TRACK) == (set_off + set_off_spread <= owed)


_MOMENT = st.datetimes(datetime(2026, 11, 1), datetime(2026, 12, 31), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(due=_MOMENT, acted=st.one_of(st.none(), _MOMENT), ended=_MOMENT,
       closed_after=st.one_of(st.none(), st.timedeltas(timedelta(0), timedelta(days=60))),
       later=st.timedeltas(timedelta(0), timedelta(days=60)))
def test_a_promise_that_ended_counts_as_it_stood_then_and_never_changes_after(due, acted, ended, closed_after, later):
    """Kept or broken by the end: judged so, for good. Not yet due and not kept by then: never judged.
    `done` is the response, else the closing: a duplicate's closing is the end itself, and a ticket whose
    contract ended was still open then, so any closing is at or after the end."""
    done = acted or (ended + closed_after if closed_after is not None else None)
    judged_due, judged_done = settled_by(due, done, acted, ended)
    figures = [compliance([SlaOutcome(judged_due, judged_done, None, None)], at)
               for at in (ended, ended + later)]
    assert figures[0] == figures[1]  # nothing done after the end moves the figures
    if acted is not None and acted <= min(due, ended):
        assert (figures[0].responses_total, figures[0].responses_on_time) == (1, 1)
    elif due < ended:
        assert (figures[0].responses_total, figures[0].responses_on_time) == (1, 0)
        assert missed_promises(SlaOutcome(judged_due, judged_done, None, None), ended)[0].due == due
    else:
        assert judged_due is None and figures[0].responses_total == 0


def test_settled_by_keeps_no_promise_that_had_none():
    assert settled_by(None, None, None, datetime(2026, 11, 24, 15, tzinfo=UTC)) == (None, None)
