"""Contracts: which plan an organisation is on, and the pay-by-invoice path."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Optional
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import Contract, ContractStatus, Plan, User
from .plans import dollars


class ContractError(Exception):
    """A refusal to show the client as it is."""


def current_contract(organisation_id: int) -> Optional[Contract]:
    """The contract in force: active or past due (still served while payment is retried)."""
    return db.session.scalars(
        select(Contract)
        .where(
            Contract.organisation_id == organisation_id,
            Contract.status.in_([ContractStatus.ACTIVE, ContractStatus.PAST_DUE]),
        )
        .order_by(Contract.id.desc())
    ).first()


def suspended_contract(organisation_id: int) -> Optional[Contract]:
    """A card contract Stripe stopped collecting (or paused), while no other is in force: the client
    is served as break/fix, and the pages say why and how to pay."""
    if current_contract(organisation_id) is not None:
        return None
    return db.session.scalars(
        select(Contract).where(Contract.organisation_id == organisation_id,
                               Contract.status == ContractStatus.SUSPENDED).order_by(Contract.id.desc())
    ).first()


def suspended_refusal(organisation_id: int) -> Optional["ChangeRefusal"]:
    """A suspended card contract is still a Stripe subscription holding an open invoice: another plan
    bought beside it (by card or by invoice) would replace it here while Stripe kept billing it, and
    paying that invoice later would bring it back over the new one. The way out is to pay (or resume) it."""
    suspended = suspended_contract(organisation_id)
    if suspended is None:
        return None
    return ChangeRefusal(
        f"Your {suspended.plan.name} contract is suspended: Stripe could not collect its payment.",
        "Pay the open invoice in the Stripe billing portal (billing page): the contract resumes as soon as "
        "Stripe confirms it, and you can change plan from there.", admins_only=True)


@dataclass(frozen=True)
class ChangeRefusal:
    """Why a plan cannot be asked for now, in the client's words, and what they can do instead.

    The request handlers raise it (as text) and the plan pages show it in place of the button, so
    a page never offers what the click would be refused.
    """

    reason: str
    remedy: str = ""
    withdrawable: Optional[Contract] = None  # the request in the way, which the client may take back
    # The remedy is a client admin's to carry out (the billing page, withdrawing a request): a member
    # is told which admin to ask instead of being sent to a page that refuses them.
    admins_only: bool = False

    def __str__(self) -> str:
        return f"{self.reason} {self.remedy}".strip()


def firm_date(at: datetime) -> str:
    """A day as the client reads it ("14 Mar 2027"), in the firm's zone like every date on the pages."""
    local = at.astimezone(ZoneInfo(current_app.config["FIRM_TIMEZONE"]))
    return f"{local.day} {local:%b %Y}"


def onboarding_fee_due(organisation_id: int, plan: Plan) -> Decimal:
    """The one-time onboarding fee this organisation would pay to take `plan` now: the plan's fee when it
    starts a contract with us, nothing while one is in force (it was onboarded then; a card switch,
    which Stripe prorates, never charged it, so a checkout from an invoiced contract must not either).
    The pages that show the fee and the Checkout that charges it both ask here."""
    if not plan.is_contract or not plan.onboarding_fee or current_contract(organisation_id) is not None:
        return Decimal("0")
    return Decimal(plan.onboarding_fee)


def agree_price(contract: Contract, plan: Plan) -> None:
    """Record on the contract the price the client is shown for `plan` now: its monthly price and
    currency, and the onboarding fee if this starts a contract. The owner may reprice the plan or take
    it off sale before the request is confirmed (or Stripe's webhook arrives); the contract stays at this."""
    contract.monthly_price = Decimal(plan.monthly_price)
    contract.currency = plan.currency
    contract.onboarding_fee = onboarding_fee_due(contract.organisation_id, plan)


def agreed_price_words(contract: Contract) -> str:
    """"$1,290 a month, $500 onboarding once": the price the client agreed, as the pages say it."""
    words = f"{dollars(contract.monthly_price, contract.currency)} a month"
    if contract.onboarding_fee:
        words += f", {dollars(contract.onboarding_fee, contract.currency)} onboarding once"
    return words


def plan_change_since_request(contract: Contract) -> Optional[str]:
    """What changed about the requested plan since the client asked for it, for the owner confirming
    it: repriced (monthly or onboarding) or taken off sale. None when the plan still sells at the price asked."""
    plan = contract.plan
    if not plan.is_contract:
        return f"{plan.name} is no longer a contract plan (it was made break/fix after the request)."
    asked = agreed_price_words(contract)
    if not plan.active:
        return (f"{plan.name} was taken off sale after {contract.organisation.name} asked for it on "
                f"{firm_date(contract.created_at)} at {asked}.")
    now_fee = Decimal(plan.onboarding_fee or 0) if contract.onboarding_fee else Decimal("0")
    if (Decimal(plan.monthly_price), plan.currency, now_fee) == (Decimal(contract.monthly_price), contract.currency,
                                                                 Decimal(contract.onboarding_fee)):
        return None
    listed = f"{dollars(plan.monthly_price, plan.currency)} a month"
    if contract.onboarding_fee:
        listed += f", {dollars(now_fee, plan.currency)} onboarding once"
    return (f"{plan.name} now lists at {listed}; {contract.organisation.name} asked for it on "
            f"{firm_date(contract.created_at)} at {asked}, and the contract is confirmed at that price.")


