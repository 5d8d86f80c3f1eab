import math

import pytest
from hypothesis import given, strategies as st

from portal.domain.effort import CATEGORIES, DEFAULT_EFFORT, PLAN_MIN_SAMPLES, EffortEstimate, EffortModel


def test_defaults_cover_every_category_before_any_history():
    model = EffortModel.learn([])
    for category in ("network", "hardware", "software", "email", "printer", "security", "other"):
        estimate = model.estimate(category)
        assert estimate == DEFAULT_EFFORT[category]
        assert 0 < estimate.median_minutes < estimate.p90_minutes
    assert set(CATEGORIES) == set(DEFAULT_EFFORT)


def test_unknown_category_falls_back_to_other():
    assert EffortModel.learn([]).estimate("plumbing") == DEFAULT_EFFORT["other"]


def test_learns_median_and_spread_from_history():
    history = [("printer", None, minutes) for minutes in [20, 25, 30, 30, 35, 40, 45, 60, 90, 30] * 10]
    estimate = EffortModel.learn(history).estimate("printer")
    assert 28 < estimate.median_minutes < 40
    assert estimate.median_minutes * 1.3 < estimate.p90_minutes < estimate.median_minutes * 3


def test_few_samples_are_pulled_towards_the_default():
    lucky = EffortModel.learn([("network", None, 10), ("network", None, 12)]).estimate("network")
    assert 10 * 1.5 < lucky.median_minutes < DEFAULT_EFFORT["network"].median_minutes


def test_per_plan_fit_only_with_enough_samples():
    history = [("email", "premium-24-7", 10.0)] * PLAN_MIN_SAMPLES + [("email", "break-fix", 200.0)] * (
        PLAN_MIN_SAMPLES - 1
    ) + [("email", None, 60.0)] * 20
    model = EffortModel.learn(history)
    premium = model.estimate("email", "premium-24-7")
    category = model.estimate("email")
    assert premium.median_minutes < category.median_minutes
    assert model.estimate("email", "break-fix") == category
    assert model.samples("email", "premium-24-7") == PLAN_MIN_SAMPLES
    # Too few break/fix samples: the estimate rests on every email ticket.
    assert model.samples("email", "break-fix") == len(history)


def test_bad_rows_are_skipped_not_fitted():
    model = EffortModel.learn([("hardware", None, 0), ("hardware", None, -5), ("hardware", None, float("nan")),
                               ("hardware", None, None)])
    assert model.estimate("hardware") == DEFAULT_EFFORT["hardware"]
    assert model.samples("hardware") == 0


def test_estimate_rejects_p90_below_median():
    with pytest.raises(ValueError, match="p90_minutes"):
        EffortEstimate(60, 30)


def test_lognormal_moments_match_median_and_p90():
    estimate = EffortEstimate(60, 150)
    sigma = math.log(150 / 60) / 1.2815515655446004
    assert estimate.mean_minutes == pytest.approx(60 * math.exp(sigma ** 2 / 2))
    assert estimate.variance == pytest.approx((math.exp(sigma ** 2) - 1) * math.exp(2 * math.log(60) + sigma ** 2))
    assert EffortEstimate(30, 30).variance == 0


@given(st.lists(st.tuples(st.sampled_from(CATEGORIES), st.sampled_from([None, "essentials", "priority"]),
                          st.floats(min_value=1, max_value=2000)), max_size=60))
def test_any_history_gives_sane_estimates(history):
    model = EffortModel.learn(history)
    for category in CATEGORIES:
        for plan in (None, "essentials", "priority"):
            estimate = model.estimate(category, plan)
            assert 0 < estimate.median_minutes <= estimate.p90_minutes
            assert math.isfinite(estimate.p90_minutes)


def test_a_job_run_to_its_90_percent_bound_still_has_a_hard_jobs_share_left():
    left = EffortEstimate(60, 150).remaining_after(150)
    # Of such jobs, those still running at 150 minutes: half end by their 95th percentile.
    sigma = math.log(150 / 60) / 1.2815515655446004
    assert left.median_minutes == pytest.approx(60 * math.exp(sigma * 1.6448536269514722) - 150)
    assert 44 < left.median_minutes < 45 and 165 < left.p90_minutes < 167


def test_a_job_not_yet_started_is_the_whole_estimate_and_a_fixed_one_allows_a_tenth_once_outrun():
    estimate = EffortEstimate(60, 150)
    assert estimate.remaining_after(0) == estimate and estimate.remaining_after(-5) == estimate
    assert EffortEstimate(30, 30).remaining_after(10) == EffortEstimate(20, 20)
    assert EffortEstimate(30, 30).remaining_after(40) == EffortEstimate(3, 3)


@given(st.floats(min_value=1, max_value=600), st.floats(min_value=1, max_value=8),
       st.floats(min_value=0, max_value=1e5), st.floats(min_value=0, max_value=1e5))
def test_the_longer_a_job_has_run_the_later_it_is_expected_to_end(median, spread, first, second):
    estimate = EffortEstimate(median, median * spread)
    early, late = sorted((first, second))
    before, after = estimate.remaining_after(early), estimate.remaining_after(late)
    for left in (before, after):
        assert 0 <= left.median_minutes <= left.p90_minutes and math.isfinite(left.p90_minutes)
    tolerance = 1e-9 * (late + estimate.p90_minutes)
    assert early + before.median_minutes <= late + after.median_minutes + tolerance
    assert early + before.p90_minutes <= late + after.p90_minutes + tolerance
