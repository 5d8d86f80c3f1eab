"""Coverage calendar arithmetic: business hours, holidays, DST, extras, and its algebra."""
from __future__ import annotations

import time as clock
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings, strategies as st

from portal.domain.calendar import CoverageCalendar, local_instant, parse_weekly_hours, run_at

NY_TZ = "America/New_York"
NY = ZoneInfo(NY_TZ)
UTC = timezone.utc
BUSINESS = CoverageCalendar.business(NY_TZ)  # Mon-Fri 08:00-18:00, US-NY holidays


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


# --- wall-clock times typed by people -----------------------------------------------------------


def test_a_typed_time_is_read_in_the_zone_and_one_the_clocks_skip_is_refused():
    assert local_instant(datetime(2027, 1, 5, 18, 0), NY_TZ) == datetime(2027, 1, 5, 23, 0, tzinfo=UTC)
    assert local_instant(datetime(2027, 7, 5, 18, 0), NY_TZ) == datetime(2027, 7, 5, 22, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="2027-03-14 02:30 does not exist in America/New_York"):
        local_instant(datetime(2027, 3, 14, 2, 30), NY_TZ)
    # 01:30 on the night the clocks go back happens twice: the first (still daylight time) is meant.
    assert local_instant(datetime(2027, 11, 7, 1, 30), NY_TZ).astimezone(UTC) == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)


# --- time off taken as one run -----------------------------------------------------------------


def test_time_off_periods_that_touch_are_one_run_and_a_gap_ends_it():
    """Off 1-5 Dec and 5-9 Dec is away until 9 Dec, seen from either period; a gap of a minute still
    joins (an end typed 23:59, the next start 00:00), a longer one does not."""
    first = (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 5, tzinfo=UTC))
    touching = (datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 9, tzinfo=UTC))
    during_first, during_second = datetime(2026, 12, 3, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC)
    run = (first[0], touching[1])
    assert run_at([touching, first], during_first) == run
    assert run_at([first, touching], during_second) == run
    a_minute_later = (first[1] + timedelta(minutes=1), touching[1])
    assert run_at([first, a_minute_later], during_first) == run
    two_minutes_later = (first[1] + timedelta(minutes=2), touching[1])
    assert run_at([first, two_minutes_later], during_first) == first
    later = (datetime(2026, 12, 12, tzinfo=UTC), datetime(2026, 12, 14, tzinfo=UTC))
    assert run_at([first, touching, later], during_second) == run
    overlapping = (datetime(2026, 12, 4, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC))
    assert run_at([first, overlapping], during_first) == (first[0], overlapping[1])
    assert run_at([first, later], datetime(2026, 12, 10, tzinfo=UTC)) is None  # back between the two
    assert run_at([first], first[1]) is None  # the end is the moment they are back
    assert run_at([], during_first) is None


# --- parsing -----------------------------------------------------------------------------------


def test_parse_default_business_week():
    weekly = parse_weekly_hours("Mon-Fri 08:00-18:00")
    assert sorted(weekly) == [0, 1, 2, 3, 4]
    assert weekly[0] == [(time(8), time(18))]


def test_parse_several_groups_ranges_lists_and_midnight():
    weekly = parse_weekly_hours("Mon,Wed 08:00-12:00 13:00-17:00; Sat 09:00-24:00; Sun-Mon 20:00-22:00")
    assert weekly[0] == [(time(8), time(12)), (time(13), time(17)), (time(20), time(22))]
    assert weekly[2] == [(time(8), time(12)), (time(13), time(17))]
    assert weekly[5] == [(time(9), time(0))]
    assert weekly[6] == [(time(20), time(22))]
    assert 1 not in weekly


@pytest.mark.parametrize(
    "spec, words",
    [
        ("", "Enter weekly hours"),
        ("Mon-Fri", "needs days and hours"),
        ("Funday 08:00-18:00", "Unknown day"),
        ("Mon-Fri 8-18", "HH:MM"),
        ("Mon-Fri 18:00-08:00", "must end after it starts"),
        ("Mon-Fri 25:00-26:00", "not a valid time"),
        ("Mon 08:00-12:00 11:00-13:00", "overlaps"),
        ("Mon 08:00-12:00; Mon 11:00-13:00", "overlaps"),
        ("Sat 00:00-24:00; Sat-Sun 01:00-02:00", "Sat: 00:00-24:00 overlaps 01:00-02:00"),
    ],
)
def test_parse_rejects_bad_specs_with_plain_words(spec: str, words: str):
    with pytest.raises(ValueError, match=words):
        parse_weekly_hours(spec)


