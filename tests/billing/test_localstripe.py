"""Customers, subscriptions, upgrades, cancellation and a failing card against localstripe on loopback,
with localstripe's own signed webhook deliveries reaching the portal served on loopback."""
from __future__ import annotations

from datetime import timedelta

import pytest
import stripe
from sqlalchemy import func, select

from portal import clock
from portal.extensions import db
from portal.models import Contract, ContractStatus, Organisation, Plan, StripeEvent, TicketEvent
from portal.services import billing
from tests.conftest import login, make_organisation, make_plan, make_user

from .conftest import SECRET_KEY, register_webhook, stripe_config, wait_for
from .helpers import card_request, open_ticket, paid_plans

# localstripe registers plain (non-async) aiohttp handlers; aiohttp warns on each request.
pytestmark = pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning")


@pytest.fixture
def stripe_side(localstripe, live_portal):
    """The portal on loopback with localstripe delivering its events to /billing/webhook."""
    app, portal_url = live_portal(**stripe_config(localstripe))
    register_webhook(localstripe, portal_url)
    client = stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe}, max_network_retries=0)
    with app.app_context():
        essentials, priority = paid_plans()
        for plan in (essentials, priority):
            # localstripe has no Prices API; a plan with the price's id is what subscriptions accept
            client.v1.plans.create({"id": plan.stripe_price_id, "amount": int(plan.monthly_price * 100),
                                    "currency": "usd", "interval": "month", "product": {"name": plan.name}})
        yield app, client


def subscribe(client: stripe.StripeClient, org: Organisation, contract: Contract, card: str, price_id: str):
    """What Stripe Checkout does once the client pays: card on the customer, then the subscription."""
    customer_id = billing.ensure_customer(client, org)
    method = client.v1.payment_methods.attach(card, {"customer": customer_id})
    client.v1.customers.update(customer_id, {"invoice_settings": {"default_payment_method": method.id}})
    return client.v1.subscriptions.create({
        "customer": customer_id,
        "items": [{"plan": price_id}],
        "metadata": {"organisation_id": str(org.id), "contract_id": str(contract.id)},
    })


def contract_now(contract_id: int) -> Contract:
    db.session.expire_all()
    return db.session.get(Contract, contract_id)


def test_the_customer_is_created_in_stripe_once_and_reused(stripe_side):
    app, client = stripe_side
    org = make_organisation("Bolt")
    first = billing.ensure_customer(client, org)
    second = billing.ensure_customer(client, org)
    assert first == second == db.session.get(Organisation, org.id).stripe_customer_id
    customers = client.v1.customers.list().data
    assert [c.id for c in customers] == [first]
    assert customers[0].metadata["organisation_id"] == str(org.id)


def test_subscription_upgrade_cancel_and_end_through_delivered_webhooks(stripe_side, now):
    app, client = stripe_side
    org = make_organisation("Bolt")
    make_user("admin@bolt.example", organisation=org)
    ticket = open_ticket(org, clock.now())
    essentials = db.session.scalars(select(Plan).where(Plan.slug == "essentials")).one()
    contract = card_request(org, essentials, clock.now())

    subscription = subscribe(client, org, contract, "pm_card_visa", "price_essentials")

    def active_with_period() -> bool:
        # The invoice and the subscription events arrive in either order; both must have landed.
        current = contract_now(contract.id)
        return current.status == ContractStatus.ACTIVE and current.current_period_end is not None

    assert wait_for(active_with_period, what="contract active with its period")
    contract = contract_now(contract.id)
    assert contract.stripe_subscription_id == subscription.id
    assert contract.current_period_end is not None and contract.starts_at is not None
    wait_for(lambda: {"customer.subscription.created", "invoice.payment_succeeded"}
             <= set(db.session.scalars(select(StripeEvent.type))), what="both events delivered")
    assert wait_for(lambda: db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.message.contains("Essentials contract active"))).first(),
        what="ticket timeline event")

    web = app.test_client()
    login(web, "admin@bolt.example")
    page = web.post("/billing/change-plan", data={"plan": "priority"}, follow_redirects=True).get_data(as_text=True)
    assert "Your contract is now Priority" in page
    in_stripe = client.v1.subscriptions.retrieve(subscription.id)
    assert in_stripe.to_dict()["items"]["data"][0]["plan"]["id"] == "price_priority"
    assert contract_now(contract.id).plan.slug == "priority"
    # localstripe credits the unused time of the old plan as a proration item
    credits = [i for i in client.v1.invoice_items.list({"customer": org.stripe_customer_id}).data if i.proration]
    assert credits and credits[0].amount < 0
    assert db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.message.contains("Plan changed to Priority"))).first()

    page = web.post("/billing/cancel", follow_redirects=True).get_data(as_text=True)
    assert "will end on" in page
    assert client.v1.subscriptions.retrieve(subscription.id).cancel_at_period_end is True
    assert contract_now(contract.id).cancel_at_period_end is True
    assert contract_now(contract.id).status == ContractStatus.ACTIVE
    assert "Keep it on your billing page first, then change it." in web.get("/client/plans/essentials").get_data(
        as_text=True)

    # Changing one's mind before the period closes: the subscription goes on, and plans can change again.
    page = web.post("/billing/keep", follow_redirects=True).get_data(as_text=True)
    assert "Your Priority contract goes on: it renews as before." in page and "Keep my contract" not in page
    assert client.v1.subscriptions.retrieve(subscription.id).cancel_at_period_end is False
    assert contract_now(contract.id).cancel_at_period_end is False
    assert "Cancel at the end of the paid period" in page
    page = web.post("/billing/keep", follow_redirects=True).get_data(as_text=True)  # a second click
    assert "goes on" in page and contract_now(contract.id).cancel_at_period_end is False
    web.post("/billing/cancel")
    assert "Keep my contract" in web.get("/billing/").get_data(as_text=True)

    client.v1.subscriptions.cancel(subscription.id)  # what Stripe does when the period closes

    wait_for(lambda: contract_now(contract.id).status == ContractStatus.CANCELED, what="contract canceled")
    assert contract_now(contract.id).ends_at is not None


