"""Shared fixtures: one schema per test session built by the migrations, emptied after each test.

The database is SQLite in a temporary folder unless TEST_DATABASE_URL (or
DATABASE_URL) names another, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test.
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable, Iterator, Optional

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from portal import create_app
from portal.auth import hash_password
from portal.extensions import db
from portal.models import Contract, ContractStatus, Organisation, Plan, Role, User

PASSWORD = "correct-horse-battery-staple"


def _database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "portal-test.sqlite3")


def base_config(url: str, **overrides) -> dict:
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": {} if url.startswith("sqlite") else {"pool_pre_ping": True},
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SERVER_NAME": "portal.test",
        "SECRET_KEY": "test-secret-key",
        "STRIPE_SECRET_KEY": "",
        "SMTP_HOST": "",
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _database_url(tmp_path_factory)
    app = create_app(base_config(url))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return url


def empty_all_tables() -> None:
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def make_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Build an app with config overrides; tables are emptied when the test ends."""
    apps: list[Flask] = []

    def factory(**overrides) -> Flask:
        app = create_app(base_config(database_url, **overrides))
        apps.append(app)
        return app

    yield factory
    if apps:
        with apps[0].app_context():
            db.session.remove()
            empty_all_tables()
        for app in apps:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


@pytest.fixture
def app(make_app) -> Iterator[Flask]:
    app = make_app()
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


# --- builders -------------------------------------------------------------------------------


def make_plan(slug: str = "priority", **fields) -> Plan:
    defaults = dict(
        slug=slug, name=slug.replace("-", " ").title(), is_contract=slug != "break-fix",
        coverage=Plan.COVERAGE_BUSINESS, monthly_price=Decimal("1290"), remote_response_minutes=60,
        onsite_arrival_minutes=240, after_hours_emergencies=False, hourly_rate=Decimal("0"),
        minimum_term_months=12, display_order=1, active=True,
    )
    if slug == "break-fix":
        defaults.update(monthly_price=Decimal("0"), remote_response_minutes=None, onsite_arrival_minutes=None,
                        hourly_rate=Decimal("175"), minimum_term_months=0, display_order=0)
    defaults.update(fields)
    plan = Plan(**defaults)
    db.session.add(plan)
    db.session.commit()
    return plan


def make_organisation(name: str = "Acme", plan: Optional[Plan] = None) -> Organisation:
    org = Organisation(name=name, site_address="1 Main St", timezone="America/New_York", latitude=40.75, longitude=-73.98)
    db.session.add(org)
    if plan is not None and plan.is_contract:
        db.session.add(Contract(organisation=org, plan=plan, status=ContractStatus.ACTIVE, payment_method="invoice",
                                starts_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    db.session.commit()
    return org


def make_user(email: str, role: str = Role.CLIENT_ADMIN, organisation: Optional[Organisation] = None,
              password: str = PASSWORD, name: str = "Test Person") -> User:
    user = User(email=email, full_name=name, role=role, organisation=organisation, password_hash=hash_password(password))
    db.session.add(user)
    db.session.commit()
    return user


def login(client: FlaskClient, email: str, password: str = PASSWORD):
    return client.post("/auth/login", data={"email": email, "password": password})


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)