def test_constructor_validates_zone_weekday_and_extras():
    with pytest.raises(ValueError, match="Unknown time zone"):
        CoverageCalendar("Mars/Olympus", None)
    with pytest.raises(ValueError, match="Weekday 7"):
        CoverageCalendar(NY_TZ, {7: [(time(8), time(9))]})
    with pytest.raises(ValueError, match="end after it starts"):
        CoverageCalendar(NY_TZ, {}, extra=[(ny(2026, 1, 1, 10), ny(2026, 1, 1, 9))])
    with pytest.raises(ValueError, match="timezone-aware"):
        BUSINESS.add(datetime(2026, 1, 5, 9), 10)
    with pytest.raises(ValueError, match="No public holidays"):
        CoverageCalendar.business(NY_TZ, holiday_country="XX")


def test_calendar_is_immutable():
    with pytest.raises(AttributeError):
        BUSINESS._weekly = None  # type: ignore[misc]


# --- business hours ------------------------------------------------------------------------------


def test_is_covered_respects_hours_weekends_and_end_exclusive():
    assert BUSINESS.is_covered(ny(2026, 11, 24, 8, 0))
    assert BUSINESS.is_covered(ny(2026, 11, 24, 17, 59))
    assert not BUSINESS.is_covered(ny(2026, 11, 24, 18, 0))
    assert not BUSINESS.is_covered(ny(2026, 11, 24, 7, 59))
    assert not BUSINESS.is_covered(ny(2026, 11, 28, 12, 0))  # Saturday


def test_friday_evening_four_hours_is_monday_noon():
    due = BUSINESS.add(ny(2026, 11, 20, 17, 0), 240)
    assert due == ny(2026, 11, 23, 11, 0)
    assert due.tzinfo == UTC


def test_thanksgiving_is_not_covered_and_skipped():
    thanksgiving = ny(2026, 11, 26, 10, 0)
    assert not BUSINESS.is_covered(thanksgiving)
    assert BUSINESS.next_covered(thanksgiving) == ny(2026, 11, 27, 8, 0)
    # Wednesday 17:00 + 4 covered hours: 1 h Wednesday, Thursday off, 3 h Friday.
    assert BUSINESS.add(ny(2026, 11, 25, 17, 0), 240) == ny(2026, 11, 27, 11, 0)
    assert BUSINESS.covered_minutes(ny(2026, 11, 25, 0, 0), ny(2026, 11, 28, 0, 0)) == 20 * 60


def test_no_holidays_when_country_is_none():
    plain = CoverageCalendar.business(NY_TZ, holiday_country=None)
    assert plain.is_covered(ny(2026, 11, 26, 10, 0))


def test_using_up_an_interval_exactly_ends_at_closing_time():
    assert BUSINESS.add(ny(2026, 11, 24, 8, 0), 600) == ny(2026, 11, 24, 18, 0)
    assert BUSINESS.add(ny(2026, 11, 24, 8, 0), 601) == ny(2026, 11, 25, 8, 1)


def test_adding_from_uncovered_time_starts_at_opening():
    assert BUSINESS.add(ny(2026, 11, 24, 3, 0), 30) == ny(2026, 11, 24, 8, 30)
    assert BUSINESS.add(ny(2026, 11, 24, 3, 0), 0) == ny(2026, 11, 24, 3, 0)


def test_negative_minutes_are_refused():
    with pytest.raises(ValueError, match="negative"):
        BUSINESS.add(ny(2026, 11, 24, 9, 0), -1)


def test_next_business_start_is_on_a_later_local_day():
    assert BUSINESS.next_business_start(ny(2026, 11, 24, 9, 0)) == ny(2026, 11, 25, 8, 0)
    assert BUSINESS.next_business_start(ny(2026, 11, 24, 2, 0)) == ny(2026, 11, 25, 8, 0)
    assert BUSINESS.next_business_start(ny(2026, 11, 25, 17, 0)) == ny(2026, 11, 27, 8, 0)  # Thanksgiving
    assert BUSINESS.next_business_start(ny(2026, 11, 27, 12, 0)) == ny(2026, 11, 30, 8, 0)