def test_a_failing_card_leaves_the_request_pending(stripe_side):
    app, client = stripe_side
    org = make_organisation("Bolt")
    priority = db.session.scalars(select(Plan).where(Plan.slug == "priority")).one()
    contract = card_request(org, priority, clock.now())

    subscription = subscribe(client, org, contract, "pm_card_chargeCustomerFail", "price_priority")

    assert subscription.status == "incomplete"
    [unpaid] = client.v1.invoices.list({"customer": org.stripe_customer_id}).data
    assert unpaid.status == "open"
    wait_for(lambda: db.session.scalars(select(StripeEvent).where(
        StripeEvent.type == "customer.subscription.created")).first(), what="subscription.created delivered")
    contract = contract_now(contract.id)
    assert contract.status == ContractStatus.PENDING
    assert contract.stripe_subscription_id == subscription.id and contract.stripe_status == "incomplete"


def test_a_declined_card_is_explained(stripe_side):
    app, client = stripe_side
    org = make_organisation("Bolt")
    customer_id = billing.ensure_customer(client, org)
    with pytest.raises(stripe.CardError) as refused:
        client.v1.payment_methods.attach("pm_card_visa_chargeDeclined", {"customer": customer_id})
    assert billing.stripe_error_message(refused.value).startswith("Your card was declined: Your card was declined.")


def _active_card_contract(client, org, plan_slug: str) -> tuple[Contract, object]:
    plan = db.session.scalars(select(Plan).where(Plan.slug == plan_slug)).one()
    contract = card_request(org, plan, clock.now())
    subscription = subscribe(client, org, contract, "pm_card_visa", plan.stripe_price_id)
    wait_for(lambda: contract_now(contract.id).status == ContractStatus.ACTIVE, what="contract active")
    return contract_now(contract.id), subscription


def test_a_refused_plan_change_leaves_contract_and_subscription_as_they_were(stripe_side):
    app, client = stripe_side
    org = make_organisation("Bolt")
    make_user("admin@bolt.example", organisation=org)
    make_plan("premium", name="Premium 24/7", stripe_price_id="price_not_in_stripe", display_order=3)
    contract, subscription = _active_card_contract(client, org, "essentials")
    web = app.test_client()
    login(web, "admin@bolt.example")

    page = web.post("/billing/change-plan", data={"plan": "premium"}, follow_redirects=True).get_data(as_text=True)

    assert "Nothing was changed" in page
    assert contract_now(contract.id).plan.slug == "essentials"
    in_stripe = client.v1.subscriptions.retrieve(subscription.id)
    assert in_stripe.to_dict()["items"]["data"][0]["plan"]["id"] == "price_essentials"


def test_minimum_term_refuses_downgrade_and_cancel_but_not_upgrade(stripe_side):
    app, client = stripe_side
    org = make_organisation("Bolt")
    make_user("admin@bolt.example", organisation=org)
    contract, subscription = _active_card_contract(client, org, "priority")
    contract.minimum_term_ends_at = clock.now() + timedelta(days=300)
    db.session.commit()
    web = app.test_client()
    login(web, "admin@bolt.example")

    down = web.post("/billing/change-plan", data={"plan": "essentials"}, follow_redirects=True).get_data(as_text=True)
    cancel = web.post("/billing/cancel", follow_redirects=True).get_data(as_text=True)

    for page in (down, cancel):
        assert "minimum term" in page and "cannot be cancelled or moved to a cheaper plan" in page
    contract = contract_now(contract.id)
    assert contract.plan.slug == "priority" and not contract.cancel_at_period_end
    in_stripe = client.v1.subscriptions.retrieve(subscription.id)
    assert in_stripe.cancel_at_period_end is False
    assert in_stripe.to_dict()["items"]["data"][0]["plan"]["id"] == "price_priority"
    assert db.session.scalar(select(func.count()).select_from(Contract)) == 1
