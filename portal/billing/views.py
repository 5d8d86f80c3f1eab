"""Billing pages: views parse and render; services/billing.py decides and talks to Stripe.

Only client admins manage billing; the emergency upgrade panel is shown to every client user of
the ticket's organisation (paying still needs an admin). The webhook is the one route exempt from
CSRF: Stripe signs it instead.
"""
from __future__ import annotations

import click
import stripe
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import clock
from ..auth import roles_required, safe_next
from ..client.presenting import outlook_words
from ..extensions import csrf, db, limiter
from ..models import Contract, Role, Ticket, TicketStatus
from ..services import billing, contracts, plan_offers
from ..services import plans as plan_service

bp = Blueprint("billing", __name__, url_prefix="/billing", cli_group="stripe")

client_only = roles_required(*Role.CLIENT)
client_admin_only = roles_required(Role.CLIENT_ADMIN)
owner_only = roles_required(Role.OWNER)


def _plan_or_404(slug: str):
    plan = plan_service.plan_by_slug(slug)
    if plan is None:
        abort(404)
    return plan


def _checkout_urls() -> tuple[str, str]:
    # Stripe fills {CHECKOUT_SESSION_ID} in itself, so it must not be URL-encoded by url_for.
    success = url_for("billing.success", _external=True) + "?session_id={CHECKOUT_SESSION_ID}"
    return success, url_for("billing.cancelled", _external=True)


@bp.route("/")
@client_admin_only
def overview():
    organisation = current_user.organisation
    contract = contracts.current_contract(organisation.id)
    pending = contracts.pending_contract(organisation.id)
    other_plans = [p for p in billing.paid_plans() if contract is None or p.id != contract.plan_id]
    now = clock.now()
    card = contract is not None and contract.stripe_subscription_id is not None
    return render_template(
        "billing/overview.html",
        organisation=organisation,
        contract=contract,
        suspended=contracts.suspended_contract(organisation.id),
        pending=pending,
        pending_price=contracts.agreed_price_words(pending) if pending else None,
        withdrawable=contracts.withdrawable(pending),
        other_plans=other_plans,
        offers=plan_offers.offers(organisation, other_plans, now),
        cancel_refusal=billing.cancel_refusal(organisation, now) if card else None,
        keep_refusal=billing.keep_refusal(organisation, now) if card else None,
        stripe_enabled=billing.stripe_enabled(),
        now=now,
    )


@bp.route("/checkout/<slug>", methods=["POST"])
@client_admin_only
def checkout(slug: str):
    plan = _plan_or_404(slug)
    success, cancel = _checkout_urls()
    try:
        url = billing.start_checkout(current_user.organisation, plan, current_user, clock.now(), success, cancel)
    except billing.BillingError as error:
        flash(str(error), "error")
        return redirect(url_for("client.choose_plan", slug=slug))
    return redirect(url, code=303)


@bp.route("/success")
@client_only
def success():
    organisation = current_user.organisation
    return render_template(
        "billing/success.html",
        contract=contracts.current_contract(organisation.id),
        pending=contracts.pending_contract(organisation.id),
    )


@bp.route("/cancelled")
@client_only
def cancelled():
    """Stripe sends the client back here by GET, which must change nothing: withdrawing is a POST."""
    pending = contracts.pending_contract(current_user.organisation_id)
    if pending is not None and pending.payment_method != "card":
        pending = None
    return render_template("billing/cancelled.html", pending=pending)


@bp.route("/request/withdraw", methods=["POST"])
@client_admin_only
def withdraw_request():
    """Take back a plan request nothing was paid for: a card checkout left unpaid, or an invoiced
    request the firm has not confirmed yet."""
    organisation, now = current_user.organisation, clock.now()
    withdrawn = billing.abandon_checkout(organisation, now) or billing.withdraw_invoice_request(organisation, now)
    if withdrawn is not None:
        flash(f"Your request for {withdrawn.plan.name} is withdrawn; choose a plan again whenever you are ready.",
              "success")
    else:
        flash("There is no plan request waiting to withdraw.", "error")
    return redirect(safe_next(request.form.get("next")) or url_for("billing.overview"))


