"""Builders for billing tests: an organisation with a pending card contract, and Stripe-shaped events."""
from __future__ import annotations

import itertools
from datetime import datetime, timezone
from decimal import Decimal
from typing import Optional

from portal.extensions import db
from portal.models import Contract, ContractStatus, Organisation, Plan, Ticket
from tests.conftest import make_organisation, make_plan

_ids = itertools.count(1)


def paid_plans() -> tuple[Plan, Plan]:
    essentials = make_plan("essentials", name="Essentials", monthly_price=Decimal("690"), minimum_term_months=0,
                           stripe_price_id="price_essentials", stripe_product_id="portal-plan-essentials",
                           display_order=1)
    priority = make_plan("priority", name="Priority", monthly_price=Decimal("1290"), minimum_term_months=0,
                         onboarding_fee=Decimal("500"), stripe_price_id="price_priority",
                         stripe_product_id="portal-plan-priority", display_order=2)
    return essentials, priority


def card_request(organisation: Organisation, plan: Plan, now: datetime) -> Contract:
    """A pending card contract, as written when Checkout starts."""
    contract = Contract(organisation_id=organisation.id, plan_id=plan.id, status=ContractStatus.PENDING,
                        payment_method="card", created_at=now, stripe_checkout_session_id="cs_test_1")
    db.session.add(contract)
    db.session.commit()
    return contract


def customer_org(name: str = "Bolt", customer_id: str = "cus_bolt") -> Organisation:
    org = make_organisation(name)
    org.stripe_customer_id = customer_id
    db.session.commit()
    return org


def open_ticket(organisation: Organisation, now: datetime, title: str = "Server down") -> Ticket:
    ticket = Ticket(organisation_id=organisation.id, title=title, description="All desks offline",
                    category="server", impact="company", opened_at=now, sla_clock_start=now)
    db.session.add(ticket)
    db.session.commit()
    return ticket


def event(kind: str, obj: dict, created: int, event_id: Optional[str] = None) -> dict:
    return {
        "id": event_id or f"evt_test_{next(_ids)}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": obj},
    }


def subscription(status: str, contract: Contract, price_id: str = "price_priority", sub_id: str = "sub_test_1",
                 customer: str = "cus_bolt", period_end: int = 1798000000, cancel_at_period_end: bool = False) -> dict:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": cancel_at_period_end,
        "metadata": {"organisation_id": str(contract.organisation_id), "contract_id": str(contract.id)},
        "items": {"object": "list", "data": [
            {"id": "si_test_1", "object": "subscription_item", "current_period_end": period_end,
             "price": {"id": price_id, "object": "price"}},
        ]},
    }


def invoice(sub_id: str = "sub_test_1", customer: str = "cus_bolt", status: str = "paid") -> dict:
    return {
        "id": f"in_test_{next(_ids)}",
        "object": "invoice",
        "customer": customer,
        "status": status,
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": sub_id}},
    }


def checkout_session(contract: Contract, payment_status: str = "paid", sub_id: str = "sub_test_1",
                     customer: str = "cus_bolt", ticket_id: Optional[int] = None) -> dict:
    metadata = {"organisation_id": str(contract.organisation_id), "contract_id": str(contract.id)}
    if ticket_id is not None:
        metadata["ticket_id"] = str(ticket_id)
    return {
        "id": contract.stripe_checkout_session_id or "cs_test_1",
        "object": "checkout.session",
        "mode": "subscription",
        "client_reference_id": str(contract.organisation_id),
        "customer": customer,
        "subscription": sub_id,
        "payment_status": payment_status,
        "status": "complete",
        "metadata": metadata,
    }


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)
