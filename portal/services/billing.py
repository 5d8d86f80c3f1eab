"""Card payments through Stripe: the plan catalogue, Checkout, plan changes and the webhook.

Why the shape: Stripe is the only one who knows whether money moved, so a contract becomes active
only when a verified webhook event (or Stripe's own answer to a change we asked for) says so, never
because a browser came back to a success page. Events arrive late, twice or out of order; every
contract therefore remembers the `created` stamp of the last event applied to it, and an older event
never overwrites a newer state. Without Stripe keys none of this runs and plans are requested by
invoice (services/contracts.py), activated by an owner by hand.
"""
from __future__ import annotations

import calendar
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

import stripe
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Contract, ContractStatus, Organisation, Plan, StripeEvent, Ticket, TicketEvent, TicketStatus, User
from . import contracts
from .text import whole_number

log = logging.getLogger("portal.billing")

# How Stripe's subscription statuses read as the firm's contract statuses. Past due is still served
# while Stripe retries; once it stops trying (unpaid) or the subscription is paused, the contract is
# suspended: the client is served as break/fix until the open invoice is paid.
SUBSCRIPTION_STATUS = {
    "incomplete": ContractStatus.PENDING,
    "trialing": ContractStatus.ACTIVE,
    "active": ContractStatus.ACTIVE,
    "past_due": ContractStatus.PAST_DUE,
    "unpaid": ContractStatus.SUSPENDED,
    "paused": ContractStatus.SUSPENDED,
    "canceled": ContractStatus.CANCELED,
    "incomplete_expired": ContractStatus.CANCELED,
}
# When two events carry the same second, the one further along wins (a first payment and the
# subscription's creation often share a timestamp).
_RANK = {ContractStatus.PENDING: 0, ContractStatus.ACTIVE: 1, ContractStatus.PAST_DUE: 2, ContractStatus.SUSPENDED: 3,
         ContractStatus.CANCELED: 4}

HANDLED_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
    }
)


class BillingError(Exception):
    """A refusal or a Stripe failure, in words the client can act on; nothing was changed."""


class WebhookRejected(Exception):
    """The request is not a genuine, fresh Stripe event: answer 400 and change nothing."""


# --- configuration ---------------------------------------------------------------------------


def stripe_enabled() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def stripe_client() -> stripe.StripeClient:
    """The official client with the configured key, API base (a local server in tests) and retries."""
    key = current_app.config.get("STRIPE_SECRET_KEY")
    if not key:
        raise BillingError("Card payments are not set up on this portal; request the plan to be invoiced instead.")
    base = current_app.config.get("STRIPE_API_BASE") or ""
    return stripe.StripeClient(
        key,
        base_addresses={"api": base} if base else None,
        max_network_retries=int(current_app.config.get("STRIPE_MAX_NETWORK_RETRIES", 2)),
    )


def stripe_error_message(error: stripe.StripeError) -> str:
    """What the client reads when Stripe refuses or cannot be reached."""
    if isinstance(error, stripe.CardError):
        return f"Your card was declined: {error.user_message or 'the bank refused the payment'}. Nothing was changed."
    if isinstance(error, stripe.APIConnectionError):
        return "We could not reach Stripe, our payment provider. Nothing was changed; please try again in a few minutes."
    if isinstance(error, stripe.RateLimitError):
        return "Stripe is busy right now. Nothing was changed; please try again in a minute."
    if isinstance(error, stripe.AuthenticationError):
        return "Card payments are misconfigured on our side. Nothing was changed; please contact us or pay by invoice."
    return "Stripe could not complete the request. Nothing was changed; please try again or contact us."


def _cents(amount: Decimal) -> int:
    return int((Decimal(amount) * 100).to_integral_value())


