"""The owner's triage-weights page: every weight of `TriageWeights`, stored by the settings service.

Why the domain validates: `TriageWeights.from_dict` holds the rules (non-negative, a share
within 0..1, horizons and effort bounds of at least a minute, company >= department >= person) and names the offending key, so the page shows
the message next to that field and saves nothing.
"""
from __future__ import annotations

import dataclasses

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from ..forms import PortalForm
from wtforms import FloatField
from wtforms.validators import InputRequired

from .. import clock
from ..auth import roles_required
from ..domain.triage import WEIGHT_LABELS, TriageWeights
from ..models import Role
from ..services import settings as settings_service

owner_only = roles_required(Role.OWNER)


def weights_form_class() -> type[PortalForm]:
    """One number field per weight, so a new weight in the domain appears here without a code change."""

    class WeightsForm(PortalForm):
        pass

    for f in dataclasses.fields(TriageWeights):
        label = WEIGHT_LABELS.get(f.name) or f.name.replace("_", " ").capitalize()
        setattr(WeightsForm, f.name, FloatField(label, validators=[InputRequired("Give a number.")]))
    return WeightsForm


def _attach(form: PortalForm, error: ValueError) -> None:
    """'impact_company: must be ...' goes next to the impact_company field; anything else on the form."""
    key, _, message = str(error).partition(":")
    if message and key.strip() in form:
        form[key.strip()].errors = list(form[key.strip()].errors) + [message.strip()]
    else:
        form.form_errors.append(str(error))


def register(bp) -> None:
    @bp.route("/settings/triage", methods=["GET", "POST"])
    @owner_only
    def triage_weights():
        form_class = weights_form_class()
        names = [f.name for f in dataclasses.fields(TriageWeights)]
        form = form_class() if request.method == "POST" else form_class(data=settings_service.triage_weights().to_dict())
        status = 200
        if form.validate_on_submit():
            try:
                weights = TriageWeights.from_dict({name: form[name].data for name in names})
            except ValueError as error:
                _attach(form, error)
                status = 400
            else:
                settings_service.save_triage_weights(weights, current_user, clock.now())
                flash("Triage weights saved; the queue was re-ranked with them.", "success")
                return redirect(url_for("staff.triage_weights"))
        elif form.is_submitted():
            status = 400
        return render_template(
            "staff/weights.html", form=form, fields=names, defaults=TriageWeights().to_dict(),
        ), status
