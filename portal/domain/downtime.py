"""Downtime-cost calculator: which plan costs least once outages are priced in.

For every plan the yearly cost is its fees plus the expected cost of outages:
outages a year x hours down x (idle staff cost + revenue at risk), where hours down
is the plan's on-site arrival target (or the best-effort wait for break/fix) plus
the repair itself, and labour billed at the plan's hourly rate.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Optional, Sequence


@dataclass(frozen=True)
class PlanTerms:
    slug: str
    name: str
    monthly_price: Decimal
    arrival_minutes: Optional[int]
    hourly_rate: Decimal
    best_effort: bool
    onboarding_fee: Decimal = Decimal("0")  # once, in the first year


@dataclass(frozen=True)
class DowntimeInput:
    staff_affected: int
    revenue_per_hour: Decimal
    outages_per_year: int
    staff_cost_per_hour: Decimal = Decimal("40")
    repair_hours: Decimal = Decimal("2")
    best_effort_wait_hours: Decimal = Decimal("24")

    def problems(self) -> dict[str, str]:
        """Field name -> plain-words problem; empty when the input can be priced."""
        found: dict[str, str] = {}
        if not 1 <= self.staff_affected <= 100_000:
            found["staff_affected"] = "Enter between 1 and 100,000 people."
        if not Decimal("0") <= self.revenue_per_hour <= Decimal("10000000"):
            found["revenue_per_hour"] = "Enter an amount between 0 and 10,000,000 an hour."
        if not 0 <= self.outages_per_year <= 365:
            found["outages_per_year"] = "Enter between 0 and 365 outages a year."
        if not Decimal("0") <= self.staff_cost_per_hour <= Decimal("10000"):
            found["staff_cost_per_hour"] = "Enter a staff cost between 0 and 10,000 an hour."
        return found


@dataclass(frozen=True)
class PlanCost:
    plan: PlanTerms
    hours_down_per_outage: Decimal
    downtime_cost_per_hour: Decimal
    yearly_downtime_cost: Decimal
    yearly_fees: Decimal
    yearly_labour: Decimal
    yearly_total: Decimal
    arithmetic: tuple[str, ...]


@dataclass(frozen=True)
class Recommendation:
    costs: tuple[PlanCost, ...]
    best: PlanCost


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1"), rounding=ROUND_HALF_UP)


def _fmt(value: Decimal) -> str:
    """Whole dollars, or cents where there are any: $40.50 shown as $41 made a step not add up."""
    cents = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"${cents:,}" if cents != cents.to_integral_value() else f"${_money(value):,}"


def price_plan(plan: PlanTerms, data: DowntimeInput) -> PlanCost:
    if plan.best_effort or plan.arrival_minutes is None:
        wait = data.best_effort_wait_hours
    else:
        wait = Decimal(plan.arrival_minutes) / Decimal(60)
    hours_down = wait + data.repair_hours
    per_hour = data.staff_affected * data.staff_cost_per_hour + data.revenue_per_hour
    downtime = data.outages_per_year * hours_down * per_hour
    fees = plan.monthly_price * 12 + plan.onboarding_fee
    labour = data.outages_per_year * data.repair_hours * plan.hourly_rate
    total = downtime + fees + labour
    wait_words = (
        f"{wait.normalize():f} h best-effort wait" if plan.best_effort or plan.arrival_minutes is None
        else f"{wait.normalize():f} h arrival guarantee"
    )
    arithmetic = (
        f"Hours down per outage: {wait_words} + {data.repair_hours.normalize():f} h repair = {hours_down.normalize():f} h",
        f"Cost of an hour down: {data.staff_affected} staff x {_fmt(data.staff_cost_per_hour)} + {_fmt(data.revenue_per_hour)} revenue = {_fmt(per_hour)}",
        f"Downtime a year: {data.outages_per_year} outages x {hours_down.normalize():f} h x {_fmt(per_hour)} = {_fmt(downtime)}",
        (f"Plan fees in the first year: 12 x {_fmt(plan.monthly_price)} + {_fmt(plan.onboarding_fee)} onboarding "
         f"(once) = {_fmt(fees)}" if plan.onboarding_fee else f"Plan fees a year: 12 x {_fmt(plan.monthly_price)} = {_fmt(fees)}"),
        f"Repair labour a year: {data.outages_per_year} x {data.repair_hours.normalize():f} h x {_fmt(plan.hourly_rate)} = {_fmt(labour)}",
        f"Total a year: {_fmt(total)}",
    )
    return PlanCost(plan, hours_down, per_hour, _money(downtime), _money(fees), _money(labour), _money(total), arithmetic)


def recommend(plans: Sequence[PlanTerms], data: DowntimeInput) -> Recommendation:
    """The cheapest plan over a year wins; on a tie the faster guarantee wins."""
    if not plans:
        raise ValueError("no plans to compare")
    costs = tuple(price_plan(plan, data) for plan in plans)
    best = min(costs, key=lambda c: (c.yearly_total, c.hours_down_per_outage))
    return Recommendation(costs, best)