def test_always_covers_everything():
    always = CoverageCalendar.always()
    at = ny(2026, 11, 26, 3, 0)
    assert always.is_covered(at) and always.next_covered(at) == at
    assert always.add(at, 90) == at + timedelta(minutes=90)
    assert always.covered_minutes(at, at + timedelta(hours=5)) == 300
    assert always.next_business_start(datetime(2026, 11, 26, 3, tzinfo=UTC)) == datetime(2026, 11, 27, tzinfo=UTC)


# --- daylight saving ---------------------------------------------------------------------------


def test_spring_forward_weekend_keeps_local_opening_hours():
    # DST starts Sunday 2026-03-08 in New York; Monday opens at 08:00 EDT (12:00 UTC, not 13:00).
    due = BUSINESS.add(ny(2026, 3, 6, 17, 0), 120)
    assert due == ny(2026, 3, 9, 9, 0)
    assert due == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)


def test_fall_back_weekend_keeps_local_opening_hours():
    # DST ends Sunday 2026-11-01; Monday 08:00 EST is 13:00 UTC.
    assert BUSINESS.add(ny(2026, 10, 30, 17, 30), 60) == datetime(2026, 11, 2, 13, 30, tzinfo=UTC)


def test_24_hour_day_across_dst_change_is_23_or_25_hours_long():
    all_days = CoverageCalendar(NY_TZ, {d: [(time(0), time(0))] for d in range(7)})
    assert all_days.covered_minutes(ny(2026, 3, 8, 0, 0), ny(2026, 3, 9, 0, 0)) == 23 * 60
    assert all_days.covered_minutes(ny(2026, 11, 1, 0, 0), ny(2026, 11, 2, 0, 0)) == 25 * 60
    assert all_days.add(ny(2026, 3, 7, 12, 0), 24 * 60) == ny(2026, 3, 8, 13, 0)


def test_hours_inside_the_dst_gap_are_simply_shorter():
    night = CoverageCalendar(NY_TZ, {6: [(time(1), time(4))]}, holidays=frozenset())
    # 01:00-04:00 local on the spring-forward Sunday lasts only two real hours.
    assert night.covered_minutes(ny(2026, 3, 8, 0, 0), ny(2026, 3, 9, 0, 0)) == 120


# --- extras (on-call periods) --------------------------------------------------------------------


def test_extra_on_call_interval_adds_coverage_on_top():
    on_call = (ny(2026, 11, 26, 9, 0), ny(2026, 11, 26, 13, 0))  # Thanksgiving on-call morning
    cal = CoverageCalendar(NY_TZ, parse_weekly_hours("Mon-Fri 08:00-18:00"), frozenset({date(2026, 11, 26)}), [on_call])
    assert cal.is_covered(ny(2026, 11, 26, 10, 0))
    assert not cal.is_covered(ny(2026, 11, 26, 13, 0))
    assert cal.add(ny(2026, 11, 25, 17, 0), 120) == ny(2026, 11, 26, 10, 0)


def test_overlapping_extra_is_not_counted_twice():
    cal = CoverageCalendar(NY_TZ, parse_weekly_hours("Mon-Fri 08:00-18:00"), (), [(ny(2026, 11, 24, 17, 0), ny(2026, 11, 24, 20, 0))])
    assert cal.covered_minutes(ny(2026, 11, 24, 0, 0), ny(2026, 11, 25, 0, 0)) == 12 * 60


def test_extras_only_calendar_runs_out():
    cal = CoverageCalendar(NY_TZ, {}, (), [(ny(2026, 11, 24, 20, 0), ny(2026, 11, 24, 22, 0))])
    assert cal.add(ny(2026, 11, 24, 12, 0), 60) == ny(2026, 11, 24, 21, 0)
    with pytest.raises(ValueError, match="no covered time"):
        cal.add(ny(2026, 11, 24, 12, 0), 180)
    with pytest.raises(ValueError, match="no covered time"):
        cal.next_covered(ny(2026, 11, 25, 0, 0))
    assert not cal.is_covered(ny(2026, 11, 25, 0, 0))


def test_adding_a_year_of_covered_time_is_fast():
    started = clock.perf_counter()
    due = BUSINESS.add(ny(2026, 1, 2, 9, 0), 250 * 600)
    assert clock.perf_counter() - started < 0.5
    assert BUSINESS.is_covered(due - timedelta(microseconds=1))


