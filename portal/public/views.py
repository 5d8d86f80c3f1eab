"""Public pages: the service promise, the plan comparison and the downtime calculator."""
from decimal import Decimal

from typing import Iterable, Optional

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user

from .. import clock
from ..domain.downtime import DowntimeInput, recommend
from ..models import Plan
from ..services import plan_offers
from ..services import plans as plan_service
from .forms import DowntimeForm

bp = Blueprint("public", __name__)


def _promises(plans):
    hours = current_app.config["BUSINESS_HOURS"]
    return {plan.id: plan_service.promise(plan, hours) for plan in plans}


def _offers(plans: Iterable[Plan]) -> Optional[dict[int, plan_offers.PlanOffer]]:
    """For a signed-in client, what each plan's button may offer their organisation now (None for
    visitors, who sign up, and staff, who buy nothing)."""
    if not current_user.is_authenticated or current_user.is_staff or current_user.organisation is None:
        return None
    return plan_offers.offers(current_user.organisation, plans, clock.now())


@bp.route("/")
def home():
    plans = plan_service.active_plans()
    return render_template("public/home.html", plans=plans, promises=_promises(plans), offers=_offers(plans))


@bp.route("/plans")
def plans():
    plans = plan_service.active_plans()
    return render_template("public/plans.html", plans=plans, promises=_promises(plans), offers=_offers(plans))


@bp.route("/plans/<slug>")
def plan_detail(slug: str):
    plan = plan_service.plan_by_slug(slug)
    if plan is None:
        abort(404)
    offers = _offers([plan])
    return render_template("public/plan_detail.html", plan=plan, promise=_promises([plan])[plan.id],
                           offer=offers[plan.id] if offers else None)


@bp.route("/calculator")
def calculator():
    form = DowntimeForm(request.args)
    result = None
    status = 200
    if request.args:
        if form.validate():
            plans = plan_service.active_plans()
            data = DowntimeInput(
                staff_affected=form.staff_affected.data,
                revenue_per_hour=Decimal(form.revenue_per_hour.data),
                outages_per_year=form.outages_per_year.data,
                staff_cost_per_hour=Decimal(form.staff_cost_per_hour.data),
            )
            if plans:
                result = recommend([plan_service.plan_terms(p) for p in plans], data)
        else:
            status = 400
    return render_template("public/calculator.html", form=form, result=result), status
