"""A small world for the security tests: two client organisations, every role, and objects of organisation A.

Log-ins go straight into the session (the log-in form itself is tested in tests/auth), so
that hundreds of requests do not each pay for an Argon2 check or meet the rate limits.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Callable, Optional

from flask import Flask, current_app
from flask.testing import FlaskClient
from sqlalchemy import func, select, text

from portal.auth import hash_password
from portal.extensions import db
from portal import clock
from portal.services import accounts, api_tokens
from portal.models import (
    Attachment,
    Comment,
    Contract,
    ContractStatus,
    OnCallPeriod,
    OutboxMessage,
    Organisation,
    Plan,
    Role,
    Shift,
    Technician,
    Ticket,
    TicketEvent,
    TicketStatus,
    TimeOff,
    User,
)
from tests.conftest import PASSWORD

ROLES = ("anonymous", "client_member", "client_admin", "other_admin", "technician", "dispatcher", "owner")
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
_HASH: dict[str, str] = {}


def password_hash() -> str:
    """One Argon2 hash shared by every user of the world (hashing is deliberately slow)."""
    if "h" not in _HASH:
        _HASH["h"] = hash_password(PASSWORD)
    return _HASH["h"]


@dataclass(frozen=True)
class World:
    """Ids of the world's objects (plain values: usable outside any app context)."""

    session_ids: dict[str, str]   # role -> the id Flask-Login keeps in the session
    user_ids: dict[str, int]
    org_a: int
    org_b: int
    plan: int
    plan_slug: str
    break_fix: int
    technician: int
    shift: int
    on_call: int
    time_off: int
    ticket_a: int
    ticket_a_title: str
    ticket_b: int
    comment_a: int
    attachment_a: int
    api_token_a: int
    api_secret_a: str             # the Bearer secret of organisation A's token
    reset_token: str              # a live password-reset token of organisation A's member
    invitation_token: str         # a live invitation to organisation A
    invitation_a: int             # that invitation's id
    confirmation_token: str       # a live confirmation link of a sign-up not confirmed yet
    email_change_token: str       # a live link moving organisation A's member to a new address
    contract_a: int

    def client_for(self, app: Flask, role: str) -> FlaskClient:
        """A test client logged in as `role` ('anonymous' = nobody)."""
        client = app.test_client()
        if role != "anonymous":
            with client.session_transaction() as session:
                session["_user_id"] = self.session_ids[role]
                session["_fresh"] = True
        return client


def _user(email: str, role: str, organisation: Optional[Organisation], name: str) -> User:
    user = User(email=email, full_name=name, role=role, organisation=organisation, password_hash=password_hash())
    db.session.add(user)
    return user


