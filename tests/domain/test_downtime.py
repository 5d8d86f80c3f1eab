from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from portal.domain.downtime import DowntimeInput, PlanTerms, price_plan, recommend

BREAK_FIX = PlanTerms("break-fix", "Break/Fix", Decimal("0"), None, Decimal("175"), True)
ESSENTIALS = PlanTerms("essentials", "Essentials", Decimal("490"), 480, Decimal("125"), False)
PREMIUM = PlanTerms("premium-24-7", "Premium 24/7", Decimal("2490"), 120, Decimal("0"), False)
PLANS = [BREAK_FIX, ESSENTIALS, PREMIUM]


def test_small_office_with_rare_outages_stays_on_break_fix():
    data = DowntimeInput(staff_affected=2, revenue_per_hour=Decimal("0"), outages_per_year=1)
    assert recommend(PLANS, data).best.plan is BREAK_FIX


def test_label_printer_losing_17000_an_hour_needs_premium():
    data = DowntimeInput(staff_affected=40, revenue_per_hour=Decimal("17000"), outages_per_year=4)
    assert recommend(PLANS, data).best.plan is PREMIUM


def test_arithmetic_shows_each_step_and_adds_up():
    data = DowntimeInput(staff_affected=10, revenue_per_hour=Decimal("500"), outages_per_year=3)
    cost = price_plan(ESSENTIALS, data)
    # 8 h arrival + 2 h repair = 10 h; (10 x 40 + 500) = 900/h; 3 x 10 x 900 = 27,000
    assert cost.hours_down_per_outage == Decimal("10")
    assert cost.yearly_downtime_cost == Decimal("27000")
    assert cost.yearly_fees == Decimal("5880")
    assert cost.yearly_labour == Decimal("750")
    assert cost.yearly_total == Decimal("33630")
    assert cost.arithmetic[-1] == "Total a year: $33,630"


def test_each_step_adds_up_as_shown_when_an_amount_has_cents():
    data = DowntimeInput(staff_affected=10, revenue_per_hour=Decimal("1000"), outages_per_year=3,
                         staff_cost_per_hour=Decimal("40.50"))
    cost = price_plan(ESSENTIALS, data)
    assert "Cost of an hour down: 10 staff x $40.50 + $1,000 revenue = $1,405" in cost.arithmetic
    assert "Downtime a year: 3 outages x 10 h x $1,405 = $42,150" in cost.arithmetic


def test_the_onboarding_fee_counts_once_in_the_first_year():
    from dataclasses import replace

    data = DowntimeInput(staff_affected=10, revenue_per_hour=Decimal("500"), outages_per_year=3)
    cost = price_plan(replace(ESSENTIALS, onboarding_fee=Decimal("250")), data)
    assert cost.yearly_fees == Decimal("6130") and cost.yearly_total == Decimal("33880")
    assert "Plan fees in the first year: 12 x $490 + $250 onboarding (once) = $6,130" in cost.arithmetic


def test_problems_name_the_field():
    data = DowntimeInput(staff_affected=0, revenue_per_hour=Decimal("-5"), outages_per_year=1000)
    assert set(data.problems()) == {"staff_affected", "revenue_per_hour", "outages_per_year"}


def test_no_plans_is_an_error():
    with pytest.raises(ValueError):
        recommend([], DowntimeInput(1, Decimal("0"), 1))


@given(
    staff=st.integers(1, 500),
    revenue=st.decimals(0, 100000, places=2),
    outages=st.integers(0, 50),
)
def test_recommendation_is_never_beaten(staff, revenue, outages):
    data = DowntimeInput(staff, revenue, outages)
    result = recommend(PLANS, data)
    assert all(result.best.yearly_total <= c.yearly_total for c in result.costs)
