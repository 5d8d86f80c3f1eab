"""How long a job takes: effort estimates learned from resolved tickets.

Repair times are skewed: most printer jobs take half an hour, a few take half a day. A
lognormal fits that shape with two numbers, so an estimate is its median and its 90% bound
(p90). Before there is history each category has a sensible default; with history the
model fits a lognormal per category, and per category and plan once a plan has at least
`PLAN_MIN_SAMPLES` resolved tickets (premium clients' networks are not break/fix clients'
networks). Small samples are pulled towards the default so that three lucky tickets do not
promise a ten-minute network repair.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Iterable, Mapping, Optional

# z for the 90th percentile of a standard normal: p90 = median * exp(Z90 * sigma).
Z90 = 1.2815515655446004
PLAN_MIN_SAMPLES = 5
# Weight of the default (or the category fit, for a plan) in pseudo-samples.
PRIOR_WEIGHT = 3.0
_MIN_SIGMA = 0.05
_MAX_SIGMA = 2.0
# What an estimate with no spread (median = p90) still allows once the job has outrun it.
FIXED_OVERRUN_SHARE = 0.1
_NORMAL = NormalDist()


@dataclass(frozen=True)
class EffortEstimate:
    """Median and 90% bound of a duration in minutes (also used for travel time)."""

    median_minutes: float
    p90_minutes: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.median_minutes) and self.median_minutes >= 0):
            raise ValueError("median_minutes must be a finite number of minutes, 0 or more")
        if not (math.isfinite(self.p90_minutes) and self.p90_minutes >= self.median_minutes):
            raise ValueError("p90_minutes must be finite and at least median_minutes")

    @property
    def sigma(self) -> float:
        """Spread of the lognormal with this median and p90 (0 for a fixed duration)."""
        if self.median_minutes <= 0 or self.p90_minutes <= self.median_minutes:
            return 0.0
        return math.log(self.p90_minutes / self.median_minutes) / Z90

    @property
    def mean_minutes(self) -> float:
        """Expected duration: what a technician's day adds up to on average."""
        s = self.sigma
        return self.median_minutes * math.exp(s * s / 2)

    @property
    def variance(self) -> float:
        """Variance in minutes squared, so spreads along a technician's chain can be summed."""
        s2 = self.sigma ** 2
        m = self.median_minutes
        return (math.exp(s2) - 1.0) * m * m * math.exp(s2)

    def remaining_after(self, elapsed_minutes: float) -> "EffortEstimate":
        """What is left of a job that has already run `elapsed_minutes`: this lognormal given that
        the job lasts at least that long.

        Why: a job past its median is not nearly done, and one past its 90% bound is a hard one.
        A repair of median 60 and p90 150 minutes that has run 150 still needs about 45 more (up to
        about 167 at 90%). Counting the median minus the time spent would call its technician free in
        minutes, plan the next emergency on them and move it back at every recompute. An estimate
        with no spread has nothing to condition on: once outrun it allows FIXED_OVERRUN_SHARE of
        the job.
        """
        if not elapsed_minutes > 0:
            return self
        m, s = self.median_minutes, self.sigma
        if s == 0.0:
            left = max(m - elapsed_minutes, m * FIXED_OVERRUN_SHARE)
            return EffortEstimate(left, left)
        z = (math.log(elapsed_minutes) - math.log(m)) / s
        beyond = _NORMAL.cdf(-z)  # the chance a job of this kind runs longer than this one has

        def left(p: float) -> float:
            tail = beyond * (1.0 - p)
            # Past about 37 standard deviations the tail underflows: the normal's excess over z is
            # then nearly exponential with rate z.
            quantile = -_NORMAL.inv_cdf(tail) if tail > 0.0 else z - math.log(1.0 - p) / z
            return max(0.0, m * math.exp(s * quantile) - elapsed_minutes)

        median = left(0.5)
        return EffortEstimate(median, max(median, left(0.9)))

    @classmethod
    def from_log_params(cls, mu: float, sigma: float) -> "EffortEstimate":
        return cls(math.exp(mu), math.exp(mu + Z90 * sigma))


