"""SQLAlchemy 2.0 typed models: the firm's words for its data.

Datetimes are stored as timezone-aware UTC (`UtcDateTime`), so the domain core
always receives aware datetimes whatever the database.
"""
from __future__ import annotations

from datetime import datetime, time, timezone
from decimal import Decimal
from typing import Any, Optional

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    Index,
    Numeric,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


class UtcDateTime(TypeDecorator):
    """Stores aware datetimes as UTC; returns aware UTC datetimes (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Role:
    CLIENT_ADMIN = "client_admin"
    CLIENT_MEMBER = "client_member"
    TECHNICIAN = "technician"
    DISPATCHER = "dispatcher"
    OWNER = "owner"

    CLIENT = frozenset({CLIENT_ADMIN, CLIENT_MEMBER})
    STAFF = frozenset({TECHNICIAN, DISPATCHER, OWNER})
    ALL = CLIENT | STAFF
    LABELS = {
        CLIENT_ADMIN: "Client admin",
        CLIENT_MEMBER: "Client member",
        TECHNICIAN: "Technician",
        DISPATCHER: "Dispatcher",
        OWNER: "Owner",
    }


class Organisation(db.Model):
    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    site_address: Mapped[str] = mapped_column(String(500), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    latitude: Mapped[Optional[float]] = mapped_column(nullable=True)
    longitude: Mapped[Optional[float]] = mapped_column(nullable=True)
    zone: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    stripe_customer_id: Mapped[Optional[str]] = mapped_column(String(100), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    users: Mapped[list["User"]] = relationship(back_populates="organisation")
    contracts: Mapped[list["Contract"]] = relationship(
        back_populates="organisation", order_by="Contract.id"
    )


class User(UserMixin, db.Model):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    organisation_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("organisation.id"), nullable=True, index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_login_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    # When the owner of the address proved it (confirmation link, invitation link, password reset).
    # Every account is confirmed when created, except a self-service sign-up, which passes None
    # explicitly (`evaluates_none` stores that None as NULL instead of firing the default).
    email_confirmed_at: Mapped[Optional[datetime]] = mapped_column(
        UtcDateTime().evaluates_none(), nullable=True, default=utcnow
    )
    # The plan slug a prospect picked before signing up: a confirmation link sent again leads there too.
    sign_up_plan: Mapped[Optional[str]] = mapped_column(String(50), nullable=True)

    organisation: Mapped[Optional[Organisation]] = relationship(back_populates="users")

    def get_id(self) -> str:
        """The session carries the version: bumping it signs out every old session."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.active

    @property
    def is_staff(self) -> bool:
        return self.role in Role.STAFF

    @property
    def is_client(self) -> bool:
        return self.role in Role.CLIENT

    @property
    def first_name(self) -> str:
        return (self.full_name or self.email).split()[0].split("@")[0]


class Invitation(db.Model):
    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(20), default=Role.CLIENT_MEMBER)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    accepted_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)

    organisation: Mapped[Organisation] = relationship()


class AccountEvent(db.Model):
    """Who changed access to an organisation's portal, and when: invitations, removals, roles, API tokens.

    Why: a client admin asked "who removed Bob?" or "who made that API token?" must have an answer;
    the message is kept as written then, so it still names people who have since left or been renamed.
    """

    __tablename__ = "account_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    subject_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    message: Mapped[str] = mapped_column(Text)


class Plan(db.Model):
    """A service tier; `slug` is the stable lookup key (also Stripe's)."""

    __tablename__ = "plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text, default="")
    monthly_price: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    is_contract: Mapped[bool] = mapped_column(Boolean, default=True)
    coverage: Mapped[str] = mapped_column(String(20), default="business_hours")
    remote_response_minutes: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    onsite_arrival_minutes: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    after_hours_emergencies: Mapped[bool] = mapped_column(Boolean, default=False)
    hourly_rate: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"))
    minimum_term_months: Mapped[int] = mapped_column(Integer, default=0)
    onboarding_fee: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"))
    stripe_product_id: Mapped[Optional[str]] = mapped_column(String(100), nullable=True)
    stripe_price_id: Mapped[Optional[str]] = mapped_column(String(100), nullable=True)
    display_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    COVERAGE_24X7 = "24x7"
    COVERAGE_BUSINESS = "business_hours"