def add_months(moment: datetime, months: int) -> datetime:
    """Same day-of-month `months` later (clamped to the month's last day): a minimum term's end."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _ts(value: Any) -> Optional[datetime]:
    return datetime.fromtimestamp(int(value), tz=timezone.utc) if value else None


def paid_plans() -> list[Plan]:
    return list(
        db.session.scalars(
            select(Plan)
            .where(Plan.active.is_(True), Plan.is_contract.is_(True), Plan.monthly_price > 0)
            .order_by(Plan.display_order, Plan.id)
        )
    )


# --- the plan catalogue --------------------------------------------------------------------------


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def product_id_for(slug: str) -> str:
    """A product id we choose ourselves, so the product is found again without a lookup table."""
    return f"portal-plan-{slug}"


@dataclass(frozen=True)
class StripePrice:
    product_id: str
    price_id: str
    created: tuple[str, ...]  # what had to be made, for the sync report
    renamed: bool  # the product's name or active flag had to be brought up to date


def stripe_price(client: stripe.StripeClient, slug: str, name: str, summary: str, monthly_price: Decimal,
                 currency: str) -> StripePrice:
    """The product and the active monthly price Stripe holds for a plan so described, made or brought
    up to date where they differ; asked again, it creates nothing. Reads and writes no database row.

    Prices are found again by lookup_key = plan slug. A changed amount gets a new price that takes
    the lookup key over (Stripe prices are immutable), so running subscriptions keep their price.
    """
    product_id, created, renamed = product_id_for(slug), [], False
    try:
        product = client.v1.products.retrieve(product_id)
        if product.name != name or not product.active:
            client.v1.products.update(product_id, {"name": name, "active": True})
            renamed = True
    except stripe.InvalidRequestError as error:
        if error.http_status != 404:
            raise
        client.v1.products.create(
            {"id": product_id, "name": name, "description": summary or name, "metadata": {"plan_slug": slug}},
            {"idempotency_key": f"product-{slug}"},
        )
        created.append(f"product {product_id}")
    amount = _cents(monthly_price)
    found = client.v1.prices.list({"lookup_keys": [slug], "active": True, "limit": 1}).data
    price = found[0] if found else None
    if price is None or price.unit_amount != amount or price.currency != currency or price.product != product_id:
        price = client.v1.prices.create(
            {
                "product": product_id,
                "unit_amount": amount,
                "currency": currency,
                "recurring": {"interval": "month"},
                "lookup_key": slug,
                "transfer_lookup_key": True,
                "metadata": {"plan_slug": slug},
            },
            # the replaced price is part of the key: going back to an earlier amount makes a new price
            {"idempotency_key": f"price-{slug}-{amount}-{currency}-{price.id if price else 'first'}"},
        )
        created.append(f"price {price.id} ({slug}, {amount} {currency}/month)")
    return StripePrice(product_id, price.id, tuple(created), renamed)


def sync_plans() -> SyncReport:
    """Create or update one product and one monthly price per paid plan; re-running creates nothing."""
    client = stripe_client()
    report = SyncReport()
    for plan in paid_plans():
        found = stripe_price(client, plan.slug, plan.name, plan.summary, plan.monthly_price, plan.currency)
        report.created.extend(found.created)
        changed = found.renamed
        if plan.stripe_product_id != found.product_id or plan.stripe_price_id != found.price_id:
            plan.stripe_product_id, plan.stripe_price_id = found.product_id, found.price_id
            changed = True
        (report.updated if changed else report.unchanged).append(plan.slug)
    db.session.commit()
    log.info("stripe sync-plans: created %s; updated %s", report.created, report.updated)
    return report


# --- customers and Checkout ------------------------------------------------------------------------


def ensure_customer(client: stripe.StripeClient, organisation: Organisation) -> str:
    """The organisation's Stripe customer, created once and reused for every payment."""
    if organisation.stripe_customer_id:
        return organisation.stripe_customer_id
    stamp = int(organisation.created_at.timestamp()) if organisation.created_at else 0
    customer = client.v1.customers.create(
        {"name": organisation.name, "metadata": {"organisation_id": str(organisation.id)}},
        {"idempotency_key": f"customer-org-{organisation.id}-{stamp}"},
    )
    organisation.stripe_customer_id = customer.id
    db.session.commit()
    log.info("stripe customer %s created for organisation %s", customer.id, organisation.id)
    return customer.id


def checkout_refusal(organisation: Organisation, plan: Plan, now: datetime) -> Optional[contracts.ChangeRefusal]:
    """Why the plan cannot be bought by card now, or None: what start_checkout refuses and the plan
    pages show instead of the card button. A card checkout left unpaid does not stand in the way
    (a new one replaces it); a cheaper plan waits for the minimum term, as on every other path."""
    if not plan.is_contract or plan.monthly_price <= 0:
        return contracts.ChangeRefusal("Break/fix needs no contract: just report a problem when you have one.")
    if not stripe_enabled():
        return contracts.ChangeRefusal("Card payments are not set up on this portal; request the plan to be invoiced instead.")
    if not plan.stripe_price_id:
        return contracts.ChangeRefusal(f"{plan.name} cannot be paid by card yet; request it by invoice instead.")
    current = contracts.current_contract(organisation.id)
    if current is not None and current.plan_id == plan.id:
        return contracts.ChangeRefusal(f"You are already on {plan.name}.")
    if current is not None and current.stripe_subscription_id:
        return contracts.ChangeRefusal("You already pay by card: change your plan from the billing page instead.")
    suspended = contracts.suspended_refusal(organisation.id)
    if suspended is not None:
        return suspended
    term = contracts.minimum_term_refusal(current, plan, now)
    if term:
        return contracts.ChangeRefusal(term, contracts.UPGRADES_ANY_TIME)
    pending = contracts.pending_contract(organisation.id)
    if pending is not None and pending.payment_method != "card":
        return contracts.pending_refusal(organisation.id)
    return None


def start_checkout(
    organisation: Organisation,
    plan: Plan,
    requested_by: User,
    now: datetime,
    success_url: str,
    cancel_url: str,
    ticket_id: Optional[int] = None,
) -> str:
    """A Checkout Session (subscription mode) for the plan; returns Stripe's page to send the client to.

    A pending card contract is written with it; only the webhook makes it active. The onboarding fee,
    if the firm set one and the organisation is starting a contract, is a one-time line on the first invoice.
    """
    refusal = checkout_refusal(organisation, plan, now)
    if refusal is not None:
        raise BillingError(str(refusal))
    pending = contracts.pending_contract(organisation.id)
    client = stripe_client()
    try:
        customer_id = ensure_customer(client, organisation)
    except stripe.StripeError as error:
        db.session.rollback()
        log.warning("stripe customer creation failed for organisation %s: %s", organisation.id, error)
        raise BillingError(stripe_error_message(error)) from error
    if pending is None or pending.stripe_subscription_id:
        # (a request whose first payment failed keeps its own incomplete subscription; Stripe expires it)
        pending = Contract(organisation_id=organisation.id, plan_id=plan.id, status=ContractStatus.PENDING,
                           payment_method="card", created_at=now)
        db.session.add(pending)
    else:
        pending.plan_id = plan.id  # an abandoned Checkout for another plan is replaced
    # What this Checkout charges: the plan's Stripe price (saved only once Stripe holds that amount,
    # staff._price_in_stripe) and the onboarding line below. A later repricing is a new Stripe price
    # this subscription never sees, so the contract keeps these.
    contracts.agree_price(pending, plan)
    db.session.flush()
    metadata = {"organisation_id": str(organisation.id), "contract_id": str(pending.id), "plan_slug": plan.slug}
    if ticket_id is not None:
        metadata["ticket_id"] = str(ticket_id)
    line_items: list[dict[str, Any]] = [{"price": plan.stripe_price_id, "quantity": 1}]
    onboarding_fee = pending.onboarding_fee
    if onboarding_fee > 0:
        line_items.append(
            {
                "price_data": {
                    "currency": plan.currency,
                    "unit_amount": _cents(onboarding_fee),
                    "product_data": {"name": f"{plan.name} onboarding (one-time)"},
                },
                "quantity": 1,
            }
        )
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": str(organisation.id),
        "line_items": line_items,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    try:
        session = client.v1.checkout.sessions.create(
            params, {"idempotency_key": f"checkout-{customer_id}-{pending.id}-{plan.slug}-{ticket_id or 0}"}
        )
    except stripe.StripeError as error:
        db.session.rollback()
        log.warning("stripe checkout failed for organisation %s plan %s: %s", organisation.id, plan.slug, error)
        raise BillingError(stripe_error_message(error)) from error
    pending.stripe_checkout_session_id = session.id
    db.session.commit()
    log.info("checkout session %s for organisation %s plan %s (contract %s, by user %s)",
             session.id, organisation.id, plan.slug, pending.id, requested_by.id)
    return session.url