@bp.route("/change-plan", methods=["POST"])
@client_admin_only
def change_plan():
    """Switch the card contract; back to the page it was asked from (the upgrade panel names its ticket)."""
    back = safe_next(request.form.get("next")) or url_for("billing.overview")
    slug = (request.form.get("plan") or "").strip()
    plan = plan_service.plan_by_slug(slug) if slug else None
    if plan is None:
        flash("Choose the plan to move to (field: plan).", "error")
        return redirect(back)
    try:
        contract = billing.change_plan(current_user.organisation, plan, current_user, clock.now())
    except billing.BillingError as error:
        flash(str(error), "error")
        return redirect(back)
    flash(f"Your contract is now {contract.plan.name}. Stripe prorates the difference on your next invoice.", "success")
    return redirect(back)


@bp.route("/cancel", methods=["POST"])
@client_admin_only
def cancel():
    try:
        contract = billing.cancel_at_period_end(current_user.organisation, current_user, clock.now())
    except billing.BillingError as error:
        flash(str(error), "error")
        return redirect(url_for("billing.overview"))
    # the day in the firm's zone, as the billing page's "Paid until" reads it (not the UTC date)
    when = f" on {contracts.firm_date(contract.current_period_end)}" if contract.current_period_end else " at the end of the paid period"
    flash(f"Your {contract.plan.name} contract will end{when}; until then nothing changes.", "success")
    return redirect(url_for("billing.overview"))


@bp.route("/keep", methods=["POST"])
@client_admin_only
def keep():
    try:
        contract = billing.keep_contract(current_user.organisation, current_user, clock.now())
    except billing.BillingError as error:
        flash(str(error), "error")
        return redirect(url_for("billing.overview"))
    flash(f"Your {contract.plan.name} contract goes on: it renews as before.", "success")
    return redirect(url_for("billing.overview"))


@bp.route("/portal", methods=["POST"])
@client_admin_only
def customer_portal():
    try:
        url = billing.billing_portal_url(current_user.organisation, url_for("billing.overview", _external=True))
    except billing.BillingError as error:
        flash(str(error), "error")
        return redirect(url_for("billing.overview"))
    return redirect(url, code=303)


@bp.route("/webhook", methods=["POST"])
@csrf.exempt
@limiter.exempt
def webhook():
    """Stripe's calls: the raw body is verified against the signature before anything is read."""
    payload = request.get_data(cache=False, as_text=False)
    try:
        outcome = billing.handle_webhook(payload, request.headers.get("Stripe-Signature", ""), clock.now())
    except billing.WebhookRejected as error:
        current_app.logger.warning("stripe webhook rejected: %s", error)
        return {"error": "invalid signature"}, 400
    return {"received": outcome.event_id, "replay": outcome.replay}, 200


# --- the emergency upgrade ----------------------------------------------------------------------------


