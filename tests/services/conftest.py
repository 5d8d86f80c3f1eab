"""A small firm for the service tests: plans, client organisations, technicians on shift, a dispatcher."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, Optional

import pytest

from portal.extensions import db
from portal.models import OnCallPeriod, Organisation, Plan, Role, Shift, Technician, User
from portal.services import tickets
from functools import lru_cache

from portal.auth import hash_password
from tests.conftest import PASSWORD, make_organisation, make_plan


@lru_cache(maxsize=1)
def _password_hash() -> str:
    """Hashing is deliberately slow (Argon2): one hash serves every user of these tests."""
    return hash_password(PASSWORD)


def make_user(email: str, role: str = Role.CLIENT_ADMIN, organisation: Optional[Organisation] = None,
              name: str = "Test Person") -> User:
    user = User(email=email, full_name=name, role=role, organisation=organisation, password_hash=_password_hash())
    db.session.add(user)
    db.session.commit()
    return user


@dataclass
class Firm:
    priority: Plan
    premium: Plan
    acme: Organisation      # Priority (business hours)
    cedar: Organisation     # Premium 24/7 with after-hours emergencies
    bolt: Organisation      # break/fix
    acme_admin: User
    cedar_admin: User
    bolt_admin: User
    dispatcher: User
    tech_user: User
    technician: Technician


def add_technician(email: str, skills: list[str], lat: float = 40.75, lon: float = -73.98,
                   on_call: Optional[tuple[datetime, datetime]] = None) -> Technician:
    user = make_user(email, Role.TECHNICIAN, name=email.split("@")[0].title() + " Tech")
    tech = Technician(user=user, skills=skills, home_latitude=lat, home_longitude=lon)
    tech.shifts = [Shift(weekday=d, starts=time(8, 0), ends=time(18, 0)) for d in range(5)]
    db.session.add(tech)
    if on_call:
        db.session.add(OnCallPeriod(technician=tech, starts_at=on_call[0], ends_at=on_call[1]))
    db.session.commit()
    return tech


@pytest.fixture
def firm(app, now) -> Firm:
    return build_firm(now)


def build_firm(now: datetime) -> Firm:
    priority = make_plan("priority", display_order=2)
    premium = make_plan("premium-24-7", name="Premium 24/7", coverage=Plan.COVERAGE_24X7, monthly_price=Decimal("2490"),
                        remote_response_minutes=30, onsite_arrival_minutes=120, after_hours_emergencies=True,
                        display_order=3)
    make_plan("break-fix", name="Break/Fix", active=True)
    acme = make_organisation("Acme", priority)
    cedar = make_organisation("Cedar", premium)
    bolt = make_organisation("Bolt", None)
    tech = add_technician("tom@firm.test", ["network", "printer"],
                          on_call=(now - timedelta(days=3), now + timedelta(days=4)))
    return Firm(
        priority=priority, premium=premium, acme=acme, cedar=cedar, bolt=bolt,
        acme_admin=make_user("admin@acme.test", organisation=acme),
        cedar_admin=make_user("admin@cedar.test", organisation=cedar),
        bolt_admin=make_user("admin@bolt.test", organisation=bolt),
        dispatcher=make_user("dana@firm.test", Role.DISPATCHER, name="Dana Dispatcher"),
        tech_user=tech.user, technician=tech,
    )


def ticket_input(**fields: Any) -> tickets.TicketInput:
    values: dict[str, Any] = dict(
        title="Printer down", description="", category="printer", impact="person",
        revenue_at_risk_per_hour=Decimal("0"), client_deadline=None, onsite_needed=False, safety_critical=False,
    )
    values.update(fields)
    return tickets.TicketInput(**values)


def open_for(org: Organisation, user: Optional[User], now: datetime, key: Optional[str] = None, **fields: Any):
    return tickets.open_ticket(org.id, user.id if user else None, ticket_input(**fields), now, idempotency_key=key)