def abandon_checkout(organisation: Organisation, now: datetime) -> Optional[Contract]:
    """The client left Stripe's page without paying: the pending card request is withdrawn.

    If Stripe still confirms a payment for it later (another tab), the webhook revives it.
    """
    pending = contracts.pending_contract(organisation.id)
    if pending is None or pending.payment_method != "card" or pending.stripe_subscription_id:
        return None
    pending.status = ContractStatus.CANCELED
    pending.stripe_status = "checkout_abandoned"
    pending.ends_at = now
    db.session.commit()
    log.info("checkout abandoned: card request %s of organisation %s withdrawn", pending.id, organisation.id)
    return pending


def withdraw_invoice_request(organisation: Organisation, now: datetime) -> Optional[Contract]:
    """Take back a plan request waiting for the firm to confirm it by invoice (nothing was charged)."""
    pending = contracts.pending_contract(organisation.id)
    if pending is None or pending.payment_method != "invoice":
        return None
    pending.status = ContractStatus.CANCELED
    pending.ends_at = now
    db.session.commit()
    log.info("invoice request %s of organisation %s withdrawn by the client", pending.id, organisation.id)
    return pending


def billing_portal_url(organisation: Organisation, return_url: str) -> str:
    """A one-off link to Stripe's customer billing portal (cards and invoices)."""
    if not organisation.stripe_customer_id:
        raise BillingError("There is no card account yet: it is created with your first card payment.")
    client = stripe_client()
    try:
        session = client.v1.billing_portal.sessions.create(
            {"customer": organisation.stripe_customer_id, "return_url": return_url},
            {"idempotency_key": f"portal-{organisation.id}-{uuid.uuid4().hex}"},
        )
    except stripe.StripeError as error:
        log.warning("stripe billing portal failed for organisation %s: %s", organisation.id, error)
        raise BillingError(stripe_error_message(error)) from error
    return session.url


# --- changes to a running subscription ------------------------------------------------------------


def _card_contract_refusal(contract: Optional[Contract]) -> Optional[contracts.ChangeRefusal]:
    if contract is None or not contract.stripe_subscription_id:
        return contracts.ChangeRefusal("You have no card-paid contract to change; choose a plan first.")
    if contract.cancel_at_period_end:
        return contracts.ChangeRefusal("Your contract is set to end at the close of this period.",
                                       "Keep it on your billing page first, then change it.", admins_only=True)
    return None


def _minimum_term_message(contract: Contract) -> str:
    ends = contract.minimum_term_ends_at
    return (f"Your {contract.plan.name} contract has a {contract.plan.minimum_term_months}-month minimum term "
            f"that runs until {contracts.firm_date(ends)}; it cannot be cancelled or moved to a cheaper plan before then.")


def change_refusal(organisation: Organisation, new_plan: Plan, now: datetime) -> Optional[contracts.ChangeRefusal]:
    """Why the running card subscription cannot move to `new_plan` now, or None: what change_plan
    refuses and the billing page, plan pages and upgrade panel show instead of the switch."""
    contract = contracts.current_contract(organisation.id)
    refusal = _card_contract_refusal(contract)
    if refusal is not None:
        return refusal
    if new_plan.id == contract.plan_id:
        return contracts.ChangeRefusal(f"You are already on {new_plan.name}.")
    if not new_plan.is_contract:
        # going back to break/fix is ending the contract, which the billing page's cancel does (or says why not)
        blocked = cancel_refusal(organisation, now)
        return contracts.ChangeRefusal(
            f"You are on {contract.plan.name}: break/fix is what remains once that contract ends.",
            blocked.reason if blocked else "To end it, cancel at the end of the paid period on your billing page.",
            admins_only=blocked is None)
    if not new_plan.is_contract or not new_plan.stripe_price_id or new_plan.monthly_price <= 0:
        return contracts.ChangeRefusal(f"{new_plan.name} cannot be paid by card; choose another plan.")
    downgrade = new_plan.monthly_price < contract.plan.monthly_price
    if downgrade and contract.minimum_term_ends_at and now < contract.minimum_term_ends_at:
        return contracts.ChangeRefusal(_minimum_term_message(contract), contracts.UPGRADES_ANY_TIME)
    return None


def cancel_refusal(organisation: Organisation, now: datetime) -> Optional[contracts.ChangeRefusal]:
    """Why the card contract cannot be set to end now, or None: what cancel_at_period_end refuses and
    the billing page shows instead of the button. The paid period must reach the end of the minimum term."""
    contract = contracts.current_contract(organisation.id)
    refusal = _card_contract_refusal(contract)
    if refusal is not None:
        return refusal
    term_end = contract.minimum_term_ends_at
    if term_end is not None and (contract.current_period_end or now) < term_end:
        return contracts.ChangeRefusal(_minimum_term_message(contract))
    return None


