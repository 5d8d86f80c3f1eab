from ..forms import MoneyField, PortalForm, WholeNumberField
from wtforms.validators import InputRequired, NumberRange


class DowntimeForm(PortalForm):
    """A GET form: no state changes, so no CSRF token."""

    class Meta:
        csrf = False

    staff_affected = WholeNumberField("Staff who cannot work during an outage", validators=[InputRequired(), NumberRange(1, 100_000)])
    revenue_per_hour = MoneyField("Revenue at risk per hour of outage ($)", places=2, validators=[InputRequired(), NumberRange(0, 10_000_000)])
    outages_per_year = WholeNumberField("Serious outages a year", validators=[InputRequired(), NumberRange(0, 365)])
    staff_cost_per_hour = MoneyField("Cost of one idle employee per hour ($)", places=2, default=40, validators=[InputRequired(), NumberRange(0, 10_000)])
