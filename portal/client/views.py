"""The client's side: dashboard and plan choice (the users page is colleagues.py). Every query is scoped to the user's organisation."""
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import clock
from ..auth import roles_required
from ..models import Role, TicketStatus
from ..services import accounts, contracts, plan_offers
from ..services import plans as plan_service
from ..services import sla as sla_service
from ..services import ticket_status
from .presenting import display

bp = Blueprint("client", __name__, url_prefix="/client")

client_only = roles_required(*Role.CLIENT)
client_admin_only = roles_required(Role.CLIENT_ADMIN)

from . import account, colleagues, tickets as ticket_views  # noqa: E402  (they register their routes on bp)

account.register(bp)
colleagues.register(bp)
ticket_views.register(bp)
COMPLIANCE_DAYS = 90


@bp.app_template_global()
def ask_an_admin(to: str) -> str:
    """What a member reads where only an admin can act: who those admins are, to ask them by name."""
    admins = accounts.admins_to_ask(current_user.organisation_id)
    organisation = current_user.organisation.name if current_user.organisation else "your organisation"
    return f"Only an admin of {organisation} can {to}" + (f": ask {admins}." if admins else ".")


@bp.route("/")
@client_only
def dashboard():
    """Open tickets with places and estimates, the contract's guarantees, 90-day SLA compliance, past tickets."""
    organisation = current_user.organisation
    contract = contracts.current_contract(organisation.id)
    pending = contracts.pending_contract(organisation.id)
    plan = sla_service.current_plan(organisation.id)
    now = clock.now()
    listing = ticket_status.tickets_for(organisation.id)
    open_views = [v for v in listing.views if v.is_open]
    waiting_views = [v for v in open_views if v.status in TicketStatus.WAITING]  # the ones an upgrade can speed up
    return render_template(
        "client/dashboard.html",
        organisation=organisation,
        contract=contract,
        suspended=contracts.suspended_contract(organisation.id),
        pending=pending,
        plan=plan,
        promise=plan_service.promise(plan, current_app.config["BUSINESS_HOURS"]) if plan else None,
        compliance=sla_service.compliance_for(organisation.id, now - timedelta(days=COMPLIANCE_DAYS), now),
        compliance_days=COMPLIANCE_DAYS,
        open_tickets=[(v, display(v)) for v in open_views],
        past_tickets=[v for v in listing.views if not v.is_open],
        past_limit=listing.done_limit if listing.more_done else None,
        queue_length=ticket_status.queue_length(),
        upgrade_link=ticket_views.upgrade_url(waiting_views[0].id) if waiting_views and plan is None else None,
    )


@bp.route("/plans/<slug>", methods=["GET"])
@client_only
def choose_plan(slug: str):
    plan = plan_service.plan_by_slug(slug)
    if plan is None:
        abort(404)
    from flask import current_app

    promise = plan_service.promise(plan, current_app.config["BUSINESS_HOURS"])
    return render_template(
        "client/choose_plan.html",
        plan=plan,
        promise=promise,
        offer=plan_offers.offer(current_user.organisation, plan, clock.now()),
    )


@bp.route("/plans/<slug>/invoice", methods=["POST"])
@client_admin_only
def request_invoice_plan(slug: str):
    plan = plan_service.plan_by_slug(slug)
    if plan is None:
        abort(404)
    try:
        contracts.request_by_invoice(current_user.organisation_id, plan, current_user, clock.now())
    except contracts.ContractError as error:
        flash(str(error), "error")
        return redirect(url_for("client.choose_plan", slug=slug))
    flash(
        f"Your request for {plan.name} is recorded. It becomes active once the firm confirms it; "
        "we will send the first invoice. No card was charged.",
        "success",
    )
    # From an emergency's upgrade panel: back to that ticket, not to the list.
    back = request.form.get("next") or ""
    return redirect(back if back.startswith("/client/tickets/") else url_for("client.dashboard"))
