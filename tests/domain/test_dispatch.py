import copy
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from portal.domain.calendar import CoverageCalendar
from portal.domain.dispatch import OFF_DUTY_NOTE, ArrivalForecast, DispatchTicket, TechnicianInput, plan_dispatch
from portal.domain.effort import EffortEstimate
from portal.domain.travel import Location, TravelModel

UTC = timezone.utc
NY = "America/New_York"
ALWAYS = CoverageCalendar.always()
BUSINESS = CoverageCalendar.business(NY)
WEDNESDAY_10_NY = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # 10:00 in New York
SATURDAY_NIGHT = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # Fri 22:00 in New York
OFFICE = Location(40.7580, -73.9855)
CLIENT = Location(40.6782, -73.9442)
TRAVEL = TravelModel()
HOUR = EffortEstimate(60, 120)
FIXED = EffortEstimate(30, 30)


def tech(id, skills=("network", "hardware"), calendar=ALWAYS, now=WEDNESDAY_10_NY, busy=0, location=OFFICE):
    free = now + timedelta(minutes=busy)
    return TechnicianInput(id, f"Tech {id}", frozenset(skills), calendar, free, free + timedelta(minutes=busy / 2),
                           location)


def ticket(id, skill=None, onsite=False, site=CLIENT, effort=HOUR, coverage=ALWAYS, sla_due=None, pinned=None):
    return DispatchTicket(id, skill, onsite, site, effort, coverage, sla_due, pinned)


def test_one_technician_serves_the_queue_in_order_with_widening_ranges():
    tickets = [ticket(i) for i in range(1, 6)]
    result = plan_dispatch(tickets, [tech(1)], WEDNESDAY_10_NY, TRAVEL)
    assert [r.ticket_id for r in result] == [1, 2, 3, 4, 5]
    assert [r.position for r in result] == [1, 2, 3, 4, 5]
    assert [r.ahead for r in result] == [0, 1, 2, 3, 4]
    assert result[0].median == result[0].p90 == WEDNESDAY_10_NY
    medians = [r.median for r in result]
    assert medians == sorted(medians)
    widths = [r.p90 - r.median for r in result]
    assert widths[1] > timedelta(0)
    assert widths == sorted(widths)
    # Four one-hour jobs (median 60, mean a little more) before the fifth starts.
    assert timedelta(hours=4) < result[4].median - WEDNESDAY_10_NY < timedelta(hours=5)


def test_fixed_durations_have_no_spread():
    result = plan_dispatch([ticket(i, effort=FIXED) for i in range(3)], [tech(1)], WEDNESDAY_10_NY, TRAVEL)
    assert [r.median - WEDNESDAY_10_NY for r in result] == [timedelta(0), timedelta(minutes=30), timedelta(minutes=60)]
    assert all(r.p90 == r.median for r in result)


def test_ticket_goes_to_the_technician_who_can_start_soonest():
    result = plan_dispatch([ticket(1)], [tech(1, busy=120), tech(2)], WEDNESDAY_10_NY, TRAVEL)
    assert result[0].technician_id == 2
    result = plan_dispatch([ticket(1)], [tech(1, busy=120)], WEDNESDAY_10_NY, TRAVEL)
    assert result[0].median == WEDNESDAY_10_NY + timedelta(minutes=120)
    assert result[0].p90 > result[0].median


def test_a_technician_off_shift_drives_to_the_site_after_the_shift_begins():
    """Off shift until Monday 08:00: the on-site job starts at 08:00 plus the drive, not at 08:00,
    with the drive's spread in the range; a job in hours the technician reaches before the client's
    hours begin starts as those hours begin (they set off early enough)."""
    drive = TRAVEL.estimate(OFFICE, CLIENT)
    monday_8 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    day_shift = CoverageCalendar.business(NY)
    onsite = plan_dispatch([ticket(1, onsite=True)], [tech(1, calendar=day_shift, now=SATURDAY_NIGHT)],
                           SATURDAY_NIGHT, TRAVEL)[0]
    assert onsite.median == monday_8 + timedelta(minutes=drive.median_minutes)
    assert onsite.p90 == monday_8 + timedelta(minutes=drive.p90_minutes)
    remote = plan_dispatch([ticket(1)], [tech(1, calendar=day_shift, now=SATURDAY_NIGHT)], SATURDAY_NIGHT, TRAVEL)[0]
    assert remote.median == monday_8

    early = CoverageCalendar.business(NY, "Mon-Fri 07:00-18:00")
    client_hours = plan_dispatch([ticket(1, onsite=True, effort=FIXED, coverage=BUSINESS)],
                                 [tech(1, calendar=early, now=SATURDAY_NIGHT)], SATURDAY_NIGHT, TRAVEL)[0]
    assert client_hours.median == monday_8 and client_hours.waits_for_coverage