def change_plan(organisation: Organisation, new_plan: Plan, actor: User, now: datetime) -> Contract:
    """Move the running subscription to another plan; Stripe prorates the difference.

    Upgrades are always allowed; a cheaper plan waits for the end of the minimum term.
    """
    refusal = change_refusal(organisation, new_plan, now)
    if refusal is not None:
        raise BillingError(str(refusal))
    contract = contracts.current_contract(organisation.id)  # a card contract: the refusal checked it
    client = stripe_client()
    try:
        subscription = client.v1.subscriptions.retrieve(contract.stripe_subscription_id)
        item_id = subscription.items.data[0].id
        # A subscription item update: Stripe's default proration_behavior (create_prorations)
        # credits the unused time of the old plan and charges the new one on the next invoice.
        # `plan` takes the price id (Stripe accepts price ids as plan ids on subscription items).
        subscription = client.v1.subscriptions.update(
            contract.stripe_subscription_id,
            {"items": [{"id": item_id, "plan": new_plan.stripe_price_id}],
             "metadata": {"organisation_id": str(organisation.id), "contract_id": str(contract.id),
                          "plan_slug": new_plan.slug}},
            {"idempotency_key": f"change-{contract.id}-{new_plan.slug}-{int(now.timestamp())}"},
        )
    except stripe.StripeError as error:
        db.session.rollback()
        log.warning("stripe plan change failed for contract %s: %s", contract.id, error)
        raise BillingError(stripe_error_message(error)) from error
    change = _apply_subscription(contract, _plain(subscription), stamp=int(now.timestamp()), now=now)
    if new_plan.minimum_term_months and contract.starts_at:
        new_end = add_months(now, new_plan.minimum_term_months)
        if contract.minimum_term_ends_at is None or new_end > contract.minimum_term_ends_at:
            contract.minimum_term_ends_at = new_end
    db.session.commit()
    log.info("contract %s moved to %s by user %s", contract.id, new_plan.slug, actor.id)
    _after_change(contract, change or ("plan changed to " + new_plan.name), now)
    return contract


def _ask_cancel_at_period_end(contract: Contract, ending: bool, now: datetime) -> Any:
    """Set the subscription to end with its paid period (or not) in Stripe, then on the contract."""
    what = "cancel" if ending else "keep"
    try:
        subscription = stripe_client().v1.subscriptions.update(
            contract.stripe_subscription_id,
            {"cancel_at_period_end": ending},
            {"idempotency_key": f"{what}-{contract.id}-{int(now.timestamp())}"},
        )
    except stripe.StripeError as error:
        db.session.rollback()
        log.warning("stripe %s failed for contract %s: %s", what, contract.id, error)
        raise BillingError(stripe_error_message(error)) from error
    contract.cancel_at_period_end = bool(subscription.cancel_at_period_end)
    return subscription


def cancel_at_period_end(organisation: Organisation, actor: User, now: datetime) -> Contract:
    """Ask Stripe to end the subscription when the paid period closes; the minimum term is honoured."""
    refusal = cancel_refusal(organisation, now)
    if refusal is not None:
        raise BillingError(str(refusal))
    contract = contracts.current_contract(organisation.id)  # a card contract: the refusal checked it
    subscription = _ask_cancel_at_period_end(contract, True, now)
    period_end_ts = _period_end(_plain(subscription))
    if period_end_ts:
        contract.current_period_end = _ts(period_end_ts)
    db.session.commit()
    log.info("contract %s set to cancel at period end by user %s", contract.id, actor.id)
    return contract


def keep_refusal(organisation: Organisation, now: datetime) -> Optional[contracts.ChangeRefusal]:
    """Why a contract set to end can no longer be kept, or None: what keep_contract refuses and the
    billing page shows instead of the button. Once the paid period has closed Stripe has ended the
    subscription (its webhook may still be on its way): there is nothing left to keep."""
    contract = contracts.current_contract(organisation.id)
    if contract is None or not contract.cancel_at_period_end or contract.current_period_end is None:
        return None
    if now >= contract.current_period_end:
        return contracts.ChangeRefusal(
            f"Your {contract.plan.name} contract ended when its paid period closed on "
            f"{contracts.firm_date(contract.current_period_end)}: it can no longer be kept.",
            "Choose a plan to start a new contract.")
    return None


def keep_contract(organisation: Organisation, actor: User, now: datetime) -> Contract:
    """Undo a cancellation before the paid period closes: the subscription simply goes on."""
    contract = contracts.current_contract(organisation.id)
    if contract is None or not contract.stripe_subscription_id:
        raise BillingError("You have no card-paid contract set to end.")
    if not contract.cancel_at_period_end:
        return contract  # kept already (a second click): nothing to ask Stripe
    refusal = keep_refusal(organisation, now)
    if refusal is not None:
        raise BillingError(str(refusal))
    _ask_cancel_at_period_end(contract, False, now)
    db.session.commit()
    log.info("contract %s kept (cancellation undone) by user %s", contract.id, actor.id)
    return contract


# --- the pay-by-invoice path ------------------------------------------------------------------------


def pending_invoice_contracts() -> list[Contract]:
    return list(
        db.session.scalars(
            select(Contract)
            .where(Contract.status == ContractStatus.PENDING, Contract.payment_method == "invoice")
            .order_by(Contract.created_at, Contract.id)
        )
    )


