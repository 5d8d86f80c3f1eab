"""The base of every form in the portal."""
from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField, TextAreaField
from wtforms.validators import StopValidation

from .services.text import amount_as_written, unstorable


def refuse_unstorable(value: Any) -> Any:
    """A raised ValueError becomes the field's error, so the text comes back under its field.

    Werkzeug decodes form bodies with replacement, so a lone surrogate cannot arrive by HTTP today;
    refused all the same, as the JSON API refuses it.
    """
    problem = unstorable(value)
    if problem:
        raise ValueError(problem)
    return value


def one_newline(value: Any) -> Any:
    """Browsers send a typed line break as CR LF but count it as one character against maxlength:
    kept as LF, a note the browser let through is not refused as too long by the server."""
    if isinstance(value, str):
        return value.replace("\r\n", "\n")
    return value


class PortalForm(FlaskForm):
    """FlaskForm (CSRF) whose every field refuses what the database cannot store (NUL, a lone
    surrogate), and whose text areas count a line break as one character, as the browser does."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
            filters = [refuse_unstorable, *unbound_field.kwargs.get("filters", ())]
            if issubclass(unbound_field.field_class, TextAreaField):
                filters.insert(0, one_newline)
            return unbound_field.bind(form=form, **{**options, "filters": filters})


class WholeNumberField(IntegerField):
    """IntegerField that refuses a number too long to be meant, and says one thing for one typo.

    A 2,000-digit number parsed into an int that NumberRange's float check could not convert
    (OverflowError: a 500 on the downtime calculator and the plan form, found by the fuzz test).
    After any parse error the range check ran on the missing number too: "abc" read "Not a valid
    integer value." and "Give a place of 1 or more." on the what-if page.
    """

    MAX_DIGITS = 12
    TOO_LONG = f"Enter a number of at most {MAX_DIGITS} digits."

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and len(str(valuelist[0]).strip().lstrip("+-")) > self.MAX_DIGITS:
            self.data = None
            raise ValueError(self.TOO_LONG)
        super().process_formdata(valuelist)

    def pre_validate(self, form: Any) -> None:
        # Left empty, the field's own validators speak (required, or optional); typed wrong, only the parse error.
        if self.process_errors and self.raw_data and str(self.raw_data[0]).strip():
            raise StopValidation()  # the range check would only repeat it in other words


class MoneyField(DecimalField):
    """DecimalField that reads an amount only as people write one: 1250, 1,250.50 or $1250.

    Decimal also reads "sNaN", which the range check could not compare (a 500 on the public
    downtime calculator and the plan form), and "1e3", which saved a price nobody typed as such.
    """

    NOT_AN_AMOUNT = "Enter an amount, e.g. 1250 or 1,250.50."

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        if not str(valuelist[0]).strip():
            self.data = None  # left empty: the field's InputRequired or Optional speaks, not a parse error
            return
        amount = amount_as_written(valuelist[0])
        if amount is None:
            self.data = None
            raise ValueError(self.NOT_AN_AMOUNT)
        super().process_formdata([str(amount)])

    def pre_validate(self, form: Any) -> None:
        if self.process_errors:
            raise StopValidation()  # the range check would only add a second message for one typo