def build_world() -> World:
    """Create the world (inside an app context) and commit it."""
    plan = Plan(slug="priority", name="Priority", is_contract=True, coverage=Plan.COVERAGE_BUSINESS,
                monthly_price=Decimal("1290"), remote_response_minutes=60, onsite_arrival_minutes=240,
                hourly_rate=Decimal("0"), minimum_term_months=12, display_order=2, active=True)
    break_fix = Plan(slug="break-fix", name="Break/Fix", is_contract=False, coverage=Plan.COVERAGE_BUSINESS,
                     monthly_price=Decimal("0"), hourly_rate=Decimal("175"), display_order=0, active=True)
    org_a = Organisation(name="Acme Dental", site_address="1 Main St", timezone="America/New_York",
                         latitude=40.75, longitude=-73.98)
    org_b = Organisation(name="Bolt Retail", site_address="9 Side St", timezone="America/New_York",
                         latitude=40.70, longitude=-73.90)
    db.session.add_all([plan, break_fix, org_a, org_b])
    contract_a = Contract(organisation=org_a, plan=plan, status=ContractStatus.ACTIVE, payment_method="invoice",
                          starts_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    # a card payment started and not finished yet (Stripe's Checkout page is open in another tab)
    pending_card_a = Contract(organisation=org_a, plan=plan, status=ContractStatus.PENDING, payment_method="card",
                              stripe_checkout_session_id="cs_test_world_a")
    db.session.add_all([contract_a, pending_card_a])
    users = {
        "client_member": _user("member@acme.example", Role.CLIENT_MEMBER, org_a, "Mia Member"),
        "client_admin": _user("admin@acme.example", Role.CLIENT_ADMIN, org_a, "Ada Admin"),
        "other_admin": _user("admin@bolt.example", Role.CLIENT_ADMIN, org_b, "Otto Other"),
        "technician": _user("tech@firm.example", Role.TECHNICIAN, None, "Tess Tech"),
        "dispatcher": _user("dispatch@firm.example", Role.DISPATCHER, None, "Dana Dispatch"),
        "owner": _user("owner@firm.example", Role.OWNER, None, "Owen Owner"),
    }
    technician = Technician(user=users["technician"], skills=["network", "desktop"], home_latitude=40.74,
                            home_longitude=-73.99, active=True)
    shift = Shift(technician=technician, weekday=1, starts=time(8), ends=time(18))
    upcoming = clock.now().replace(microsecond=0) + timedelta(hours=5)  # listed on the rota page (and deletable)
    on_call = OnCallPeriod(technician=technician, starts_at=upcoming, ends_at=upcoming + timedelta(hours=12))
    time_off = TimeOff(technician=technician, starts_at=upcoming + timedelta(days=30),
                       ends_at=upcoming + timedelta(days=31), reason="Holiday", created_at=NOW)
    ticket_a = Ticket(organisation=org_a, requester=users["client_member"], title="Front desk PC will not boot",
                      description="Blue screen", category="desktop", impact="person", status=TicketStatus.ASSIGNED,
                      technician=technician, opened_at=NOW - timedelta(hours=1), sla_clock_start=NOW - timedelta(hours=1),
                      sla_plan=plan, override_position=1, override_reason="Clinic: patients waiting")
    ticket_b = Ticket(organisation=org_b, requester=users["other_admin"], title="Card terminal offline",
                      category="network", impact="company", status=TicketStatus.NEW, opened_at=NOW - timedelta(minutes=30))
    # a prospect who signed up and has not opened the confirmation link yet
    prospect = User(email="prospect@harbor.example", full_name="Hana Prospect", role=Role.CLIENT_ADMIN,
                    organisation=Organisation(name="Harbor Clinic", site_address="5 Harbor Rd", timezone="America/New_York"),
                    password_hash=password_hash(), email_confirmed_at=None)
    db.session.add_all([technician, shift, on_call, time_off, ticket_a, ticket_b, prospect])
    db.session.flush()
    db.session.add(TicketEvent(ticket=ticket_a, at=NOW - timedelta(hours=1), kind="opened", message="Ticket opened"))
    comment_a = Comment(ticket_id=ticket_a.id, author_id=users["client_member"].id, body="It beeps three times",
                        created_at=NOW - timedelta(minutes=50))
    attachment_a = _attachment(ticket_a, users["client_member"])
    db.session.add_all([comment_a, attachment_a])
    db.session.commit()
    issued = api_tokens.create(org_a.id, "Monitoring", users["client_admin"], NOW)
    api_token_a = issued.token
    accounts.request_password_reset(users["client_member"].email, clock.now())
    invited = accounts.invite_colleague(users["client_admin"], "newcomer@acme.example", Role.CLIENT_MEMBER, clock.now())
    return World(
        session_ids={role: user.get_id() for role, user in users.items()},
        user_ids={role: user.id for role, user in users.items()},
        org_a=org_a.id, org_b=org_b.id, plan=plan.id, plan_slug=plan.slug, break_fix=break_fix.id,
        technician=technician.id, shift=shift.id, on_call=on_call.id, time_off=time_off.id, ticket_a=ticket_a.id,
        ticket_a_title=ticket_a.title, ticket_b=ticket_b.id, comment_a=comment_a.id, api_token_a=api_token_a.id,
        api_secret_a=issued.secret, reset_token=_token_in_last("password_reset"),
        invitation_token=_token_in_last("invitation"), invitation_a=invited.invitation.id, attachment_a=attachment_a.id, contract_a=contract_a.id,
        confirmation_token=accounts.confirmation_token(prospect, plan.slug, clock.now()),
        email_change_token=accounts.email_change_token(users["client_member"], "mia@acme-new.example", clock.now()),
    )


def _token_in_last(kind: str) -> str:
    body = db.session.scalars(
        select(OutboxMessage.body).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id.desc())
    ).first()
    return re.search(r"/(?:reset|invitation)/([^\s/]+)", body).group(1)