def off_sale_refusal(contract: Contract) -> Optional[contracts.ChangeRefusal]:
    """Why an invoiced request cannot be confirmed as it stands because its plan is no longer sold, or None.

    A plan taken off sale after the client asked is the firm's own decision to stop selling it: the
    owner confirming decides, on purpose, whether to honour it (at the price asked) or not, rather than
    a click starting a tier the firm retired. A plan made break/fix promises nothing to confirm.
    """
    plan = contract.plan
    if not plan.is_contract:
        return contracts.ChangeRefusal(
            contracts.plan_change_since_request(contract) or f"{plan.name} is not a contract plan.",
            f"Ask {contract.organisation.name} to withdraw the request and choose a plan on sale.")
    if not plan.active:
        return contracts.ChangeRefusal(
            contracts.plan_change_since_request(contract) or f"{plan.name} is off sale.",
            f"Confirm it anyway at the price they asked ({contracts.agreed_price_words(contract)}), or ask "
            f"{contract.organisation.name} to withdraw the request and choose a plan on sale.")
    return None


def off_sale_honourable(contract: Contract) -> bool:
    """The owner may confirm this request anyway: its plan is off sale but still a contract plan."""
    return off_sale_refusal(contract) is not None and contract.plan.is_contract


@dataclass(frozen=True)
class Activation:
    """An invoiced request confirmed, and what the owner must know about its price."""

    contract: Contract
    # the plan was repriced or taken off sale since the request; the contract keeps the price asked
    price_note: Optional[str] = None


def activate_invoice_contract(contract_id: int, actor: User, now: datetime,
                              honour_off_sale: bool = False) -> Activation:
    """An owner confirms an invoiced plan request by hand (no card involved), at the price the client
    asked at. A plan taken off sale since is confirmed only when the owner says so (`honour_off_sale`)."""
    contract = db.session.get(Contract, contract_id)
    if contract is None or contract.payment_method != "invoice":
        raise BillingError("There is no such invoiced plan request.")
    if contract.status != ContractStatus.PENDING:
        raise BillingError(f"That contract is already {contract.status.replace('_', ' ')}.")
    off_sale = off_sale_refusal(contract)
    if off_sale is not None and not (honour_off_sale and off_sale_honourable(contract)):
        raise BillingError(str(off_sale))
    current = contracts.current_contract(contract.organisation_id) or contracts.suspended_contract(
        contract.organisation_id)
    if current is not None and current.stripe_subscription_id:
        # ending it here would leave Stripe charging the card for a contract we no longer honour
        raise BillingError(
            f"{contract.organisation.name} pays {current.plan.name} by card (Stripe subscription "
            f"{current.stripe_subscription_id}"
            + (", suspended: its open invoice is unpaid): they pay it to resume it, or cancel that subscription "
               "in Stripe first." if current.status == ContractStatus.SUSPENDED else
               "): change the plan on their billing page, or cancel that subscription in Stripe first.")
        )
    refusal = contracts.minimum_term_refusal(current, contract.plan, now, whose=f"{contract.organisation.name}'s")
    if refusal:
        # a request made before the rule (or edited by hand) must not end a contract still in its term
        raise BillingError(refusal)
    note = contracts.plan_change_since_request(contract)
    _activate(contract, now)
    db.session.commit()
    log.info("invoice contract %s (%s at %s %s a month, organisation %s) activated by user %s%s",
             contract.id, contract.plan.slug, contract.monthly_price, contract.currency, contract.organisation_id,
             actor.id, f" ({note})" if note else "")
    _after_change(contract, f"{contract.plan.name} contract activated (pay by invoice)", now)
    return Activation(contract, note)


# --- contract state -------------------------------------------------------------------------------


def _activate(contract: Contract, now: datetime) -> None:
    """Active from now; any other contract in force for the organisation ends (one plan at a time)."""
    contract.status = ContractStatus.ACTIVE
    contract.ends_at = None
    if contract.starts_at is None:
        contract.starts_at = now
        if contract.plan.minimum_term_months:
            contract.minimum_term_ends_at = add_months(now, contract.plan.minimum_term_months)
    for other in db.session.scalars(
        select(Contract).where(
            Contract.organisation_id == contract.organisation_id,
            Contract.id != contract.id,
            Contract.status.in_([ContractStatus.ACTIVE, ContractStatus.PAST_DUE, ContractStatus.SUSPENDED]),
        )
    ):
        other.status = ContractStatus.CANCELED
        other.ends_at = now
        log.info("contract %s ended: replaced by contract %s", other.id, contract.id)


def _set_status(contract: Contract, status: str, now: datetime) -> bool:
    if contract.status == status:
        return False
    before = contract.status
    if status == ContractStatus.ACTIVE:
        _activate(contract, now)
    else:
        contract.status = status
        if status == ContractStatus.CANCELED:
            contract.ends_at = contract.ends_at or now
    _tell_client_admins(contract, before, now)
    return True


_IN_FORCE = (ContractStatus.ACTIVE, ContractStatus.PAST_DUE)


def _tell_client_admins(contract: Contract, before: str, now: datetime) -> None:
    """Email the organisation's client admins when their contract is suspended, in force again after a
    suspension, or ended, in the transaction of the change: only a change of status writes one, so a
    redelivered or late event (which changes nothing) writes none, and a paused subscription that Stripe
    then marks unpaid is one suspension. Suspended and ended say the tickets are now break/fix, which is
    only true while no other contract of the organisation is in force."""
    from . import notifications

    after = contract.status
    if after == ContractStatus.SUSPENDED:
        if contracts.current_contract(contract.organisation_id) is None:
            notifications.contract_suspended(contract, now)
    elif before == ContractStatus.SUSPENDED and after in _IN_FORCE:
        notifications.contract_active_again(contract, now)
    elif after == ContractStatus.CANCELED and before in (*_IN_FORCE, ContractStatus.SUSPENDED):
        # A request that never started (pending, then expired) was no contract to end.
        if contracts.current_contract(contract.organisation_id) is None:
            notifications.contract_ended(contract, now)