def test_the_technician_sets_off_at_the_start_less_the_drive():
    """Setting off is an on-site job's response: the estimate carries it, the arrival less the drive (the
    start itself for remote work)."""
    drive = TRAVEL.estimate(OFFICE, CLIENT)
    monday_8 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    second = timedelta(seconds=1)
    day_shift = CoverageCalendar.business(NY)
    onsite = plan_dispatch([ticket(1, onsite=True)], [tech(1, calendar=day_shift, now=SATURDAY_NIGHT)],
                           SATURDAY_NIGHT, TRAVEL)[0]
    assert abs(onsite.set_off_median - monday_8) < second and abs(onsite.set_off_p90 - monday_8) < second
    remote = plan_dispatch([ticket(1)], [tech(1, calendar=day_shift, now=SATURDAY_NIGHT)], SATURDAY_NIGHT, TRAVEL)[0]
    assert remote.set_off_median == remote.median == monday_8
    early = CoverageCalendar.business(NY, "Mon-Fri 07:00-18:00")
    client_hours = plan_dispatch([ticket(1, onsite=True, effort=FIXED, coverage=BUSINESS)],
                                 [tech(1, calendar=early, now=SATURDAY_NIGHT)], SATURDAY_NIGHT, TRAVEL)[0]
    # Sets off early enough to be there as the client's hours begin.
    assert abs(client_hours.set_off_median - (monday_8 - timedelta(minutes=drive.median_minutes))) < second


@settings(max_examples=60, deadline=None)
@given(busy=st.integers(0, 600), onsite=st.booleans(), count=st.integers(1, 4))
def test_setting_off_is_never_after_the_start_nor_before_now(busy, onsite, count):
    result = plan_dispatch([ticket(i, onsite=onsite) for i in range(count)], [tech(1, busy=busy)],
                           WEDNESDAY_10_NY, TRAVEL)
    for r in result:
        assert WEDNESDAY_10_NY <= r.set_off_median <= r.median
        assert r.set_off_median <= r.set_off_p90 <= r.p90


def test_a_job_waiting_for_a_technician_with_its_skill_to_come_on_duty_says_so():
    """Friday night: the on-call technician has no printer skill, the printer technician starts
    Monday 08:00. The 24x7 printer job gets them then, and the estimate says why; a network job
    the on-call technician can do carries no such note."""
    day_shift = CoverageCalendar.business(NY)
    on_call = tech(1, skills=("network",), now=SATURDAY_NIGHT)
    printer_tech = tech(2, skills=("printer",), calendar=day_shift, now=SATURDAY_NIGHT)
    printer, network = plan_dispatch([ticket(1, skill="printer"), ticket(2, skill="network")],
                                     [on_call, printer_tech], SATURDAY_NIGHT, TRAVEL)
    assert printer.technician_id == 2 and printer.median == datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    assert OFF_DUTY_NOTE in printer.note and not printer.waits_for_coverage
    assert network.technician_id == 1 and OFF_DUTY_NOTE not in network.note


def test_skills_are_respected():
    techs = [tech(1, skills=("printer",)), tech(2, skills=("security",))]
    tickets = [ticket(i, skill="security") for i in range(4)] + [ticket(9, skill="printer")]
    result = plan_dispatch(tickets, techs, WEDNESDAY_10_NY, TRAVEL)
    assert [r.technician_id for r in result] == [2, 2, 2, 2, 1]