class ContractStatus:
    PENDING = "pending"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"  # Stripe gave up collecting (unpaid) or paused it: not served until paid
    CANCELED = "canceled"
    ALL = (PENDING, ACTIVE, PAST_DUE, SUSPENDED, CANCELED)


class Contract(db.Model):
    __tablename__ = "contract"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"))
    # The price agreed when the client asked (invoice request) or paid (Checkout): the owner may reprice
    # the plan or take it off sale afterwards, and the contract stays at what the client saw. A plan
    # change by card records the new plan's price, the one Stripe then charges.
    monthly_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    currency: Mapped[str] = mapped_column(String(3))
    onboarding_fee: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"))
    status: Mapped[str] = mapped_column(String(20), default=ContractStatus.PENDING)
    payment_method: Mapped[str] = mapped_column(String(20), default="invoice")
    starts_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    ends_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    minimum_term_ends_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    current_period_end: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    stripe_subscription_id: Mapped[Optional[str]] = mapped_column(String(100), nullable=True, index=True)
    stripe_checkout_session_id: Mapped[Optional[str]] = mapped_column(String(200), nullable=True, index=True)
    stripe_status: Mapped[Optional[str]] = mapped_column(String(40), nullable=True)
    stripe_event_created: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation] = relationship(back_populates="contracts")
    plan: Mapped[Plan] = relationship()


@event.listens_for(Contract, "before_insert")
def _contract_price_from_plan(mapper: Any, connection: Any, contract: Contract) -> None:
    """A contract written without an agreed price (a demo seed, a subscription started in Stripe's
    dashboard) is at its plan's list price of that moment. The request and Checkout paths record the
    price the client saw themselves (services/contracts.py `agree_price`). Read from the plan's row,
    which the flush has written by now, defaults and all."""
    if contract.monthly_price is not None and contract.currency is not None:
        return
    plan_id = contract.plan.id if contract.plan is not None else contract.plan_id
    row = connection.execute(
        Plan.__table__.select().with_only_columns(Plan.__table__.c.monthly_price, Plan.__table__.c.currency)
        .where(Plan.__table__.c.id == plan_id)
    ).first()
    if row is None:
        return  # the foreign key refuses it
    if contract.monthly_price is None:
        contract.monthly_price = row.monthly_price
    if contract.currency is None:
        contract.currency = row.currency


class TicketStatus:
    NEW = "new"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CLIENT = "waiting_on_client"
    RESOLVED = "resolved"
    CLOSED = "closed"

    WAITING = frozenset({NEW, ASSIGNED})
    ACTIVE = frozenset({EN_ROUTE, ON_SITE, IN_PROGRESS})
    OPEN = WAITING | ACTIVE | {WAITING_ON_CLIENT}
    DONE = frozenset({RESOLVED, CLOSED})
    LABELS = {
        NEW: "Waiting in queue",
        ASSIGNED: "Technician assigned",
        EN_ROUTE: "Technician en route",
        ON_SITE: "Technician on site",
        IN_PROGRESS: "Being worked on remotely",
        WAITING_ON_CLIENT: "Waiting on you",
        RESOLVED: "Resolved",
        CLOSED: "Closed",
    }
    # The firm's pages: "Waiting on you" is the client's wording, and read by a dispatcher or the
    # technician it says the job waits on them.
    STAFF_LABELS = {**LABELS, WAITING_ON_CLIENT: "Waiting on the client"}