def _newer(contract: Contract, stamp: int, status: Optional[str]) -> bool:
    """Whether an event stamped `stamp` may set the contract's state (older events change nothing)."""
    if contract.status == ContractStatus.CANCELED and contract.stripe_status in ("canceled", "incomplete_expired"):
        return False  # a deleted subscription never comes back
    seen = contract.stripe_event_created
    if seen is None or stamp > seen:
        return True
    if stamp == seen and status is not None:
        return _RANK.get(status, 0) >= _RANK.get(contract.status, 0)
    return False


def _plain(obj: Any) -> dict:
    """A Stripe object as plain nested dicts (16.x objects are not dicts)."""
    if isinstance(obj, dict):
        return obj
    return obj.to_dict(for_json=True)


def _period_end(subscription: dict) -> Optional[int]:
    """current_period_end: on the subscription in older API versions, on its items in newer ones."""
    if subscription.get("current_period_end"):
        return subscription["current_period_end"]
    items = (subscription.get("items") or {}).get("data") or []
    return items[0].get("current_period_end") if items else None


def _price_id(subscription: dict) -> Optional[str]:
    items = (subscription.get("items") or {}).get("data") or []
    if not items:
        plan = subscription.get("plan") or {}
        return plan.get("id") if isinstance(plan, dict) else plan
    item = items[0]
    price = item.get("price") or item.get("plan") or {}
    return price.get("id") if isinstance(price, dict) else price


def _charged_price(subscription: dict) -> Optional[tuple[Decimal, str]]:
    """The monthly amount and currency Stripe bills the subscription, when the event carries them: what
    the contract records, since a plan repriced while off sale keeps an older Stripe price
    (staff._price_in_stripe) and a price may be set in Stripe's dashboard."""
    items = (subscription.get("items") or {}).get("data") or []
    if not items:
        return None
    price = items[0].get("price") or items[0].get("plan") or {}
    if not isinstance(price, dict):
        return None
    cents = price.get("unit_amount", price.get("amount"))
    currency = price.get("currency")
    if not isinstance(cents, int) or isinstance(cents, bool) or not isinstance(currency, str) or len(currency) != 3:
        return None
    return Decimal(cents) / 100, currency.lower()


def _plan_for_price(price_id: Optional[str]) -> Optional[Plan]:
    if not price_id:
        return None
    return db.session.scalars(select(Plan).where(Plan.stripe_price_id == price_id)).first()


def _organisation_for_customer(customer_id: Optional[str]) -> Optional[Organisation]:
    if not customer_id:
        return None
    return db.session.scalars(select(Organisation).where(Organisation.stripe_customer_id == customer_id)).first()


def _contract_for(subscription_id: Optional[str], metadata: dict, customer_id: Optional[str],
                  price_id: Optional[str], now: datetime, create: bool) -> Optional[Contract]:
    """The contract an event is about: by subscription, then our metadata, then the customer's
    pending card request; a subscription made elsewhere (Stripe dashboard) gets a new contract."""
    if subscription_id:
        found = db.session.scalars(
            select(Contract).where(Contract.stripe_subscription_id == subscription_id).with_for_update()
        ).first()
        if found is not None:
            return found
    organisation = _organisation_for_customer(customer_id)
    contract_id = whole_number((metadata or {}).get("contract_id"))
    if contract_id is not None:
        found = db.session.get(Contract, contract_id, with_for_update=True)
        if found is not None and (organisation is None or found.organisation_id == organisation.id) \
                and found.stripe_subscription_id in (None, subscription_id):
            return found
    if organisation is None:
        return None
    pending = db.session.scalars(
        select(Contract).where(
            Contract.organisation_id == organisation.id,
            Contract.status == ContractStatus.PENDING,
            Contract.payment_method == "card",
            Contract.stripe_subscription_id.is_(None),
        ).order_by(Contract.id.desc()).with_for_update()
    ).first()
    if pending is not None:
        return pending
    plan = _plan_for_price(price_id)
    if not create or plan is None:
        return None
    contract = Contract(organisation_id=organisation.id, plan_id=plan.id, status=ContractStatus.PENDING,
                        payment_method="card", created_at=now)
    db.session.add(contract)
    db.session.flush()
    return contract


def _apply_subscription(contract: Contract, subscription: dict, stamp: int, now: datetime) -> Optional[str]:
    """Bring the contract to the subscription's state if this state is the newest seen; returns what changed."""
    if subscription.get("id") and not contract.stripe_subscription_id:
        contract.stripe_subscription_id = subscription["id"]
    stripe_status = subscription.get("status") or ""
    status = SUBSCRIPTION_STATUS.get(stripe_status)
    if status is None or not _newer(contract, stamp, status):
        # An older event never rolls the state back, but it may carry the period the contract lacks.
        period_end = _period_end(subscription)
        if contract.current_period_end is None and period_end:
            contract.current_period_end = _ts(period_end)
        return None
    changes: list[str] = []
    plan = _plan_for_price(_price_id(subscription))
    if plan is not None and plan.id != contract.plan_id:
        old = contract.plan.name if contract.plan else "?"
        contract.plan_id = plan.id
        # a switch charges the new plan's price (and no onboarding fee); Stripe's own amount, below, wins
        contract.monthly_price, contract.currency = plan.monthly_price, plan.currency
        db.session.flush()
        db.session.refresh(contract, ["plan"])
        changes.append(f"plan {old} -> {plan.name}")
    charged = _charged_price(subscription)
    if charged is not None:
        contract.monthly_price, contract.currency = charged
    before = contract.status
    if _set_status(contract, status, now):
        changes.append(f"{before} -> {contract.status}")
    contract.stripe_status = stripe_status
    contract.stripe_event_created = stamp
    contract.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    period_end = _period_end(subscription)
    if period_end:
        contract.current_period_end = _ts(period_end)
    return ", ".join(changes) or None


