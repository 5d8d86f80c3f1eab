"""Template filters: times in the reader's zone, money, and role labels."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Optional
from zoneinfo import ZoneInfo

from flask import Flask, current_app, has_request_context

from .domain.calendar import repeated_hour_zone
from .models import Role, TicketStatus


def firm_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["FIRM_TIMEZONE"])


def shown_zone_name() -> str:
    """The zone this request's pages show times in, chosen per request like Flask-Babel's timezone
    selector: a logged-in client user reads their organisation's zone (the one its emails use and
    its typed deadlines are read in), staff and anonymous visitors the firm's. An organisation zone
    the clock library does not know falls back to the firm's."""
    firm = current_app.config["FIRM_TIMEZONE"]
    if not has_request_context():
        return firm
    return _reader_zone() or firm


def _reader_zone() -> Optional[str]:
    """Not kept between calls: the user is Flask-Login's (loaded once a request) and the organisation is
    in the session's identity map, so this costs no query after the first."""
    from flask_login import current_user

    from .services.organisations import known_zone

    user = current_user
    if user is None or not user.is_authenticated or not getattr(user, "is_client", False):
        return None
    organisation = user.organisation
    if organisation is None or not known_zone(organisation.timezone):
        return None
    return organisation.timezone


def local_time(value: Optional[datetime], fmt: str = "%a %d %b %H:%M") -> str:
    """`value` in the reader's zone (`shown_zone_name`). A time of day carries the zone's abbreviation
    when that zone is not the firm's, and in the firm's zone only in the hour that happens twice."""
    if value is None:
        return "—"
    zone = shown_zone_name()
    local = value.astimezone(ZoneInfo(zone))
    text = local.strftime(fmt)
    if "%H" in fmt and "%Z" not in fmt:
        text += f" {local:%Z}" if zone != current_app.config["FIRM_TIMEZONE"] else repeated_hour_zone(local)
    return text


def money(value: Optional[Decimal], currency: Optional[str] = "usd") -> str:
    """An amount as the client is charged it: `plan.monthly_price | money(plan.currency)`."""
    from .services.plans import currency_prefix

    if value is None:
        return "—"
    return f"{currency_prefix(currency)}{Decimal(value):,.2f}".replace(".00", "")


def ordinal(n: Optional[int]) -> str:
    if n is None:
        return "—"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def span(value: timedelta) -> str:
    """A length of time as a dispatcher says it: "45 min", "3 h 20 min", "2 days 4 h" (rounded to the minute)."""
    minutes = max(0, round(value.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


def register_template_helpers(app: Flask) -> None:
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(money, "money")
    app.add_template_filter(ordinal, "ordinal")
    app.add_template_filter(span, "span")
    app.add_template_global(shown_zone_name, "shown_zone_name")

    @app.context_processor
    def firm() -> dict:
        return {
            "firm_name": app.config["FIRM_NAME"],
            "role_labels": Role.LABELS,
            "status_labels": TicketStatus.LABELS,
            "staff_status_labels": TicketStatus.STAFF_LABELS,
        }