# --- properties ----------------------------------------------------------------------------------

CALENDARS = {
    "business-ny": BUSINESS,
    "split-shift-london": CoverageCalendar.business("Europe/London", "Mon-Fri 09:00-12:30 13:30-17:00; Sat 10:00-14:00", "GB", "ENG"),
    "nights-and-weekends": CoverageCalendar(NY_TZ, parse_weekly_hours("Mon-Fri 00:00-02:30 22:00-24:00; Sat-Sun 00:00-24:00")),
    "always": CoverageCalendar.always(),
}

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
minute_amounts = st.integers(min_value=0, max_value=60 * 24 * 20)
calendars = st.sampled_from(sorted(CALENDARS))


@settings(max_examples=150, deadline=None)
@given(name=calendars, start=instants, minutes=st.integers(min_value=1, max_value=60 * 24 * 20))
def test_due_time_never_falls_outside_covered_hours(name: str, start: datetime, minutes: int):
    cal = CALENDARS[name]
    due = cal.add(start, minutes)
    # The last minute before the due time was covered: a due time is the end of covered work.
    assert cal.is_covered(due - timedelta(microseconds=1))
    assert due > start


@settings(max_examples=150, deadline=None)
@given(name=calendars, start=instants, a=minute_amounts, b=minute_amounts)
def test_add_is_additive_and_monotonic(name: str, start: datetime, a: int, b: int):
    cal = CALENDARS[name]
    assert cal.add(cal.add(start, a), b) == cal.add(start, a + b)
    low, high = sorted((a, b))
    assert cal.add(start, low) <= cal.add(start, high)


@settings(max_examples=150, deadline=None)
@given(name=calendars, start=instants, later=instants, minutes=minute_amounts)
def test_add_is_monotonic_in_the_start(name: str, start: datetime, later: datetime, minutes: int):
    cal = CALENDARS[name]
    first, second = sorted((start, later))
    assert cal.add(first, minutes) <= cal.add(second, minutes)


