"""Contracts: which plan an organisation is on, and the pay-by-invoice path."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import select

from ..extensions import db
from ..models import Contract, ContractStatus, Plan, User


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
            f"runs until {current.minimum_term_ends_at:%d %B %Y}; it cannot move to a cheaper plan before then.")


def request_by_invoice(organisation_id: int, plan: Plan, requested_by: User, now: datetime) -> Contract:
    """A pending contract that an owner activates by hand; no payment is claimed."""
    if not plan.is_contract:
        raise ContractError("Break/fix needs no contract: just report a problem when you have one.")
    current = current_contract(organisation_id)
    if current is not None and current.plan_id == plan.id:
        raise ContractError(f"You are already on {plan.name}.")
    if current is not None and current.stripe_subscription_id:
        raise ContractError("You pay by card: change your plan on the billing page (Stripe prorates the difference).")
    refusal = minimum_term_refusal(current, plan, now)
    if refusal:
        raise ContractError(refusal)
    if pending_contract(organisation_id) is not None:
        raise ContractError("You already have a plan request waiting for confirmation.")
    contract = Contract(
        organisation_id=organisation_id,
        plan_id=plan.id,
        status=ContractStatus.PENDING,
        payment_method="invoice",
        created_at=now,
    )
    db.session.add(contract)
    db.session.commit()
    return contract
