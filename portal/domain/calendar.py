"""Coverage calendars: when a plan's clock runs.

SLA targets are promised in *covered* time: a four-hour response under a business-hours plan
opened Friday 17:00 is due Monday 11:00, not Friday 21:00. A calendar is either 24x7 or weekly
local business hours in the firm's time zone, minus public holidays (from the `holidays`
library, never a hand-written list), plus explicit extra intervals (on-call periods), minus
explicit excluded intervals (a technician's time off).
Daylight-saving changes are handled by converting every local interval to UTC through zoneinfo,
so a business day that contains a DST change is simply one hour shorter or longer in UTC.

Arithmetic walks whole covered intervals (one per local day and range), never minute by
minute, so adding weeks of covered time costs a few dozen steps.
"""
from __future__ import annotations

import heapq
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Container, Iterable, Iterator, Mapping, Optional, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

UTC = timezone.utc
_ONE_DAY = timedelta(days=1)
# A calendar whose weekly hours are all lost to holidays for this long has no coverage at all.
_MAX_EMPTY_DAYS = 3 * 366

_DAY_NAMES = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Interval = tuple[datetime, datetime]


def as_utc(value: datetime, name: str) -> datetime:
    """Naive datetimes are ambiguous across zones; refuse them rather than guess."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def load_zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"Unknown time zone {tz!r}") from exc


def _parse_clock(text: str, *, allow_24: bool) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if not match:
        raise ValueError(f"Time {text!r} is not in HH:MM form")
    hour, minute = int(match.group(1)), int(match.group(2))
    if allow_24 and hour == 24 and minute == 0:
        return time(0, 0)  # midnight at the end of the day
    if hour > 23 or minute > 59:
        raise ValueError(f"Time {text!r} is not a valid time of day")
    return time(hour, minute)


def _parse_days(text: str) -> list[int]:
    days: list[int] = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            raise ValueError("A day list has an empty entry")
        bounds = item.split("-")
        if len(bounds) > 2 or any(b[:3] not in _DAY_NAMES or len(b) < 3 for b in bounds):
            raise ValueError(f"Unknown day {item!r}: use Mon, Tue, Wed, Thu, Fri, Sat, Sun or a range like Mon-Fri")
        first = _DAY_NAMES[bounds[0][:3]]
        last = _DAY_NAMES[bounds[-1][:3]]
        day = first
        while True:  # ranges may wrap the week: Fri-Mon
            days.append(day)
            if day == last:
                break
            day = (day + 1) % 7
    return days


def day_span_minutes(start: time, end: time) -> tuple[int, int]:
    """Minutes since local midnight; an end of 00:00 means the end of the day (a shift to midnight)."""
    s = start.hour * 60 + start.minute
    e = end.hour * 60 + end.minute
    if e == 0:
        e = 24 * 60
    return s, e


def local_instant(naive: datetime, tz: str) -> datetime:
    """A wall-clock time typed in zone `tz`, as an aware datetime; refuses a time the clocks skip.

    Why: 02:30 on the morning the clocks go forward does not exist; silently reading it as 03:30
    would save something other than what was typed. (A time that occurs twice, when the clocks go
    back, is read as the first.) A time whose UTC instant falls outside datetime's years 1 to 9999
    is refused with a ValueError too, not an OverflowError that callers would not expect.
    """
    zone = load_zone(tz)
    moment = naive.replace(tzinfo=zone)
    try:
        back = moment.astimezone(UTC).astimezone(zone)
    except OverflowError:  # 9999-12-31 23:59 in New York is in the year 10000 in UTC
        raise ValueError(f"{naive:%Y-%m-%d %H:%M} is beyond the dates the portal can count in {tz}") from None
    if back.replace(tzinfo=None) != naive.replace(tzinfo=None):
        raise ValueError(f"{naive:%Y-%m-%d %H:%M} does not exist in {tz}: the clocks go forward then")
    return moment


def repeated_hour_zone(local: datetime) -> str:
    """" EST" or " EDT" when the wall-clock time `local` happens twice (the night the clocks go back), else "".

    Why: on 1 Nov 2026 in New York a ticket opened at 01:30 (EDT) under a 30-minute promise is due at
    01:00 (EST), half an hour later; without the zone the page read "due by 01:00" beside "opened 01:30".
    """
    other = local.replace(fold=1 - local.fold)
    return f" {local:%Z}" if other.utcoffset() != local.utcoffset() else ""


def _clock_text(value: time, *, is_end: bool) -> str:
    return "24:00" if is_end and value == time(0) else f"{value:%H:%M}"


def _check_day_ranges(weekday: int, ranges: Sequence[tuple[time, time]]) -> list[tuple[time, time]]:
    spans = []
    for start, end in ranges:
        if not isinstance(start, time) or not isinstance(end, time):
            raise ValueError(f"{_DAY_LABELS[weekday]}: hours must be (time, time) pairs")
        s, e = day_span_minutes(start, end)
        if s >= e:
            raise ValueError(
                f"{_DAY_LABELS[weekday]}: {_clock_text(start, is_end=False)}-{_clock_text(end, is_end=True)}"
                " must end after it starts "
                "(use 24:00 for midnight)"
            )
        spans.append((s, e, start, end))
    spans.sort()
    for (s1, e1, a1, b1), (s2, _e2, a2, b2) in zip(spans, spans[1:]):
        if s2 < e1:
            raise ValueError(
                f"{_DAY_LABELS[weekday]}: {_clock_text(a1, is_end=False)}-{_clock_text(b1, is_end=True)}"
                f" overlaps {_clock_text(a2, is_end=False)}-{_clock_text(b2, is_end=True)}"
            )
    return [(a, b) for _s, _e, a, b in spans]


def parse_weekly_hours(spec: str) -> dict[int, list[tuple[time, time]]]:
    """Parse staff-entered weekly hours like "Mon-Fri 08:00-18:00; Sat 09:00-13:00".

    Groups are separated by ";"; each is a day list (Mon, Mon-Fri, Mon,Wed,Fri, wrap-around
    Fri-Mon) followed by one or more HH:MM-HH:MM ranges (24:00 = midnight). Weekday 0 is Monday.
    Raises ValueError with a plain-words message on any mistake.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError('Enter weekly hours, for example "Mon-Fri 08:00-18:00"')
    collected: dict[int, list[tuple[time, time]]] = {}
    for group in spec.split(";"):
        group = group.strip()
        if not group:
            continue
        parts = group.split(None, 1)
        if len(parts) < 2:
            raise ValueError(f'"{group}" needs days and hours, for example "Mon-Fri 08:00-18:00"')
        days = _parse_days(parts[0])
        ranges: list[tuple[time, time]] = []
        for token in re.split(r"[\s,]+", parts[1].strip()):
            if not token:
                continue
            bounds = token.split("-")
            if len(bounds) != 2:
                raise ValueError(f'Hours "{token}" must look like 08:00-18:00')
            ranges.append((_parse_clock(bounds[0], allow_24=False), _parse_clock(bounds[1], allow_24=True)))
        for day in days:
            collected.setdefault(day, []).extend(ranges)
    if not collected:
        raise ValueError('Enter weekly hours, for example "Mon-Fri 08:00-18:00"')
    return {day: _check_day_ranges(day, ranges) for day, ranges in sorted(collected.items())}