@settings(max_examples=150, deadline=None)
@given(name=calendars, start=instants, minutes=minute_amounts)
def test_covered_minutes_is_the_inverse_of_add(name: str, start: datetime, minutes: int):
    cal = CALENDARS[name]
    assert cal.covered_minutes(start, cal.add(start, minutes)) == pytest.approx(minutes, abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(name=calendars, a=instants, b=instants, c=instants)
def test_covered_minutes_adds_up_over_adjacent_spans(name: str, a: datetime, b: datetime, c: datetime):
    cal = CALENDARS[name]
    first, middle, last = sorted((a, b, c))
    whole = cal.covered_minutes(first, last)
    assert whole == pytest.approx(cal.covered_minutes(first, middle) + cal.covered_minutes(middle, last), abs=1e-6)
    assert 0 <= whole <= (last - first) / timedelta(minutes=1) + 1e-6


@settings(max_examples=150, deadline=None)
@given(name=calendars, at=instants)
def test_next_covered_and_next_business_start_are_covered(name: str, at: datetime):
    cal = CALENDARS[name]
    nxt = cal.next_covered(at)
    assert nxt >= at and cal.is_covered(nxt)
    assert cal.covered_minutes(at, nxt) == 0
    business = cal.next_business_start(at)
    assert cal.is_covered(business)
    assert business.astimezone(cal.zone).date() > at.astimezone(cal.zone).date()


# --- excluded time (a technician's time off) ------------------------------------------------------


def test_time_off_takes_shift_days_and_on_call_away():
    sick = (ny(2026, 11, 24, 0, 0), ny(2026, 11, 25, 12, 0))  # Tuesday and Wednesday morning
    on_call = (ny(2026, 11, 24, 18, 0), ny(2026, 11, 24, 22, 0))
    cal = CoverageCalendar(NY_TZ, parse_weekly_hours("Mon-Fri 08:00-18:00"), frozenset(), [on_call], [sick])
    assert cal.is_covered(ny(2026, 11, 23, 17, 0))
    assert not cal.is_covered(ny(2026, 11, 24, 10, 0)) and not cal.is_covered(ny(2026, 11, 24, 19, 0))
    assert cal.next_covered(ny(2026, 11, 24, 9, 0)) == ny(2026, 11, 25, 12, 0)
    assert cal.add(ny(2026, 11, 23, 17, 0), 120) == ny(2026, 11, 25, 13, 0)
    assert cal.covered_minutes(ny(2026, 11, 23, 0, 0), ny(2026, 11, 26, 0, 0)) == (10 + 6) * 60


def test_counting_from_inside_time_off_that_began_mid_shift():
    """Off at 09:00 until 12:00: from 10:00, the day still holds 12:00-18:00 and nothing before."""
    cal = CoverageCalendar(NY_TZ, parse_weekly_hours("Mon-Fri 08:00-18:00"), frozenset(), (),
                           [(ny(2026, 11, 24, 9, 0), ny(2026, 11, 24, 12, 0))])
    assert cal.covered_minutes(ny(2026, 11, 24, 10, 0), ny(2026, 11, 24, 18, 0)) == 6 * 60
    assert list(cal.covered_periods(ny(2026, 11, 24, 10, 0), ny(2026, 11, 24, 20, 0))) == [
        (ny(2026, 11, 24, 12, 0), ny(2026, 11, 24, 18, 0))]
    assert cal.next_covered(ny(2026, 11, 24, 10, 0)) == ny(2026, 11, 24, 12, 0)


def test_overlapping_and_touching_time_off_is_joined():
    weekly = parse_weekly_hours("Mon-Fri 08:00-18:00")
    cal = CoverageCalendar(NY_TZ, weekly, frozenset(), (), [
        (ny(2026, 11, 24, 9, 0), ny(2026, 11, 24, 11, 0)),
        (ny(2026, 11, 24, 10, 0), ny(2026, 11, 24, 12, 0)),
        (ny(2026, 11, 24, 12, 0), ny(2026, 11, 24, 13, 0)),
    ])
    assert list(cal.covered_periods(ny(2026, 11, 24, 0, 0), ny(2026, 11, 25, 0, 0))) == [
        (ny(2026, 11, 24, 8, 0), ny(2026, 11, 24, 9, 0)), (ny(2026, 11, 24, 13, 0), ny(2026, 11, 24, 18, 0))]


def test_excluded_time_is_refused_when_it_makes_no_sense():
    with pytest.raises(ValueError, match="must end after it starts"):
        CoverageCalendar(NY_TZ, {}, excluded=[(ny(2026, 1, 1, 10), ny(2026, 1, 1, 9))])
    with pytest.raises(ValueError, match="24x7"):
        CoverageCalendar(NY_TZ, None, excluded=[(ny(2026, 1, 1, 9), ny(2026, 1, 1, 10))])


# --- properties over randomly built calendars -------------------------------------------------------

ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "Australia/Lord_Howe"]


