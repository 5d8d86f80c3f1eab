"""Public pages: the service promise, the plan comparison and the downtime calculator."""
from decimal import Decimal

from flask import Blueprint, abort, current_app, render_template, request

from ..domain.downtime import DowntimeInput, recommend
from ..services import plans as plan_service
from .forms import DowntimeForm

bp = Blueprint("public", __name__)


def _promises(plans):
    hours = current_app.config["BUSINESS_HOURS"]
    return {plan.id: plan_service.promise(plan, hours) for plan in plans}


@bp.route("/")
def home():
    plans = plan_service.active_plans()
    return render_template("public/home.html", plans=plans, promises=_promises(plans))


@bp.route("/plans")
def plans():
    plans = plan_service.active_plans()
    return render_template("public/plans.html", plans=plans, promises=_promises(plans))


@bp.route("/plans/<slug>")
def plan_detail(slug: str):
    plan = plan_service.plan_by_slug(slug)
    if plan is None:
        abort(404)
    return render_template("public/plan_detail.html", plan=plan, promise=_promises([plan])[plan.id])


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