# Defaults before there is history: (median, p90) minutes by ticket category.
DEFAULT_EFFORT: Mapping[str, EffortEstimate] = {
    "network": EffortEstimate(90, 240),
    "hardware": EffortEstimate(75, 180),
    "software": EffortEstimate(45, 120),
    "email": EffortEstimate(30, 90),
    "printer": EffortEstimate(40, 100),
    "security": EffortEstimate(120, 360),
    "other": EffortEstimate(60, 150),
}
CATEGORIES = tuple(DEFAULT_EFFORT)


def _normal_category(category: Optional[str]) -> str:
    key = (category or "other").strip().lower()
    return key if key in DEFAULT_EFFORT else "other"


@dataclass(frozen=True)
class _LogFit:
    mu: float
    sigma: float
    samples: int


def _fit(logs: list[float], prior: _LogFit) -> _LogFit:
    """Lognormal fit of log-minutes, shrunk towards `prior` with PRIOR_WEIGHT pseudo-samples."""
    n = len(logs)
    mean = sum(logs) / n
    ss = sum((x - mean) ** 2 for x in logs)
    w = PRIOR_WEIGHT
    mu = (n * mean + w * prior.mu) / (n + w)
    # Pooled variance: the sample's own spread, the prior's, and the gap between their centres.
    var = (ss + w * prior.sigma ** 2 + (n * w / (n + w)) * (mean - prior.mu) ** 2) / (n + w)
    sigma = min(max(math.sqrt(var), _MIN_SIGMA), _MAX_SIGMA)
    return _LogFit(mu, sigma, n)


def _default_fit(category: str) -> _LogFit:
    est = DEFAULT_EFFORT[category]
    return _LogFit(math.log(est.median_minutes), est.sigma, 0)


@dataclass(frozen=True)
class EffortModel:
    """Effort per ticket category (and plan, with enough history); immutable once learned."""

    by_category: Mapping[str, _LogFit] = field(default_factory=dict)
    by_plan: Mapping[tuple[str, str], _LogFit] = field(default_factory=dict)

    @classmethod
    def learn(cls, history: Iterable[tuple[str, Optional[str], float]]) -> "EffortModel":
        """Fit from resolved tickets as (category, plan_slug, minutes) rows.

        Rows with a missing, zero, negative or non-finite duration are skipped: they are data
        entry slips, not repairs that took no time.
        """
        per_cat: dict[str, list[float]] = {}
        per_plan: dict[tuple[str, str], list[float]] = {}
        for category, plan_slug, minutes in history:
            try:
                value = float(minutes)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value) or value <= 0:
                continue
            cat = _normal_category(category)
            per_cat.setdefault(cat, []).append(math.log(value))
            if plan_slug:
                per_plan.setdefault((cat, plan_slug), []).append(math.log(value))
        by_category = {cat: _fit(logs, _default_fit(cat)) for cat, logs in per_cat.items()}
        by_plan = {
            key: _fit(logs, by_category[key[0]])
            for key, logs in per_plan.items()
            if len(logs) >= PLAN_MIN_SAMPLES
        }
        return cls(by_category, by_plan)

    def estimate(self, category: str, plan_slug: Optional[str] = None) -> EffortEstimate:
        """Median and p90 minutes for a ticket of this category (unknown categories: other)."""
        cat = _normal_category(category)
        fit = None
        if plan_slug:
            fit = self.by_plan.get((cat, plan_slug))
        if fit is None:
            fit = self.by_category.get(cat)
        if fit is None:
            return DEFAULT_EFFORT[cat]
        return EffortEstimate.from_log_params(fit.mu, fit.sigma)

    def samples(self, category: str, plan_slug: Optional[str] = None) -> int:
        """How many resolved tickets the estimate rests on (0 = the default), for staff pages."""
        cat = _normal_category(category)
        fit = self.by_plan.get((cat, plan_slug)) if plan_slug else None
        if fit is None:
            fit = self.by_category.get(cat)
        return fit.samples if fit else 0
