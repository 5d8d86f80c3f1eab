"""Plans as the firm sells them: loading, and their promises in plain words."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

from sqlalchemy import select

from ..domain.downtime import PlanTerms
from ..extensions import db
from ..models import Plan
from .text import has_nul


def active_plans() -> list[Plan]:
    return list(db.session.scalars(select(Plan).where(Plan.active.is_(True)).order_by(Plan.display_order, Plan.id)))


def plan_by_slug(slug: str) -> Optional[Plan]:
    if has_nul(slug):
        return None  # no slug has one, and PostgreSQL would refuse to compare it
    return db.session.scalars(select(Plan).where(Plan.slug == slug, Plan.active.is_(True))).first()


def duration_words(minutes: Optional[int], business_hours: bool) -> str:
    if minutes is None:
        return "no guarantee"
    business = "business " if business_hours else ""
    if minutes < 60:
        return f"{minutes} {business}minutes"
    hours, rest = divmod(minutes, 60)
    words = f"{hours} {business}hour" + ("s" if hours != 1 else "")
    # Exact minutes: 100 minutes read "1.7 hours" (102 minutes), 135 "2.2 hours", a promise other than the plan's.
    return words if rest == 0 else f"{words} {rest} minute" + ("s" if rest != 1 else "")


@dataclass(frozen=True)
class PlanPromise:
    """What a plan promises, in the words shown on the comparison table."""

    coverage: str
    remote: str
    onsite: str
    after_hours: str
    price: str
    hourly: str
    term: str
    onboarding: str


def promise(plan: Plan, business_hours_text: str) -> PlanPromise:
    business = plan.coverage == Plan.COVERAGE_BUSINESS
    coverage = "24 hours a day, 7 days a week" if not business else f"{business_hours_text}, except public holidays"
    if not plan.is_contract:
        remote = "Best effort, usually the next business day: no guarantee"
        onsite = "Best effort, when a technician is free: no guarantee"
        after_hours = "No: after-hours calls are seen the next business day"
    else:
        remote = "Connected remotely within " + duration_words(plan.remote_response_minutes, business)
        onsite = "Technician on site within " + duration_words(plan.onsite_arrival_minutes, business)
        after_hours = "Yes: emergencies page the on-call technician" if plan.after_hours_emergencies else "No: after-hours calls are seen the next business day"
    price = "No monthly fee" if plan.monthly_price == 0 else f"{dollars(plan.monthly_price, plan.currency)} a month"
    hourly = "Labour included" if plan.hourly_rate == 0 else f"{dollars(plan.hourly_rate, plan.currency)} an hour"
    term = "No minimum term" if plan.minimum_term_months == 0 else f"{plan.minimum_term_months}-month minimum term"
    fee = Decimal(plan.onboarding_fee or 0)
    onboarding = "None" if fee == 0 else f"{dollars(fee, plan.currency)} once, with the first payment"
    return PlanPromise(coverage, remote, onsite, after_hours, price, hourly, term, onboarding)


SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def currency_prefix(currency: Optional[str]) -> str:
    """What goes before an amount in the currency Stripe charges: $, € or £, else the code ("CHF ")."""
    code = (currency or "usd").lower()
    return SYMBOLS.get(code) or f"{code.upper()} "


def dollars(amount: Decimal, currency: Optional[str] = "usd") -> str:
    """$1,290 for whole amounts, $10.99 otherwise: a price is never rounded to another figure. In the
    plan's currency (a plan billed in euros reads €490, as Stripe charges it)."""
    amount = Decimal(amount)
    prefix = currency_prefix(currency)
    return f"{prefix}{amount:,.0f}" if amount == amount.to_integral_value() else f"{prefix}{amount:,.2f}"


def plan_terms(plan: Plan) -> PlanTerms:
    return PlanTerms(
        slug=plan.slug,
        name=plan.name,
        monthly_price=Decimal(plan.monthly_price),
        arrival_minutes=plan.onsite_arrival_minutes,
        hourly_rate=Decimal(plan.hourly_rate),
        best_effort=not plan.is_contract,
        onboarding_fee=Decimal(plan.onboarding_fee or 0),
    )