def _invoice_subscription(invoice: dict) -> Optional[str]:
    """The invoice's subscription id: top level in older API versions, under parent in newer ones."""
    sub = invoice.get("subscription")
    if isinstance(sub, dict):
        sub = sub.get("id")
    if sub:
        return sub
    details = ((invoice.get("parent") or {}).get("subscription_details") or {})
    return details.get("subscription")


@dataclass
class WebhookOutcome:
    event_id: str
    event_type: str
    replay: bool = False
    contract_id: Optional[int] = None
    change: Optional[str] = None


def handle_webhook(payload: bytes, signature_header: str, now: datetime) -> WebhookOutcome:
    """Verify, record and apply one Stripe event; a replay of a recorded event changes nothing."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET") or ""
    if not secret:
        raise WebhookRejected("webhooks are not configured (STRIPE_WEBHOOK_SECRET is empty)")
    try:
        stripe.Webhook.construct_event(payload, signature_header or "", secret)
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise WebhookRejected(str(error)) from error
    event = json.loads(payload)
    outcome = WebhookOutcome(event_id=event["id"], event_type=event.get("type", ""))
    if db.session.get(StripeEvent, event["id"]) is not None:
        outcome.replay = True
        return outcome
    try:
        # Recorded first: a second worker holding the same event waits here, then fails the unique key.
        db.session.add(StripeEvent(id=event["id"], type=outcome.event_type, received_at=now, payload=event))
        db.session.flush()
        contract, change = _apply_event(event, now)
        db.session.commit()
    except IntegrityError:  # the same event delivered twice at once: the other worker applied it
        db.session.rollback()
        outcome.replay = True
        return outcome
    outcome.contract_id = contract.id if contract is not None else None
    outcome.change = change
    log.info("stripe event %s %s: contract %s %s", event["id"], outcome.event_type,
             outcome.contract_id, change or "unchanged")
    if contract is not None and change:
        try:
            _after_change(contract, change, now)
        except Exception:  # the contract is saved; Stripe must not retry an event already applied
            db.session.rollback()
            log.exception("contract %s changed (%s) but re-triage failed; the next queue recompute catches up",
                          contract.id, change)
    elif contract is not None and contract.status == ContractStatus.ACTIVE and outcome.event_type in _NAMES_THE_TICKET:
        # Stripe does not order its events: the subscription or its paid invoice may have made the
        # contract active before the event naming the emergency ticket arrived.
        try:
            _note_upgraded_ticket(contract, now)
        except Exception:
            db.session.rollback()
            log.exception("contract %s: the upgraded ticket's note could not be written", contract.id)
    return outcome


def _apply_event(event: dict, now: datetime) -> tuple[Optional[Contract], Optional[str]]:
    kind = event.get("type", "")
    obj = (event.get("data") or {}).get("object") or {}
    stamp = int(event.get("created") or 0)
    if kind == "checkout.session.completed":
        if obj.get("mode") != "subscription":
            return None, None
        reference = str(obj.get("client_reference_id") or "")
        organisation_id = whole_number(reference)
        organisation = db.session.get(Organisation, organisation_id) if organisation_id is not None else None
        if organisation is None:
            log.warning("checkout session %s names no known organisation (%r)", obj.get("id"), reference)
            return None, None
        customer_id = obj.get("customer")
        if organisation.stripe_customer_id is None and customer_id:
            organisation.stripe_customer_id = customer_id
        contract = _contract_for(obj.get("subscription"), obj.get("metadata") or {}, customer_id, None, now, False)
        if contract is None or contract.organisation_id != organisation.id:
            log.warning("checkout session %s: no contract for organisation %s", obj.get("id"), organisation.id)
            return None, None
        contract.stripe_checkout_session_id = obj.get("id")
        if obj.get("subscription") and not contract.stripe_subscription_id:
            contract.stripe_subscription_id = obj["subscription"]
        if obj.get("payment_status") in ("paid", "no_payment_required") and _newer(contract, stamp, ContractStatus.ACTIVE):
            before = contract.status
            changed = _set_status(contract, ContractStatus.ACTIVE, now)
            contract.stripe_status = contract.stripe_status or "active"
            contract.stripe_event_created = stamp
            return contract, (f"{before} -> active" if changed else None)
        return contract, None
    if kind.startswith("customer.subscription."):
        contract = _contract_for(obj.get("id"), obj.get("metadata") or {}, obj.get("customer"),
                                 _price_id(obj), now, create=True)
        if contract is None:
            log.warning("subscription %s belongs to no known organisation", obj.get("id"))
            return None, None
        if kind == "customer.subscription.deleted":
            obj = {**obj, "status": "canceled"}
        return contract, _apply_subscription(contract, obj, stamp, now)
    if kind in ("invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"):
        subscription_id = _invoice_subscription(obj)
        if not subscription_id:
            return None, None  # a one-off invoice: no contract involved
        contract = _contract_for(subscription_id, {}, obj.get("customer"), None, now, create=False)
        if contract is None:
            log.warning("invoice %s: no contract for subscription %s", obj.get("id"), subscription_id)
            return None, None
        if not contract.stripe_subscription_id:
            contract.stripe_subscription_id = subscription_id
        if kind == "invoice.payment_failed":
            # A failed first payment leaves the request pending; a failed renewal makes it past due; a
            # suspended contract stays suspended (only the subscription's own status lifts it).
            if contract.status == ContractStatus.PENDING:
                status, stripe_status = ContractStatus.PENDING, "incomplete"
            elif contract.status == ContractStatus.SUSPENDED:
                status, stripe_status = ContractStatus.SUSPENDED, contract.stripe_status
            else:
                status, stripe_status = ContractStatus.PAST_DUE, "past_due"
        else:
            status, stripe_status = ContractStatus.ACTIVE, "active"
        if not _newer(contract, stamp, status):
            return contract, None
        before = contract.status
        changed = _set_status(contract, status, now)
        contract.stripe_status = stripe_status
        contract.stripe_event_created = stamp
        return contract, (f"{before} -> {status}" if changed else None)
    return None, None


def _why(contract: Contract, change: str) -> str:
    """The contract change in the words the client reads in each ticket's timeline."""
    name = contract.plan.name
    if contract.status == ContractStatus.ACTIVE:
        if change.startswith("plan "):
            return f"Plan changed to {name}"
        return f"{name} contract active ({'payment confirmed by Stripe' if contract.payment_method == 'card' else 'confirmed by the firm'})"
    if contract.status == ContractStatus.PAST_DUE:
        return f"{name} payment failed: contract past due, still served while Stripe retries"
    if contract.status == ContractStatus.SUSPENDED:
        return f"{name} contract suspended: payment not received, served as break/fix until the invoice is paid"
    if contract.status == ContractStatus.CANCELED:
        return f"{name} contract ended"
    return f"{name} contract waiting for payment"


