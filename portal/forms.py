"""The base of every form in the portal."""
from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm

from .services.text import NUL_MESSAGE, has_nul


def refuse_nul(value: Any) -> Any:
    """A raised ValueError becomes the field's error, so the text comes back under its field."""
    if has_nul(value):
        raise ValueError(NUL_MESSAGE)
    return value


class PortalForm(FlaskForm):
    """FlaskForm (CSRF) whose every field refuses what the database cannot store."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            filters = [refuse_nul, *unbound_field.kwargs.get("filters", ())]
            return unbound_field.bind(form=form, **{**options, "filters": filters})