@st.composite
def calendar_parts(draw) -> dict:
    """Any weekly hours (with at least one range), holidays, on-call extras and time off, in zones with odd DST."""
    weekly: dict[int, list[tuple[time, time]]] = {}
    for weekday in range(7):
        marks = sorted(draw(st.sets(st.integers(0, 48), max_size=4)))
        if len(marks) % 2:
            marks = marks[:-1]
        ranges = []
        for start, end in zip(marks[::2], marks[1::2]):
            to_time = lambda half_hours: time(0) if half_hours == 48 else time(half_hours // 2, 30 * (half_hours % 2))  # noqa: E731
            ranges.append((to_time(start), to_time(end)))
        if ranges:
            weekly[weekday] = ranges
    assume(weekly)
    days_off = draw(st.frozensets(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=20))
    extras = []
    for _ in range(draw(st.integers(0, 3))):
        begin = draw(instants)
        extras.append((begin, begin + timedelta(minutes=draw(st.integers(1, 60 * 48)))))
    excluded = []
    for _ in range(draw(st.integers(0, 2))):
        begin = draw(instants)
        excluded.append((begin, begin + timedelta(minutes=draw(st.integers(1, 60 * 48)))))
    return dict(tz=draw(st.sampled_from(ZONES)), weekly=weekly, holidays=days_off, extra=extras, excluded=excluded)


random_calendars = calendar_parts().map(lambda parts: CoverageCalendar(**parts))


@settings(max_examples=100, deadline=None)
@given(cal=random_calendars, start=instants, a=minute_amounts, b=minute_amounts)
def test_random_calendars_keep_the_algebra(cal: CoverageCalendar, start: datetime, a: int, b: int):
    due = cal.add(start, a + b)
    assert cal.add(cal.add(start, a), b) == due
    assert cal.add(start, min(a, b)) <= due
    assert cal.covered_minutes(start, due) == pytest.approx(a + b, abs=1e-6)
    if a + b:
        assert cal.is_covered(due - timedelta(microseconds=1))
    nxt = cal.next_covered(start)
    assert cal.is_covered(nxt) and cal.covered_minutes(start, nxt) == 0


def test_covered_periods_lists_clipped_joined_stretches():
    periods = list(BUSINESS.covered_periods(ny(2026, 11, 25, 12, 0), ny(2026, 11, 30, 9, 0)))
    assert periods == [
        (ny(2026, 11, 25, 12, 0), ny(2026, 11, 25, 18, 0)),
        (ny(2026, 11, 27, 8, 0), ny(2026, 11, 27, 18, 0)),  # Thanksgiving skipped
        (ny(2026, 11, 30, 8, 0), ny(2026, 11, 30, 9, 0)),
    ]
    all_days = CoverageCalendar(NY_TZ, {d: [(time(0), time(0))] for d in range(7)})
    assert list(all_days.covered_periods(ny(2026, 3, 6, 12, 0), ny(2026, 3, 20, 0, 0))) == [
        (ny(2026, 3, 6, 12, 0), ny(2026, 3, 20, 0, 0))
    ]
    assert list(CoverageCalendar.always().covered_periods(ny(2026, 1, 1), ny(2026, 1, 2))) == [(ny(2026, 1, 1), ny(2026, 1, 2))]
    assert list(BUSINESS.covered_periods(ny(2026, 1, 2), ny(2026, 1, 1))) == []


@settings(max_examples=100, deadline=None)
@given(cal=random_calendars, start=instants, days=st.integers(0, 40))
def test_covered_periods_agree_with_covered_minutes(cal: CoverageCalendar, start: datetime, days: int):
    end = start + timedelta(days=days, hours=5)
    periods = list(cal.covered_periods(start, end))
    total = sum(((b - a) / timedelta(minutes=1) for a, b in periods), 0.0)
    assert total == pytest.approx(cal.covered_minutes(start, end), abs=1e-6)
    for (a, b), (c, _d) in zip(periods, periods[1:]):
        assert a < b < c and not cal.is_covered(b)
    for a, b in periods:
        assert start <= a < b <= end and cal.is_covered(a)


def test_changing_the_holiday_set_afterwards_does_not_change_the_calendar():
    days_off = {date(2026, 11, 24)}
    cal = CoverageCalendar(NY_TZ, parse_weekly_hours("Mon-Fri 08:00-18:00"), days_off)
    days_off.add(date(2026, 11, 25))
    assert not cal.is_covered(ny(2026, 11, 24, 10, 0))
    assert cal.is_covered(ny(2026, 11, 25, 10, 0))


@settings(max_examples=100, deadline=None)
@given(parts=calendar_parts(), start=instants, off=st.lists(
    st.tuples(st.integers(-60 * 48, 60 * 24 * 10), st.integers(1, 60 * 72)), max_size=3))
def test_time_off_removes_exactly_its_own_covered_minutes(parts: dict, start: datetime, off):
    """With time off, a calendar covers what it covered before minus what fell inside the time off
    (time off drawn around `start`, so it often begins before it and ends inside a shift)."""
    excluded = [(start + timedelta(minutes=offset), start + timedelta(minutes=offset + minutes))
                for offset, minutes in off]
    without = CoverageCalendar(**{**parts, "excluded": ()})
    with_off = CoverageCalendar(**{**parts, "excluded": excluded})
    end = start + timedelta(days=10)
    joined = [(max(a, start), min(b, end)) for a, b in sorted(excluded) if b > start and a < end]
    lost, reached = 0.0, start
    for a, b in joined:
        a = max(a, reached)
        if b > a:
            lost += without.covered_minutes(a, b)
            reached = b
    assert with_off.covered_minutes(start, end) == pytest.approx(without.covered_minutes(start, end) - lost, abs=1e-6)
    for piece_start, piece_end in with_off.covered_periods(start, end):
        assert all(b <= piece_start or a >= piece_end for a, b in excluded)
