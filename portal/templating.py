"""Template filters: times in the firm's zone, money, and role labels."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Optional
from zoneinfo import ZoneInfo

from flask import Flask, current_app

from .domain.calendar import repeated_hour_zone
from .models import Role, TicketStatus


def firm_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["FIRM_TIMEZONE"])


def local_time(value: Optional[datetime], fmt: str = "%a %d %b %H:%M") -> str:
    if value is None:
        return "—"
    local = value.astimezone(firm_zone())
    text = local.strftime(fmt)
    if "%H" in fmt and "%Z" not in fmt:
        text += repeated_hour_zone(local)
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

    @app.context_processor
    def firm() -> dict:
        return {
            "firm_name": app.config["FIRM_NAME"],
            "role_labels": Role.LABELS,
            "status_labels": TicketStatus.LABELS,
            "staff_status_labels": TicketStatus.STAFF_LABELS,
        }