def pending_contract(organisation_id: int) -> Optional[Contract]:
    return db.session.scalars(
        select(Contract)
        .where(Contract.organisation_id == organisation_id, Contract.status == ContractStatus.PENDING)
        .order_by(Contract.id.desc())
    ).first()


def minimum_term_refusal(current: Optional[Contract], plan: Plan, now: datetime, whose: str = "Your") -> Optional[str]:
    """Why `plan` cannot replace `current` yet, or None. A cheaper plan waits for the end of the
    current contract's minimum term, on the invoice path as on the card path (billing.change_plan)."""
    if current is None or current.minimum_term_ends_at is None or now >= current.minimum_term_ends_at:
        return None
    if plan.monthly_price >= current.plan.monthly_price:
        return None
    return (f"{whose} {current.plan.name} contract has a {current.plan.minimum_term_months}-month minimum term that "
            f"runs until {firm_date(current.minimum_term_ends_at)}; it cannot move to a cheaper plan before then.")


UPGRADES_ANY_TIME = "Upgrades are possible at any time."


def pending_refusal(organisation_id: int) -> Optional[ChangeRefusal]:
    """One plan request at a time: the one waiting, named with the day it was sent, and how to take it back."""
    pending = pending_contract(organisation_id)
    if pending is None:
        return None
    reason = f"You already have a plan request waiting for confirmation: {pending.plan.name}, sent {firm_date(pending.created_at)}."
    if can_withdraw(pending):
        return ChangeRefusal(reason, "One request at a time: withdraw the pending one first to ask for another plan.",
                             withdrawable=pending, admins_only=True)
    return ChangeRefusal(reason, "It becomes active as soon as Stripe confirms the payment.")


def can_withdraw(pending: Contract) -> bool:
    """Nothing was paid for it: an invoiced request not yet confirmed, or a card checkout left unpaid
    (billing.withdraw_invoice_request and billing.abandon_checkout)."""
    if pending.status != ContractStatus.PENDING:
        return False
    return pending.payment_method == "invoice" or (pending.payment_method == "card" and not pending.stripe_subscription_id)


def withdrawable(pending: Optional[Contract]) -> Optional[Contract]:
    """The pending request when it can still be taken back, for the pages that offer the button."""
    return pending if pending is not None and can_withdraw(pending) else None


def invoice_request_refusal(organisation_id: int, plan: Plan, now: datetime) -> Optional[ChangeRefusal]:
    """Why `plan` cannot be requested by invoice now, or None: what request_by_invoice refuses and
    the plan pages show instead of the button."""
    current = current_contract(organisation_id)
    if not plan.is_contract:
        if current is not None:
            return ChangeRefusal(f"You are on {current.plan.name}: break/fix is what remains once that contract ends.",
                                 "To end it, cancel at the end of the paid period on your billing page."
                                 if current.stripe_subscription_id else "To end an invoiced contract, contact us.",
                                 admins_only=bool(current.stripe_subscription_id))
        return ChangeRefusal("Break/fix needs no contract: just report a problem when you have one.")
    if current is not None and current.plan_id == plan.id:
        return ChangeRefusal(f"You are already on {plan.name}.")
    if current is not None and current.stripe_subscription_id:
        return ChangeRefusal("You pay by card: change your plan on the billing page (Stripe prorates the difference).")
    suspended = suspended_refusal(organisation_id)
    if suspended is not None:
        return suspended
    term = minimum_term_refusal(current, plan, now)
    if term:
        return ChangeRefusal(term, UPGRADES_ANY_TIME)
    return pending_refusal(organisation_id)


def request_by_invoice(organisation_id: int, plan: Plan, requested_by: User, now: datetime) -> Contract:
    """A pending contract that an owner activates by hand; no payment is claimed. It records the price
    the client saw (`agree_price`): the contract starts at it however the plan is priced at confirmation.

    The same request again (a double click, or Back and send) is the one already waiting, not a
    refusal: the first click recorded it, and the client should read that it did.
    """
    pending = pending_contract(organisation_id)
    if pending is not None and pending.payment_method == "invoice" and pending.plan_id == plan.id:
        return pending
    refusal = invoice_request_refusal(organisation_id, plan, now)
    if refusal is not None:
        raise ContractError(str(refusal))
    contract = Contract(
        organisation_id=organisation_id,
        plan_id=plan.id,
        status=ContractStatus.PENDING,
        payment_method="invoice",
        created_at=now,
    )
    agree_price(contract, plan)
    db.session.add(contract)
    db.session.commit()
    return contract
