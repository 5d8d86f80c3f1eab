"""The owner's triage-weights page: every weight of `TriageWeights`, stored by the settings service."""
from __future__ import annotations

import dataclasses

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import FloatField
from wtforms.validators import InputRequired, NumberRange

from .. import clock
from ..auth import roles_required
from ..models import Role

owner_only = roles_required(Role.OWNER)


def weights_form_class(weights_type: type) -> type[FlaskForm]:
    """One number field per weight, so a new weight in the domain appears here without a code change."""

    class WeightsForm(FlaskForm):
        pass

    for f in dataclasses.fields(weights_type):
        label = f.metadata.get("label") or f.name.replace("_", " ").capitalize()
        setattr(WeightsForm, f.name, FloatField(
            label, description=f.metadata.get("help", ""),
            validators=[InputRequired("Give a number."), NumberRange(0, 1_000_000, "Between 0 and 1,000,000.")],
        ))
    return WeightsForm


def register(bp) -> None:
    @bp.route("/settings/triage", methods=["GET", "POST"])
    @owner_only
    def triage_weights():
        from ..domain.triage import TriageWeights
        from ..services import settings as settings_service

        form_class = weights_form_class(TriageWeights)
        form = form_class() if request.method == "POST" else form_class(data=settings_service.triage_weights().to_dict())
        status = 200
        if form.validate_on_submit():
            values = {f.name: form[f.name].data for f in dataclasses.fields(TriageWeights)}
            try:
                weights = TriageWeights.from_dict(values)
            except (TypeError, ValueError) as error:
                form.form_errors.append(str(error))
                status = 400
            else:
                settings_service.save_triage_weights(weights.to_dict(), current_user, clock.now())
                flash("Triage weights saved; the queue was re-ranked with them.", "success")
                return redirect(url_for("staff.triage_weights"))
        elif form.is_submitted():
            status = 400
        defaults = TriageWeights()
        return render_template(
            "staff/weights.html", form=form, fields=[f.name for f in dataclasses.fields(TriageWeights)],
            defaults=defaults.to_dict(),
        ), status