class Ticket(db.Model):
    __tablename__ = "ticket"
    __table_args__ = (
        UniqueConstraint("organisation_id", "idempotency_key"),
        # An organisation's history, newest ended first, a page at a time (ticket_status.tickets_for).
        Index("ix_ticket_organisation_id_resolved_at_id", "organisation_id", "resolved_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    requester_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(40), default="other")
    impact: Mapped[str] = mapped_column(String(20), default="person")
    urgency: Mapped[str] = mapped_column(String(20), default="normal")
    revenue_at_risk_per_hour: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    client_deadline: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    onsite_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    safety_critical: Mapped[bool] = mapped_column(Boolean, default=False)
    required_skill: Mapped[Optional[str]] = mapped_column(String(40), nullable=True)
    effort_minutes: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(30), default=TicketStatus.NEW, index=True)
    technician_id: Mapped[Optional[int]] = mapped_column(ForeignKey("technician.id"), nullable=True)
    override_position: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    override_reason: Mapped[Optional[str]] = mapped_column(String(500), nullable=True)
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    # SHA-256 of the request as first read (tickets.request_fingerprint): the key replays only that request.
    request_fingerprint: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    # The resolved or closed ticket this one reports again (the fix did not hold); each page links the other.
    follows_ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ticket.id"), nullable=True, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    opened_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    sla_clock_start: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    sla_plan_id: Mapped[Optional[int]] = mapped_column(ForeignKey("plan.id"), nullable=True)
    response_due_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    arrival_due_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    sla_best_effort: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_state: Mapped[Optional[str]] = mapped_column(String(20), nullable=True)
    first_response_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    arrived_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    response_breached_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    arrival_breached_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    # When the ticket stopped being owed its guaranteed promises: its contract ended, was suspended or moved
    # to break/fix (`sla_promise_plan_id` keeps the plan they were made on), or it was closed without work.
    # A promise kept or broken before then still counts as it was; one not yet due is no longer owed.
    sla_promise_ended_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    sla_promise_plan_id: Mapped[Optional[int]] = mapped_column(ForeignKey("plan.id"), nullable=True)

    __mapper_args__ = {"version_id_col": version}

    organisation: Mapped[Organisation] = relationship()
    requester: Mapped[Optional["User"]] = relationship()
    technician: Mapped[Optional["Technician"]] = relationship(foreign_keys=[technician_id])
    sla_plan: Mapped[Optional[Plan]] = relationship(foreign_keys=[sla_plan_id])
    sla_promise_plan: Mapped[Optional[Plan]] = relationship(foreign_keys=[sla_promise_plan_id])
    follows: Mapped[Optional["Ticket"]] = relationship(remote_side="Ticket.id", foreign_keys=[follows_ticket_id],
                                                       back_populates="follow_ups")
    follow_ups: Mapped[list["Ticket"]] = relationship(foreign_keys=[follows_ticket_id], back_populates="follows",
                                                      order_by="Ticket.id")
    events: Mapped[list["TicketEvent"]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", cascade="all, delete-orphan"
    )
    pauses: Mapped[list["TicketPause"]] = relationship(
        back_populates="ticket", order_by="TicketPause.id", cascade="all, delete-orphan"
    )

    @property
    def is_open(self) -> bool:
        return self.status in TicketStatus.OPEN

    @property
    def status_label(self) -> str:
        return TicketStatus.LABELS.get(self.status, self.status)


class TicketPause(db.Model):
    """A span while the ticket waited on the client: its SLA clock stood still."""

    __tablename__ = "ticket_pause"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)

    ticket: Mapped[Ticket] = relationship(back_populates="pauses")


class TicketEvent(db.Model):
    """The audit trail and the client's timeline (`public` events are shown to the client)."""

    __tablename__ = "ticket_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)
    public: Mapped[bool] = mapped_column(Boolean, default=True)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    actor: Mapped[Optional[User]] = relationship()


class Comment(db.Model):
    __tablename__ = "comment"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    author: Mapped[Optional[User]] = relationship()