def _merged(intervals: Iterator[Interval]) -> tuple[Interval, ...]:
    """Sorted intervals with overlapping or touching ones joined; each must end after it starts."""
    result: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            raise ValueError(f"excluded interval {start.isoformat()} must end after it starts")
        if result and start <= result[-1][1]:
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return tuple(result)


# Time off entered as two periods, the second starting when (or within a minute of when) the first ends,
# is one absence: "away until" is the end of the second.
TIME_OFF_JOIN = timedelta(minutes=1)


def run_at(periods: Iterable[Interval], now: datetime, joined_within: timedelta = TIME_OFF_JOIN
           ) -> Optional[Interval]:
    """The unbroken run of `periods` that contains `now`: its first start and last end, or None.

    Periods that overlap, touch, or leave a gap of at most `joined_within` chain together, so a
    technician off 1-5 Dec and again 5-9 Dec is away until 9 Dec. `now` must lie in one of the
    periods themselves (start <= now < end), not in a gap between two.
    """
    run: Optional[Interval] = None
    inside = False
    for start, end in sorted(periods):
        if run is None or start > run[1] + joined_within:
            if inside:
                break
            run = (start, end)
        else:
            run = (run[0], max(run[1], end))
        inside = inside or start <= now < end
    return run if inside else None


class CoverageCalendar:
    """When a plan's SLA clock runs. Immutable; accepts aware datetimes, returns aware UTC."""

    __slots__ = ("_tz_name", "_zone", "_weekly", "_holidays", "_extra", "_excluded", "_day_cache")

    def __init__(
        self,
        tz: str,
        weekly: Optional[Mapping[int, Sequence[tuple[time, time]]]],
        holidays: Container[date] = frozenset(),
        extra: Sequence[tuple[datetime, datetime]] = (),
        excluded: Sequence[tuple[datetime, datetime]] = (),
    ) -> None:
        self._tz_name = tz
        self._zone = load_zone(tz)
        if weekly is None:
            self._weekly: Optional[dict[int, tuple[tuple[int, int], ...]]] = None
        else:
            normalised: dict[int, tuple[tuple[int, int], ...]] = {}
            for weekday, ranges in weekly.items():
                if weekday not in range(7):
                    raise ValueError(f"Weekday {weekday!r} must be 0 (Monday) to 6 (Sunday)")
                checked = _check_day_ranges(weekday, list(ranges))
                if checked:
                    normalised[weekday] = tuple(day_span_minutes(s, e) for s, e in checked)
            self._weekly = normalised
        # Plain collections are frozen so the calendar cannot change under its own memo; the
        # `holidays` library's objects (which fill in years lazily) are kept as they are.
        self._holidays = frozenset(holidays) if isinstance(holidays, (set, list, tuple)) else holidays
        extras = []
        for index, (start, end) in enumerate(extra):
            s = as_utc(start, f"extra[{index}] start")
            e = as_utc(end, f"extra[{index}] end")
            if e <= s:
                raise ValueError(f"extra[{index}] must end after it starts")
            extras.append((s, e))
        self._extra: tuple[Interval, ...] = tuple(sorted(extras))
        if excluded and weekly is None:
            raise ValueError("A 24x7 calendar has no excluded time")
        self._excluded: tuple[Interval, ...] = _merged(
            (as_utc(s, f"excluded[{i}] start"), as_utc(e, f"excluded[{i}] end")) for i, (s, e) in enumerate(excluded))
        # Memo of local day -> UTC intervals; an optimisation only, the calendar never changes.
        self._day_cache: dict[date, tuple[Interval, ...]] = {}

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_day_cache"):
            raise AttributeError("CoverageCalendar is immutable")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        kind = "24x7" if self._weekly is None else f"weekly {self._weekly}"
        return f"CoverageCalendar({self._tz_name!r}, {kind}, extra={len(self._extra)}, excluded={len(self._excluded)})"

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def always(cls) -> "CoverageCalendar":
        """24x7 coverage (premium plans): every instant counts."""
        return cls("UTC", None)

    @classmethod
    def business(
        cls,
        tz: str,
        weekly_hours: str = "Mon-Fri 08:00-18:00",
        holiday_country: Optional[str] = "US",
        holiday_region: Optional[str] = "NY",
    ) -> "CoverageCalendar":
        """Weekly business hours in the firm's zone minus the public holidays of country/region."""
        weekly = parse_weekly_hours(weekly_hours)
        if holiday_country:
            try:
                days_off: Container[date] = holidays_lib.country_holidays(
                    holiday_country, subdiv=holiday_region or None
                )
            except NotImplementedError as exc:
                raise ValueError(
                    f"No public holidays known for country {holiday_country!r}"
                    + (f" region {holiday_region!r}" if holiday_region else "")
                ) from exc
        else:
            days_off = frozenset()
        return cls(tz, weekly, days_off, ())

    # -- properties ---------------------------------------------------------------------------

    @property
    def tz(self) -> str:
        """The zone whose wall clock the weekly hours (and local dates) are read in."""
        return self._tz_name

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def is_24x7(self) -> bool:
        return self._weekly is None

    def local(self, at: datetime) -> datetime:
        """`at` on the calendar's wall clock, for messages."""
        return as_utc(at, "at").astimezone(self._zone)

    def holidays_closed(self, start: datetime, end: datetime) -> list[tuple[date, str]]:
        """The public holidays, with their names, that close a working day from `start`'s local date up
        to (not including) `end`'s: why the next business day is further off than a client expects
        ("Thu 26 Nov is Thanksgiving Day"). A holiday on a day without weekly hours closes nothing."""
        if self._weekly is None:
            return []
        day, last = self.local(start).date(), self.local(end).date()
        if (last - day).days > 366:
            last = day + timedelta(days=366)
        named = getattr(self._holidays, "get", None)
        closed = []
        while day < last:
            if self._weekly.get(day.weekday()) and day in self._holidays:
                closed.append((day, (named(day) if named is not None else None) or "a public holiday"))
            day += timedelta(days=1)
        return closed

    # -- interval machinery -------------------------------------------------------------------

    def _day_intervals(self, day: date) -> tuple[Interval, ...]:
        cached = self._day_cache.get(day)
        if cached is not None:
            return cached
        assert self._weekly is not None
        result: list[Interval] = []
        ranges = self._weekly.get(day.weekday(), ())
        if ranges and day not in self._holidays:
            midnight = datetime(day.year, day.month, day.day)
            for s_min, e_min in ranges:
                # Local wall times -> UTC; zoneinfo resolves DST gaps/folds (fold=0).
                start = (midnight + timedelta(minutes=s_min)).replace(tzinfo=self._zone).astimezone(UTC)
                end = (midnight + timedelta(minutes=e_min)).replace(tzinfo=self._zone).astimezone(UTC)
                if end > start:
                    result.append((start, end))
        frozen = tuple(result)
        if len(self._day_cache) < 20_000:
            self._day_cache[day] = frozen
        return frozen

    def _weekly_stream(self, at: datetime) -> Iterator[Interval]:
        if not self._weekly:
            return
        day = at.astimezone(self._zone).date() - _ONE_DAY
        empty_run = 0
        while empty_run <= _MAX_EMPTY_DAYS:
            intervals = self._day_intervals(day)
            if intervals:
                empty_run = 0
                yield from intervals
            else:
                empty_run += 1
            day += _ONE_DAY

    def _pieces(self, at: datetime) -> Iterator[Interval]:
        """Covered time from `at` on: sorted, non-overlapping pieces ending after `at`.

        Pieces may touch (Mon 00:00-24:00 then Tue 00:00-...), which every caller tolerates;
        not coalescing keeps the stream lazy even for calendars covered every day.
        """
        extras = (iv for iv in self._extra if iv[1] > at)
        merged = heapq.merge(self._weekly_stream(at), extras)
        reached: Optional[datetime] = None
        excluded = [iv for iv in self._excluded if iv[1] > at]
        for start, end in merged:
            if reached is not None and start < reached:
                start = reached
            if end <= start:
                continue
            reached = end
            if end <= at:
                continue
            while excluded and excluded[0][1] <= start:
                excluded.pop(0)
            for off_start, off_end in excluded:
                if off_start >= end:
                    break
                if off_start > start and off_start > at:
                    yield start, off_start
                start = max(start, off_end)
            if start < end:
                yield start, end

    # -- public arithmetic --------------------------------------------------------------------

    def is_covered(self, at: datetime) -> bool:
        """Whether the clock runs at `at` (intervals are start-inclusive, end-exclusive)."""
        at = as_utc(at, "at")
        if self._weekly is None:
            return True
        for start, _end in self._pieces(at):
            return start <= at
        return False

    def next_covered(self, at: datetime) -> datetime:
        """`at` itself when covered, otherwise the start of the next covered interval."""
        at = as_utc(at, "at")
        if self._weekly is None:
            return at
        for start, _end in self._pieces(at):
            return max(start, at)
        raise ValueError("This calendar has no covered time after the given moment")

    def add(self, start: datetime, minutes: float) -> datetime:
        """The instant by which `minutes` of covered time have passed since `start`.

        Adding 0 returns `start` unchanged (so add is exactly additive); a positive amount that
        uses up an interval exactly ends at that interval's end (18:00, not 08:00 next day).
        """
        start = as_utc(start, "start")
        if minutes < 0:
            raise ValueError("minutes must not be negative")
        remaining = timedelta(minutes=minutes)
        if self._weekly is None or remaining == timedelta(0):
            return start + remaining
        for piece_start, piece_end in self._pieces(start):
            begin = max(piece_start, start)
            available = piece_end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise ValueError("This calendar has no covered time left to add to")

    def covered_minutes(self, start: datetime, end: datetime) -> float:
        """Covered minutes between two instants (0 when end is not after start)."""
        start = as_utc(start, "start")
        end = as_utc(end, "end")
        if end <= start:
            return 0.0
        if self._weekly is None:
            return (end - start) / timedelta(minutes=1)
        total = timedelta(0)
        for piece_start, piece_end in self._pieces(start):
            if piece_start >= end:
                break
            total += min(piece_end, end) - max(piece_start, start)
        return total / timedelta(minutes=1)

    def covered_periods(self, start: datetime, end: datetime) -> Iterator[Interval]:
        """The covered stretches between two instants, clipped to them, in order.

        Touching intervals (Mon 00:00-24:00 then Tue 00:00-...) are joined into one stretch, so
        callers that plan work across many instants (the dispatcher) can read a horizon once and
        bisect, instead of probing with covered_minutes.
        """
        start = as_utc(start, "start")
        end = as_utc(end, "end")
        if end <= start:
            return
        if self._weekly is None:
            yield start, end
            return
        current: Optional[Interval] = None
        for piece_start, piece_end in self._pieces(start):
            if piece_start >= end:
                break
            piece = (max(piece_start, start), min(piece_end, end))
            if current is not None and piece[0] <= current[1]:
                current = (current[0], max(current[1], piece[1]))
                continue
            if current is not None:
                yield current
            current = piece
        if current is not None:
            yield current

    def next_business_start(self, at: datetime) -> datetime:
        """First covered instant on a later local day than `at`: the best-effort target."""
        at = as_utc(at, "at")
        local_day = at.astimezone(self._zone).date() + _ONE_DAY
        next_midnight = datetime(local_day.year, local_day.month, local_day.day, tzinfo=self._zone)
        return self.next_covered(next_midnight.astimezone(UTC))