def _attachment(ticket: Ticket, uploader: User) -> Attachment:
    """A stored file of organisation A (written where the portal keeps uploads, outside static/)."""
    folder = current_app.config["UPLOAD_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    storage_name = "world-attachment-a.txt"
    with open(os.path.join(folder, storage_name), "wb") as handle:
        handle.write(b"event log of the front desk PC\n")
    return Attachment(ticket_id=ticket.id, uploader_id=uploader.id, filename="eventlog.txt", content_type="text/plain",
                      size=31, storage_name=storage_name, created_at=NOW)


def rebuild_world() -> World:
    """Empty every table with DELETE (PostgreSQL's TRUNCATE syncs files to disk: too slow per example)."""
    db.session.remove()
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    if db.engine.dialect.name == "postgresql":  # the same ids every time, as SQLite gives
        for table in db.metadata.sorted_tables:
            if "id" in table.c and table.c.id.autoincrement in (True, "auto") and table.c.id.type.python_type is int:
                db.session.execute(text("SELECT setval(pg_get_serial_sequence(:t, 'id'), 1, false) "
                                        "WHERE pg_get_serial_sequence(:t, 'id') IS NOT NULL"), {"t": table.name})
    db.session.commit()
    return build_world()


def row_counts() -> dict[str, int]:
    """Rows in every table: equal before and after means nothing was written or deleted."""
    db.session.expire_all()
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table: equal snapshots mean nothing at all was written."""
    db.session.expire_all()
    state = {}
    for table in db.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        state[table.name] = [tuple(row) for row in db.session.execute(select(table).order_by(*order))]
    db.session.rollback()
    return state


# --- URL parameters ------------------------------------------------------------------------------
# Each URL parameter name is filled from the world, always with an object of organisation A (or a
# firm-wide object). A new parameter name makes the matrix fail until a value is given here.
PARAMETERS: dict[str, Callable[[World], object]] = {
    "ticket_id": lambda w: w.ticket_a,
    "organisation_id": lambda w: w.org_a,
    "technician_id": lambda w: w.technician,
    "shift_id": lambda w: w.shift,
    "period_id": lambda w: w.on_call,
    "plan_id": lambda w: w.plan,
    "slug": lambda w: w.plan_slug,
    "comment_id": lambda w: w.comment_a,
    "token_id": lambda w: w.api_token_a,
    "attachment_id": lambda w: w.attachment_a,
    "contract_id": lambda w: w.contract_a,
    "user_id": lambda w: w.user_ids["client_member"],  # a colleague organisation A's admin may remove
    "invitation_id": lambda w: w.invitation_a,
    "token": lambda w: "not-a-valid-token",
    "filename": lambda w: "css/portal.css",
}

# Where one parameter name means different things on different routes.
ENDPOINT_PARAMETERS: dict[tuple[str, str], Callable[[World], object]] = {
    ("auth.reset_password", "token"): lambda w: w.reset_token,
    ("auth.accept_invitation", "token"): lambda w: w.invitation_token,
    ("auth.confirm_email", "token"): lambda w: w.confirmation_token,
    ("auth.confirm_email_change", "token"): lambda w: w.email_change_token,
    ("staff.delete_time_off", "period_id"): lambda w: w.time_off,
}


def parameter_value(endpoint: str, name: str, world: World) -> object:
    special = ENDPOINT_PARAMETERS.get((endpoint, name))
    return special(world) if special else PARAMETERS[name](world)


# Parameters naming an object that belongs to one client organisation: another organisation's
# admin asking for it must get 404, as if it did not exist.
ORGANISATION_SCOPED = frozenset({"ticket_id", "comment_id", "attachment_id", "token_id", "invitation_id",
                                 "user_id", "contract_id"})