class Attachment(db.Model):
    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    uploader_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    storage_name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Technician(db.Model):
    __tablename__ = "technician"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), unique=True)
    skills: Mapped[list] = mapped_column(JSON, default=list)
    home_zone: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    home_latitude: Mapped[Optional[float]] = mapped_column(nullable=True)
    home_longitude: Mapped[Optional[float]] = mapped_column(nullable=True)
    current_latitude: Mapped[Optional[float]] = mapped_column(nullable=True)
    current_longitude: Mapped[Optional[float]] = mapped_column(nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    user: Mapped[User] = relationship()
    shifts: Mapped[list["Shift"]] = relationship(
        back_populates="technician", cascade="all, delete-orphan", order_by="Shift.weekday"
    )

    @property
    def name(self) -> str:
        return self.user.full_name or self.user.email


class Shift(db.Model):
    """A weekly on-duty interval in the firm's time zone (weekday 0 = Monday)."""

    __tablename__ = "shift"

    id: Mapped[int] = mapped_column(primary_key=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technician.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)

    technician: Mapped[Technician] = relationship(back_populates="shifts")

    @property
    def ends_label(self) -> str:
        """An end of 00:00 is midnight at the end of the day: shown as 24:00."""
        return "24:00" if self.ends == time(0) else f"{self.ends:%H:%M}"


class TimeOff(db.Model):
    """A stretch when a technician works no shift and takes no call (holiday, sickness, training)."""

    __tablename__ = "time_off"

    id: Mapped[int] = mapped_column(primary_key=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technician.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), nullable=True)

    technician: Mapped[Technician] = relationship()
    created_by: Mapped[Optional[User]] = relationship()


class OnCallPeriod(db.Model):
    """The after-hours rota: who answers emergencies between two instants."""

    __tablename__ = "on_call_period"

    id: Mapped[int] = mapped_column(primary_key=True)
    technician_id: Mapped[int] = mapped_column(ForeignKey("technician.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())

    technician: Mapped[Technician] = relationship()


class Setting(db.Model):
    """Editable firm settings stored as JSON (e.g. triage weights)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)


class QueueEntry(db.Model):
    """The last dispatch result for one open ticket, so pages read it without recomputing."""

    __tablename__ = "queue_entry"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    position: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    ahead: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    technician_id: Mapped[Optional[int]] = mapped_column(ForeignKey("technician.id"), nullable=True)
    eta_median: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    eta_p90: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    # When the technician is expected to set off (on-site) or start (remote): the ticket's response.
    set_off_median: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    set_off_p90: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    sla_at_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    score: Mapped[float] = mapped_column(default=0.0)
    note: Mapped[str] = mapped_column(Text, default="")
    client_reasons: Mapped[list] = mapped_column(JSON, default=list)
    staff_reasons: Mapped[list] = mapped_column(JSON, default=list)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    generation: Mapped[int] = mapped_column(Integer, default=0)

    ticket: Mapped[Ticket] = relationship()
    technician: Mapped[Optional[Technician]] = relationship()


class QueueState(db.Model):
    """One row per database: its lock serialises recomputations across workers."""

    __tablename__ = "queue_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    waiting_count: Mapped[int] = mapped_column(Integer, default=0)


class ApiToken(db.Model):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True)
    # The create form's one-time key: the same form sent twice (a double click without JavaScript,
    # Back and send, a reload of the answer) makes one token, not a second whose secret nobody saw.
    request_key: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)

    __table_args__ = (UniqueConstraint("organisation_id", "request_key"),)


class OutboxMessage(db.Model):
    """An email written in the same transaction as the change that caused it."""

    __tablename__ = "outbox_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime(), nullable=True, index=True)


class StripeEvent(db.Model):
    """Every Stripe event id seen, so a replay changes nothing."""

    __tablename__ = "stripe_event"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    payload: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)


def render_migration_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    """Migrations spell UtcDateTime as a plain timezone-aware DateTime (no import of the app)."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False