def _after_change(contract: Contract, change: str, now: datetime) -> None:
    """Re-run SLA and triage for the organisation's open tickets; tell the emergency ticket its new place.

    sla.rebase_organisation commits and then runs queue.recompute(now) itself, so it is not run twice.
    """
    from . import sla

    why = _why(contract, change)
    count = sla.rebase_organisation(contract.organisation_id, now, why)
    log.info("organisation %s: %d open tickets re-triaged after contract %s change (%s)",
             contract.organisation_id, count, contract.id, change)
    # Only a plan that now serves the tickets is news for them: a payment recovered after a failure
    # (past due -> active) leaves them under the plan they had, and the client is not told otherwise.
    if contract.status == ContractStatus.ACTIVE and count:
        _serve_waiting_tickets_under(contract, now)
        _note_upgraded_ticket(contract, now)


def _serve_waiting_tickets_under(contract: Contract, now: datetime) -> None:
    """A plan that starts while tickets wait: page the on-call technician for those it makes after-hours
    emergencies (as if opened now: the client upgraded in the middle of one), and tell the client each
    ticket's new place, estimate and guarantee."""
    from . import alerts, notifications, queue, staff, tickets

    waiting = db.session.scalars(
        select(Ticket).where(Ticket.organisation_id == contract.organisation_id,
                             Ticket.status.in_(TicketStatus.WAITING)).order_by(Ticket.id)
    ).all()
    for ticket in waiting:
        paged = ""
        decision = tickets.decide_after_hours(ticket, now)
        if decision.page_on_call:
            on_call = staff.on_call_at(now)
            why = (f"{ticket.organisation.name} upgraded to {contract.plan.name} at {alerts.firm_time(now)}: "
                   "their waiting ticket is now an after-hours emergency.")
            if alerts.page_on_call(ticket, on_call.user.email if on_call else None, now, why,
                                   cover_ends_at=decision.cover_ends_at):
                paged = decision.message  # who was paged: the on-call technician, or the dispatchers
                ticket.events.append(TicketEvent(at=now, kind="after_hours", public=True, message=paged))
        notifications.ticket_upgraded(ticket, queue.entry_for(ticket.id), contract.plan.name, paged, now)
    db.session.commit()


# The events whose object carries the emergency ticket's id in its metadata (start_checkout puts it
# on the session and on the subscription it creates).
_NAMES_THE_TICKET = frozenset({"checkout.session.completed", "customer.subscription.created"})


def _upgrade_ticket_id(contract: Contract) -> Optional[int]:
    """The ticket an emergency upgrade was bought for, from whichever recorded event names it."""
    recorded_events = db.session.scalars(
        select(StripeEvent).where(StripeEvent.type.in_(_NAMES_THE_TICKET)).order_by(StripeEvent.received_at.desc())
    )
    for recorded in recorded_events:
        obj = ((recorded.payload or {}).get("data") or {}).get("object") or {}
        ours = (obj.get("id") == contract.stripe_checkout_session_id if recorded.type == "checkout.session.completed"
                else contract.stripe_subscription_id is not None and obj.get("id") == contract.stripe_subscription_id)
        if ours:
            ticket_id = whole_number((obj.get("metadata") or {}).get("ticket_id"))
            if ticket_id is not None:
                return ticket_id
    return None


def _note_upgraded_ticket(contract: Contract, now: datetime) -> None:
    """The ticket that prompted an emergency upgrade gets its new place in its timeline, once per contract."""
    from . import alerts, queue

    if not contract.stripe_checkout_session_id:
        return
    ticket_id = _upgrade_ticket_id(contract)
    if ticket_id is None:
        return
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.organisation_id != contract.organisation_id or not ticket.is_open:
        return
    noted = db.session.scalars(
        select(TicketEvent.detail).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "upgraded")
    ).all()
    if any((detail or {}).get("contract_id") == contract.id for detail in noted):  # Stripe sent the event again
        return
    entry = queue.entry_for(ticket.id)
    where = ""
    if entry is not None and entry.position:
        where = f" Your ticket is now number {entry.position} in the queue"
        if entry.eta_median is not None:
            where += f", technician expected around {alerts.firm_time(entry.eta_median)}"
        where += "."
    db.session.add(TicketEvent(ticket_id=ticket.id, at=now, kind="upgraded", public=True,
                               message=f"Upgraded to {contract.plan.name}: payment confirmed by Stripe.{where}",
                               detail={"contract_id": contract.id,
                                       "position": entry.position if entry is not None else None}))
    db.session.commit()