def test_no_eligible_technician_still_gets_a_place_and_a_reason():
    due = WEDNESDAY_10_NY + timedelta(hours=4)
    tickets = [ticket(1, skill="mainframe", sla_due=due), ticket(2)]
    result = plan_dispatch(tickets, [tech(1)], WEDNESDAY_10_NY, TRAVEL)
    lost = result[0]
    assert lost.technician_id is None and lost.median is None and lost.p90 is None
    assert lost.position == 2 and lost.ahead == 1
    assert "mainframe" in lost.note
    assert lost.sla_at_risk
    assert result[1].position == 1


def test_break_fix_after_hours_waits_for_the_next_business_morning():
    on_call = tech(1, now=SATURDAY_NIGHT)
    result = plan_dispatch([ticket(1, coverage=BUSINESS), ticket(2)], [on_call], SATURDAY_NIGHT, TRAVEL)
    break_fix, premium = result
    # Friday 22:00 in New York: next covered time is Monday 08:00 local (13:00 UTC).
    assert break_fix.median == datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    assert break_fix.waits_for_coverage
    assert "covered" in break_fix.note
    # The 24x7 ticket triaged behind it is started first, tonight, by the same technician.
    assert premium.median == SATURDAY_NIGHT
    assert not premium.waits_for_coverage
    assert premium.position == 1 and break_fix.position == 2


def test_technician_off_shift_is_not_a_coverage_wait():
    day_shift = CoverageCalendar.business(NY, "Mon-Fri 12:00-20:00", None)
    result = plan_dispatch([ticket(1)], [tech(1, calendar=day_shift)], WEDNESDAY_10_NY, TRAVEL)
    assert result[0].median == datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # 12:00 in New York
    assert not result[0].waits_for_coverage


def test_work_that_runs_past_the_shift_moves_the_next_job_to_the_next_shift():
    short_day = CoverageCalendar.business(NY, "Mon-Fri 08:00-11:00", None)
    result = plan_dispatch([ticket(i, effort=FIXED) for i in range(3)],
                           [tech(1, calendar=short_day)], datetime(2026, 11, 18, 15, 30, tzinfo=UTC), TRAVEL)
    # 10:30, 11:00 is already after the shift: the next two start Thursday 08:00 and 08:30.
    assert [r.median for r in result] == [
        datetime(2026, 11, 18, 15, 30, tzinfo=UTC),
        datetime(2026, 11, 19, 13, 0, tzinfo=UTC),
        datetime(2026, 11, 19, 13, 30, tzinfo=UTC),
    ]


def test_pinned_technician_wins_over_an_earlier_one():
    techs = [tech(1), tech(2, busy=90)]
    result = plan_dispatch([ticket(1, pinned=2), ticket(2)], techs, WEDNESDAY_10_NY, TRAVEL)
    assert result[0].technician_id == 2
    assert result[0].median == WEDNESDAY_10_NY + timedelta(minutes=90)
    assert result[1].technician_id == 1


def test_pinned_to_someone_not_on_the_roster():
    result = plan_dispatch([ticket(1, pinned=99)], [tech(1)], WEDNESDAY_10_NY, TRAVEL)
    assert result[0].technician_id is None
    assert "pinned" in result[0].note


def test_on_site_adds_travel_from_the_last_jobs_site():
    tickets = [ticket(1, onsite=True, effort=FIXED), ticket(2, onsite=True, effort=FIXED)]
    result = plan_dispatch(tickets, [tech(1)], WEDNESDAY_10_NY, TRAVEL)
    drive = TRAVEL.estimate(OFFICE, CLIENT)
    first, second = result
    assert first.median - WEDNESDAY_10_NY > timedelta(minutes=drive.median_minutes * 0.9)
    assert first.p90 > first.median
    # Same client: no second drive, the next job starts when the first ends.
    assert second.median - first.median < timedelta(minutes=40)


def test_nearer_technician_gets_the_on_site_job():
    far = tech(1, location=Location(41.3, -72.9))  # New Haven
    near = tech(2, location=Location(40.68, -73.95))
    result = plan_dispatch([ticket(1, onsite=True)], [far, near], WEDNESDAY_10_NY, TRAVEL)
    assert result[0].technician_id == 2


