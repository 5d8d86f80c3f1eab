"""What each page that offers a plan change may offer an organisation now, and if nothing, why.

Why a module of its own: the answer combines the card path (services/billing.py) and the invoice
path (services/contracts.py), and must come from the very functions their request handlers refuse
with, so a page never offers a click that is bound to be refused and never hides one that would work.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Optional

from ..models import Organisation, Plan
from . import billing, contracts


@dataclass(frozen=True)
class PlanOffer:
    """The ways open to ask for `plan` now; `refusal` says why none is, and what the client can do."""

    plan: Plan
    card_change: bool = False  # move the running card subscription (billing.change_plan)
    card_checkout: bool = False  # subscribe by card through Stripe Checkout (billing.start_checkout)
    invoice: bool = False  # ask for it by invoice (contracts.request_by_invoice)
    refusal: Optional[contracts.ChangeRefusal] = None
    onboarding_fee: Decimal = Decimal("0")  # what taking it now adds once (contracts.onboarding_fee_due)

    @property
    def possible(self) -> bool:
        return self.refusal is None


def offer(organisation: Organisation, plan: Plan, now: datetime) -> PlanOffer:
    """A card subscriber changes plan on the billing page only; anyone else may check out by card
    or ask by invoice, and when both are refused the invoice path's reason is the one shown (the
    card path's own reasons, such as a plan not yet payable by card, do not stop the invoice)."""
    current = contracts.current_contract(organisation.id)
    fee = contracts.onboarding_fee_due(organisation.id, plan)
    if current is not None and current.stripe_subscription_id:
        refusal = billing.change_refusal(organisation, plan, now)
        return PlanOffer(plan, card_change=refusal is None, refusal=refusal, onboarding_fee=fee)
    by_card = billing.checkout_refusal(organisation, plan, now)
    by_invoice = contracts.invoice_request_refusal(organisation.id, plan, now)
    return PlanOffer(plan, card_checkout=by_card is None, invoice=by_invoice is None,
                     refusal=by_invoice if by_card is not None else None, onboarding_fee=fee)


def offers(organisation: Organisation, plans: Iterable[Plan], now: datetime) -> dict[int, PlanOffer]:
    """One offer per plan, by plan id, for the comparison table and the billing page."""
    return {plan.id: offer(organisation, plan, now) for plan in plans}
