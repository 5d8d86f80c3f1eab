"""Builders for the staff tests: staff accounts, technicians, logged-in clients."""
from __future__ import annotations

from datetime import time

from portal.extensions import db
from portal.models import Role, Shift, Technician, User
from tests.conftest import login, make_user


def staff(client, role: str, email: str | None = None, name: str = "Staff Person") -> User:
    user = make_user(email or f"{role}@firm.example", role=role, name=name)
    login(client, user.email)
    return user


def make_technician(email: str = "tech@firm.example", name: str = "Tom Tech", skills=("network",),
                    zone: str = "manhattan", weekdays=range(5)) -> Technician:
    user = make_user(email, role=Role.TECHNICIAN, name=name)
    tech = Technician(user=user, skills=list(skills), home_zone=zone, home_latitude=40.75, home_longitude=-73.98)
    tech.shifts = [Shift(weekday=d, starts=time(8), ends=time(18)) for d in weekdays]
    db.session.add(tech)
    db.session.commit()
    return tech