def test_sla_at_risk_uses_the_90_percent_bound():
    queue = [ticket(i) for i in range(4)]
    plain = plan_dispatch(queue, [tech(1)], WEDNESDAY_10_NY, TRAVEL)
    last = plain[-1]
    between = last.median + (last.p90 - last.median) / 2
    at_risk = plan_dispatch(queue[:-1] + [ticket(3, sla_due=between)], [tech(1)], WEDNESDAY_10_NY, TRAVEL)[-1]
    safe = plan_dispatch(queue[:-1] + [ticket(3, sla_due=last.p90 + timedelta(minutes=1))], [tech(1)],
                         WEDNESDAY_10_NY, TRAVEL)[-1]
    assert at_risk.sla_at_risk and "SLA" in at_risk.note
    assert not safe.sla_at_risk


def test_later_triaged_ticket_can_be_placed_ahead_when_a_specialist_is_free():
    techs = [tech(1, skills=("network",)), tech(2, skills=("printer",))]
    tickets = [ticket(1, skill="network"), ticket(2, skill="network"), ticket(3, skill="printer")]
    result = plan_dispatch(tickets, techs, WEDNESDAY_10_NY, TRAVEL)
    assert [r.position for r in result] == [1, 3, 2]


def test_planning_never_changes_its_inputs_and_is_repeatable():
    techs = [tech(1), tech(2, skills=("printer",), busy=30)]
    tickets = [ticket(1, onsite=True), ticket(2, skill="printer"), ticket(3, coverage=BUSINESS)]
    before = (copy.copy(techs), copy.copy(tickets))
    first = plan_dispatch(tickets, techs, WEDNESDAY_10_NY, TRAVEL)
    assert (techs, tickets) == before
    assert plan_dispatch(tickets, techs, WEDNESDAY_10_NY, TRAVEL) == first


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="now"):
        plan_dispatch([], [tech(1)], datetime(2026, 11, 18, 10), TRAVEL)


SKILLS = ["network", "printer", "security"]
LOCATIONS = st.builds(Location, st.floats(40.5, 41.0), st.floats(-74.3, -73.7))
EFFORTS = st.tuples(st.floats(5, 240), st.floats(1, 3)).map(lambda m: EffortEstimate(m[0], m[0] * m[1]))
CALENDARS = st.sampled_from([ALWAYS, BUSINESS])


@st.composite
def scenarios(draw):
    n_techs = draw(st.integers(1, 5))
    techs = [
        tech(i, skills=draw(st.sets(st.sampled_from(SKILLS), min_size=1)), calendar=draw(CALENDARS),
             busy=draw(st.sampled_from([0, 0, 45, 300])), location=draw(st.none() | LOCATIONS))
        for i in range(1, n_techs + 1)
    ]
    tickets = [
        ticket(100 + k, skill=draw(st.none() | st.sampled_from(SKILLS + ["mainframe"])), onsite=draw(st.booleans()),
               site=draw(st.none() | LOCATIONS), effort=draw(EFFORTS), coverage=draw(CALENDARS),
               sla_due=WEDNESDAY_10_NY + timedelta(hours=draw(st.integers(1, 48))),
               pinned=draw(st.none() | st.integers(1, n_techs + 1)) if draw(st.booleans()) else None)
        for k in range(draw(st.integers(0, 25)))
    ]
    forecast = draw(st.none() | st.builds(ArrivalForecast, st.floats(0, 20), st.floats(0, 240)))
    return techs, tickets, forecast


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_plan_properties(scenario):
    techs, tickets, forecast = scenario
    result = plan_dispatch(tickets, techs, WEDNESDAY_10_NY, TRAVEL, forecast)
    assert [r.ticket_id for r in result] == [t.id for t in tickets]
    assert sorted(r.position for r in result) == list(range(1, len(tickets) + 1))
    by_tech = {t.id: t for t in techs}
    for t, r in zip(tickets, result):
        assert r.ahead == r.position - 1
        if r.technician_id is None:
            assert r.median is None and r.note
            continue
        assert WEDNESDAY_10_NY <= r.median <= r.p90
        assert r.sla_at_risk == (r.p90 > t.sla_due)
        if t.pinned_technician_id is not None:
            assert r.technician_id == t.pinned_technician_id
        elif t.required_skill is not None:
            assert t.required_skill in by_tech[r.technician_id].skills
        assert t.coverage.is_covered(r.median)
        assert by_tech[r.technician_id].availability.is_covered(r.median)
    # Monotone in place for one technician: a later place never has an earlier estimate.
    for tech_id in by_tech:
        mine = sorted((r for r in result if r.technician_id == tech_id), key=lambda r: r.position)
        assert [r.median for r in mine] == sorted(r.median for r in mine)
    # Places follow expected starts.
    placed = sorted((r for r in result if r.median is not None), key=lambda r: r.position)
    assert [r.median for r in placed] == sorted(r.median for r in placed)