def _own_open_ticket(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.organisation_id != current_user.organisation_id:
        abort(404)
    return ticket


@bp.route("/tickets/<int:ticket_id>/upgrade")
@client_only
def upgrade_panel(ticket_id: int):
    """What each paid plan would change for this ticket right now (the dispatch what-if; nothing saved)."""
    from ..services import queue

    ticket = _own_open_ticket(ticket_id)
    contract = contracts.current_contract(ticket.organisation_id)
    now = clock.now()
    # Only a ticket still waiting for a technician can be served sooner; one in hand or waiting on the
    # client is not in the queue, and the panel says so instead of "no plan is on offer".
    waiting = ticket.status in TicketStatus.WAITING
    upgrade = queue.quote_upgrade(ticket.id, now) if waiting else queue.UpgradeQuotes(None, [])
    quotes = upgrade.plans
    if contract is not None:
        # A contract client in an emergency is offered the dearer plans that would serve this ticket sooner.
        quotes = [(plan, quote) for plan, quote in quotes
                  if plan.monthly_price > contract.plan.monthly_price and upgrade.sooner(quote)]
    sooner = {plan.id: upgrade.sooner(quote) for plan, quote in quotes}
    # The ticket page's words for a deadline the estimate already sees slipping, beside each guarantee.
    outlooks = {plan.id: outlook_words(quote.outlook()) for plan, quote in quotes}
    pending = contracts.pending_contract(ticket.organisation_id)
    return render_template(
        "billing/upgrade.html",
        ticket=ticket,
        contract=contract,
        suspended=contracts.suspended_contract(ticket.organisation_id),
        pending=pending,
        withdrawable=contracts.withdrawable(pending),
        not_waiting=TicketStatus.LABELS.get(ticket.status, ticket.status) if ticket.is_open and not waiting else None,
        current=upgrade.current,
        quotes=quotes,
        sooner=sooner,
        outlooks=outlooks,
        offers=plan_offers.offers(ticket.organisation, [plan for plan, _ in quotes], now),
        stripe_enabled=billing.stripe_enabled(),
    )


@bp.route("/tickets/<int:ticket_id>/upgrade/<slug>", methods=["POST"])
@client_admin_only
def upgrade_checkout(ticket_id: int, slug: str):
    ticket = _own_open_ticket(ticket_id)
    plan = _plan_or_404(slug)
    if not ticket.is_open:
        flash("This ticket is closed; upgrading would not change it.", "error")
        return redirect(url_for("billing.upgrade_panel", ticket_id=ticket.id))
    success, cancel = _checkout_urls()
    try:
        url = billing.start_checkout(current_user.organisation, plan, current_user, clock.now(), success, cancel,
                                     ticket_id=ticket.id)
    except billing.BillingError as error:
        flash(str(error), "error")
        return redirect(url_for("billing.upgrade_panel", ticket_id=ticket.id))
    return redirect(url, code=303)


# --- the firm's side: invoiced plan requests ----------------------------------------------------------


@bp.app_template_global()
def invoice_requests_for(organisation_id: int) -> list[Contract]:
    """Invoiced plan requests waiting for an owner, for the staff organisation page."""
    return [c for c in billing.pending_invoice_contracts() if c.organisation_id == organisation_id]


@bp.app_template_global()
def invoice_request_terms(contract: Contract) -> dict:
    """What the owner reads beside a request: the price asked, what changed about the plan since, and
    whether confirming needs the owner's word that an off-sale plan is honoured (services decide)."""
    off_sale = billing.off_sale_refusal(contract)
    return {
        "asked": contracts.agreed_price_words(contract),
        "change": contracts.plan_change_since_request(contract),
        "off_sale": off_sale,
        "can_honour": billing.off_sale_honourable(contract),
    }


@bp.route("/staff/contracts")
@owner_only
def staff_contracts():
    return render_template("billing/staff_contracts.html", pending=billing.pending_invoice_contracts())


@bp.route("/staff/contracts/<int:contract_id>/activate", methods=["POST"])
@owner_only
def staff_activate(contract_id: int):
    if db.session.get(Contract, contract_id) is None:
        abort(404)
    try:
        done = billing.activate_invoice_contract(contract_id, current_user, clock.now(),
                                                 honour_off_sale=request.form.get("honour_off_sale") == "yes")
    except billing.BillingError as error:
        flash(str(error), "error")
    else:
        contract = done.contract
        flash(f"{contract.organisation.name} is now on {contract.plan.name} (pay by invoice) at "
              f"{contracts.agreed_price_words(contract)}.", "success")
        if done.price_note:
            flash(done.price_note, "info")
    return redirect(safe_next(request.form.get("next")) or url_for("billing.staff_contracts"))


@bp.cli.command("sync-plans")
def sync_plans_command() -> None:
    """Create or update a Stripe product and monthly price per paid plan (safe to re-run)."""
    if not billing.stripe_enabled():
        raise click.ClickException("STRIPE_SECRET_KEY is not set: there is no Stripe account to sync the plans to.")
    try:
        report = billing.sync_plans()
    except billing.BillingError as error:
        raise click.ClickException(str(error)) from error
    except stripe.StripeError as error:
        raise click.ClickException(f"Stripe refused: {error.user_message or error}") from error
    for line in report.created:
        click.echo(f"created {line}")
    click.echo(f"plans in Stripe: {len(report.updated)} updated, {len(report.unchanged)} unchanged")
