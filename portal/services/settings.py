"""The firm's settings as the domain needs them: calendars from the app config, triage weights from the database.

Why here: the domain receives calendars and weights as values; this module is the one place
that knows where they come from (environment for business hours and holidays, the `setting`
table for what staff may edit), so every service and page computes with the same ones.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Container, Mapping, Optional, Union
from zoneinfo import ZoneInfo

import holidays as holiday_library
from flask import current_app

from ..domain.calendar import CoverageCalendar, repeated_hour_zone
from ..domain.travel import TravelModel
from ..domain.triage import TriageWeights
from ..extensions import db
from ..models import Plan, Setting, User

TRIAGE_WEIGHTS_KEY = "triage_weights"
SLA_KEY = "sla"
DEFAULT_AT_RISK_SHARE = 0.25


def firm_timezone() -> str:
    return current_app.config["FIRM_TIMEZONE"]


def firm_clock(at: datetime) -> str:
    """"Tue 24 Nov 11:00" in the firm's zone: how public messages give a time."""
    local = at.astimezone(ZoneInfo(firm_timezone()))
    return f"{local:%a %d %b %H:%M}{repeated_hour_zone(local)}"


def _calendar_cache() -> dict[tuple, Any]:
    """Calendars are immutable and costly to build (holiday tables): one per app and config."""
    return current_app.extensions.setdefault("portal_calendars", {})


def _config_key() -> tuple:
    config = current_app.config
    return (config["FIRM_TIMEZONE"], config["BUSINESS_HOURS"], config.get("HOLIDAY_COUNTRY"), config.get("HOLIDAY_REGION"))


def business_calendar() -> CoverageCalendar:
    """The firm's business hours in its time zone, minus the public holidays of its country and region."""
    key = ("business",) + _config_key()
    cache = _calendar_cache()
    if key not in cache:
        config = current_app.config
        cache[key] = CoverageCalendar.business(
            config["FIRM_TIMEZONE"],
            config["BUSINESS_HOURS"],
            holiday_country=config.get("HOLIDAY_COUNTRY") or None,
            holiday_region=config.get("HOLIDAY_REGION") or None,
        )
    return cache[key]


def firm_holidays() -> Container[date]:
    """Public holidays the firm closes on (technicians' weekly shifts do not run on them)."""
    key = ("holidays",) + _config_key()
    cache = _calendar_cache()
    if key not in cache:
        country = current_app.config.get("HOLIDAY_COUNTRY") or None
        region = current_app.config.get("HOLIDAY_REGION") or None
        cache[key] = holiday_library.country_holidays(country, subdiv=region) if country else frozenset()
    return cache[key]


def plan_calendar(plan: Optional[Plan]) -> CoverageCalendar:
    """When a plan's clock runs: 24x7 plans always; business-hours plans and break/fix (None) in business hours."""
    if plan is not None and plan.coverage == Plan.COVERAGE_24X7:
        return CoverageCalendar.always()
    return business_calendar()


def _setting(key: str) -> Optional[dict]:
    row = db.session.get(Setting, key)
    return dict(row.value) if row is not None and isinstance(row.value, dict) else None


def triage_weights() -> TriageWeights:
    """The weights staff saved, or the defaults; a stored value that no longer validates falls back to defaults."""
    stored = _setting(TRIAGE_WEIGHTS_KEY)
    if not stored:
        return TriageWeights()
    try:
        return TriageWeights.from_dict({**TriageWeights().to_dict(), **stored})
    except (TypeError, ValueError):
        current_app.logger.warning("stored triage weights are invalid; using the defaults")
        return TriageWeights()


def save_triage_weights(values: Union[Mapping[str, Any], TriageWeights], actor: Optional[User], now: datetime) -> TriageWeights:
    """Validate (ValueError naming the key), store, commit, then re-rank the queue with the new weights."""
    weights = values if isinstance(values, TriageWeights) else TriageWeights.from_dict(dict(values))
    row = db.session.get(Setting, TRIAGE_WEIGHTS_KEY)
    if row is None:
        db.session.add(Setting(key=TRIAGE_WEIGHTS_KEY, value=weights.to_dict()))
    else:
        row.value = weights.to_dict()
    db.session.commit()
    current_app.logger.info(
        "triage weights changed by %s at %s", actor.email if actor is not None else "system", now.isoformat()
    )
    from . import queue

    queue.recompute(now)
    return weights


def at_risk_share() -> float:
    """The share of an SLA target left at which a ticket counts as at risk (setting `sla.at_risk_share`)."""
    stored = _setting(SLA_KEY) or {}
    value = stored.get("at_risk_share", DEFAULT_AT_RISK_SHARE)
    try:
        share = float(value)
    except (TypeError, ValueError):
        return DEFAULT_AT_RISK_SHARE
    return share if 0 < share < 1 else DEFAULT_AT_RISK_SHARE


def save_at_risk_share(share: float, now: datetime) -> float:
    """Store the at-risk share (0 < share < 1); the next SLA check uses it."""
    if not 0 < float(share) < 1:
        raise ValueError("at_risk_share must be between 0 and 1 (e.g. 0.25 for a quarter of the target left).")
    row = db.session.get(Setting, SLA_KEY)
    value = {**(row.value if row is not None and isinstance(row.value, dict) else {}), "at_risk_share": float(share)}
    if row is None:
        db.session.add(Setting(key=SLA_KEY, value=value))
    else:
        row.value = value
    db.session.commit()
    return float(share)


def travel_model() -> TravelModel:
    """Travel-time settings for arrival estimates (the domain's metropolitan defaults)."""
    return TravelModel()