def test_arrival_forecast_allows_for_tickets_that_will_overtake():
    queue = [ticket(i) for i in range(6)]
    plain = plan_dispatch(queue, [tech(1), tech(2)], WEDNESDAY_10_NY, TRAVEL)
    busy = plan_dispatch(queue, [tech(1), tech(2)], WEDNESDAY_10_NY, TRAVEL, ArrivalForecast(4.0, 60.0))
    assert [r.technician_id for r in busy] == [r.technician_id for r in plain]
    assert busy[0].median == plain[0].median == WEDNESDAY_10_NY  # starting now: nobody can overtake
    for before, after in zip(plain[2:], busy[2:]):
        assert after.median > before.median
        assert after.p90 - after.median > before.p90 - before.median
    # The lowest-ranked ticket is overtaken most.
    assert busy[-1].median - plain[-1].median > busy[2].median - plain[2].median
    for tech_id in (1, 2):
        mine = sorted((r for r in busy if r.technician_id == tech_id), key=lambda r: r.position)
        assert [r.median for r in mine] == sorted(r.median for r in mine)


def test_arrival_forecast_rejects_negative_rates():
    with pytest.raises(ValueError, match="tickets_per_hour"):
        ArrivalForecast(-1.0, 60.0)


def test_forecast_from_history_spreads_the_openings_over_the_hours_of_its_days():
    from portal.domain.dispatch import forecast_from_history

    forecast = forecast_from_history(28 * 12, 28, 75.0)  # one ticket every two hours for four weeks
    assert forecast.tickets_per_hour == pytest.approx(0.5)
    assert forecast.mean_job_minutes == 75.0
    with pytest.raises(ValueError, match="days"):
        forecast_from_history(10, 0, 75.0)


def test_a_job_too_long_for_the_idle_gap_waits_behind_the_booked_job():
    # Friday 22:00 in New York: the break/fix job is booked for Monday 08:00. A 24x7 job whose
    # 90% bound runs past Monday 08:00 cannot use the weekend gap before it.
    weekend_long = EffortEstimate(3000, 4000)
    on_call = tech(1, now=SATURDAY_NIGHT)
    result = plan_dispatch([ticket(1, coverage=BUSINESS, effort=FIXED), ticket(2, effort=weekend_long)],
                           [on_call], SATURDAY_NIGHT, TRAVEL)
    break_fix, long_job = result
    assert break_fix.median == datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    assert long_job.median == break_fix.median + timedelta(minutes=30)
    assert [break_fix.position, long_job.position] == [1, 2]


def test_covered_time_that_ends_before_the_90_percent_bound_gives_no_bound_and_a_reason():
    """A technician whose only covered time is one on-call evening: the job starts in it, but its
    90% bound would fall after the last covered minute, so no bound is shown and a deadline is at risk."""
    evening = CoverageCalendar(NY, {}, extra=[(WEDNESDAY_10_NY, WEDNESDAY_10_NY + timedelta(hours=2))])
    long_job = EffortEstimate(60, 180)
    result = plan_dispatch([ticket(1, effort=long_job), ticket(2, effort=long_job, sla_due=WEDNESDAY_10_NY + timedelta(days=1))],
                           [tech(1, calendar=evening)], WEDNESDAY_10_NY, TRAVEL)
    first, second = result
    assert first.median == WEDNESDAY_10_NY and first.p90 is not None
    assert second.median is not None and second.technician_id == 1
    assert second.p90 is None and second.sla_at_risk
    assert "No 90% bound" in second.note
