"""Demo data so a newcomer sees a living portal at once. Re-running adds nothing twice."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from .auth import hash_password
from .extensions import db
from .services import queue, tickets
from .models import (
    Contract,
    ContractStatus,
    OnCallPeriod,
    Organisation,
    Plan,
    Role,
    Shift,
    Technician,
    Ticket,
    User,
)

DEMO_PASSWORD = "demo-pass-2026"
DEMO_LOGINS = (
    ("owner@demo.test", "owner (staff)"),
    ("dispatcher@demo.test", "dispatcher (staff)"),
    ("tech1@demo.test", "technician (staff)"),
    ("admin@acme.demo.test", "client admin, Acme Manufacturing (Premium 24/7)"),
    ("admin@bolt.demo.test", "client admin, Bolt Retail (break/fix)"),
)

PLANS: list[dict[str, Any]] = [
    dict(slug="break-fix", name="Break/Fix", display_order=1, is_contract=False, coverage=Plan.COVERAGE_BUSINESS,
         monthly_price=Decimal("0"), remote_response_minutes=None, onsite_arrival_minutes=None,
         after_hours_emergencies=False, hourly_rate=Decimal("175"), minimum_term_months=0, onboarding_fee=Decimal("0"),
         summary="Pay by the hour when something breaks. No guarantee: served after contract clients, after hours on the next business day."),
    dict(slug="essentials", name="Essentials", display_order=2, is_contract=True, coverage=Plan.COVERAGE_BUSINESS,
         monthly_price=Decimal("490"), remote_response_minutes=240, onsite_arrival_minutes=480,
         after_hours_emergencies=False, hourly_rate=Decimal("125"), minimum_term_months=12, onboarding_fee=Decimal("250"),
         summary="Priority over break/fix with guaranteed response in business hours, at a reduced hourly rate."),
    dict(slug="priority", name="Priority", display_order=3, is_contract=True, coverage=Plan.COVERAGE_BUSINESS,
         monthly_price=Decimal("1290"), remote_response_minutes=60, onsite_arrival_minutes=240,
         after_hours_emergencies=False, hourly_rate=Decimal("0"), minimum_term_months=12, onboarding_fee=Decimal("250"),
         summary="A technician connected within the hour and on site within four business hours; labour included."),
    dict(slug="premium-24-7", name="Premium 24/7", display_order=4, is_contract=True, coverage=Plan.COVERAGE_24X7,
         monthly_price=Decimal("2490"), remote_response_minutes=30, onsite_arrival_minutes=120,
         after_hours_emergencies=True, hourly_rate=Decimal("0"), minimum_term_months=12, onboarding_fee=Decimal("500"),
         summary="Around the clock: 30-minute remote response, on site within two hours, after-hours emergencies page the on-call technician."),
]

ORGANISATIONS = [
    # name, admin email, plan slug (None = break/fix), address, lat, lon
    ("Acme Manufacturing", "admin@acme.demo.test", "premium-24-7", "12 Industrial Way, Long Island City, NY", 40.744, -73.948),
    ("Bolt Retail", "admin@bolt.demo.test", None, "350 Fifth Avenue, New York, NY", 40.748, -73.985),
    ("Cedar Pharmacy", "admin@cedar.demo.test", "priority", "88 Court Street, Brooklyn, NY", 40.690, -73.992),
    ("Delta Accounting", "admin@delta.demo.test", "essentials", "1 Main Street, White Plains, NY", 41.033, -73.763),
]

STAFF = [
    ("owner@demo.test", "Olivia Owner", Role.OWNER),
    ("dispatcher@demo.test", "Dana Dispatcher", Role.DISPATCHER),
    ("tech1@demo.test", "Tom Technician", Role.TECHNICIAN),
    ("tech2@demo.test", "Tara Network", Role.TECHNICIAN),
    ("tech3@demo.test", "Theo Field", Role.TECHNICIAN),
]

TECHNICIANS = {
    "tech1@demo.test": (["network", "server", "desktop"], "manhattan", 40.754, -73.984),
    "tech2@demo.test": (["network", "security"], "brooklyn", 40.678, -73.944),
    "tech3@demo.test": (["desktop", "printer", "server"], "queens", 40.728, -73.794),
}

TICKETS = [
    # org name, title, description, category, impact, revenue/h, on site, safety, skill, effort
    # (the deadline of the payroll ticket is "17:00 today" while that is still ahead)
    ("Acme Manufacturing", "Label printer on line 2 is down", "Shipping labels cannot print; trucks are waiting.", "printer", "department", Decimal("17000"), True, False, "printer", 45),
    ("Cedar Pharmacy", "Dispensing PC cannot reach the prescription system", "Orders for care homes are stuck.", "network", "department", Decimal("800"), True, True, "network", 60),
    ("Delta Accounting", "Payroll PC cannot upload to ADP", "Payroll must go out by 17:00 today.", "software", "person", Decimal("0"), False, False, "desktop", 30),
    ("Bolt Retail", "Card terminals offline at the front tills", "Customers can only pay cash.", "network", "company", Decimal("2500"), True, False, "network", 90),
]


def _user(email: str, name: str, role: str, organisation: Organisation | None, now: datetime) -> tuple[User, bool]:
    user = db.session.scalars(select(User).where(User.email == email)).first()
    if user is not None:
        return user, False
    user = User(email=email, full_name=name, role=role, organisation=organisation,
                password_hash=hash_password(DEMO_PASSWORD), created_at=now)
    db.session.add(user)
    return user, True


def seed_demo(now: datetime) -> int:
    """Create what is missing; returns how many records were added."""
    created = 0
    plans: dict[str, Plan] = {}
    for spec in PLANS:
        plan = db.session.scalars(select(Plan).where(Plan.slug == spec["slug"])).first()
        if plan is None:
            plan = Plan(**spec)
            db.session.add(plan)
            created += 1
        plans[spec["slug"]] = plan

    staff: dict[str, User] = {}
    for email, name, role in STAFF:
        staff[email], new = _user(email, name, role, None, now)
        created += new
    db.session.flush()

    for email, (skills, zone, lat, lon) in TECHNICIANS.items():
        user = staff[email]
        tech = db.session.scalars(select(Technician).where(Technician.user_id == user.id)).first()
        if tech is not None:
            continue
        tech = Technician(user=user, skills=skills, home_zone=zone, home_latitude=lat, home_longitude=lon)
        tech.shifts = [Shift(weekday=d, starts=time(8, 0), ends=time(18, 0)) for d in range(5)]
        db.session.add(tech)
        created += 1
    db.session.flush()

    if not db.session.scalars(select(OnCallPeriod)).first():
        techs = db.session.scalars(select(Technician).order_by(Technician.id)).all()
        start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        for week in range(8):
            tech = techs[week % len(techs)]
            db.session.add(OnCallPeriod(technician=tech, starts_at=start + timedelta(weeks=week),
                                        ends_at=start + timedelta(weeks=week + 1)))
            created += 1

    organisations: dict[str, Organisation] = {}
    for name, admin_email, slug, address, lat, lon in ORGANISATIONS:
        org = db.session.scalars(select(Organisation).where(Organisation.name == name)).first()
        if org is None:
            org = Organisation(name=name, site_address=address, latitude=lat, longitude=lon, created_at=now)
            db.session.add(org)
            created += 1
            if slug is not None:
                db.session.add(Contract(organisation=org, plan=plans[slug], status=ContractStatus.ACTIVE,
                                        payment_method="invoice", starts_at=now - timedelta(days=60),
                                        minimum_term_ends_at=now + timedelta(days=300), created_at=now))
                created += 1
        organisations[name] = org
        first = name.split()[0]
        _, new = _user(admin_email, f"{first} Admin", Role.CLIENT_ADMIN, org, now)
        created += new
        _, new = _user(admin_email.replace("admin@", "staff@"), f"{first} Colleague", Role.CLIENT_MEMBER, org, now)
        created += new
    db.session.flush()

    db.session.commit()
    created += _demo_tickets(organisations, staff, now)
    queue.recompute(now)
    return created


def _requester(org: Organisation) -> User | None:
    return db.session.scalars(
        select(User).where(User.organisation_id == org.id, User.role == Role.CLIENT_ADMIN).order_by(User.id)
    ).first()


def _demo_tickets(organisations: dict[str, Organisation], staff: dict[str, User], now: datetime) -> int:
    """Open the demo tickets the way clients do (`tickets.open_ticket`) and move them the way staff do.

    Each has an idempotency key, so a second run finds them and changes nothing. One ticket
    resolved three days ago gives the effort model and the SLA compliance figures some history;
    the pharmacy's ticket has a technician on the way.
    """
    created = 0
    dispatcher = staff["dispatcher@demo.test"]
    technicians = {
        email: db.session.scalars(select(Technician).where(Technician.user_id == staff[email].id)).one()
        for email in TECHNICIANS
    }
    earlier = now - timedelta(days=3)
    history = tickets.open_ticket(
        organisations["Delta Accounting"].id, _requester(organisations["Delta Accounting"]).id,
        tickets.TicketInput("Reception PC cannot see the shared drive", "Mapped drive missing after an update.",
                            "network", "person", Decimal("0"), None, False, False),
        earlier, idempotency_key="demo-history-1",
    )
    if history.created:
        created += 1
        tickets.assign(history.ticket.id, technicians["tech1@demo.test"].id, dispatcher, earlier + timedelta(minutes=5))
        tech = staff["tech1@demo.test"]
        tickets.set_status(history.ticket.id, "in_progress", tech, earlier + timedelta(minutes=25))
        tickets.set_status(history.ticket.id, "resolved", tech, earlier + timedelta(minutes=70),
                           note="Drive mapping restored by group policy.")

    for index, (org_name, title, description, category, impact, revenue, onsite, safety, skill, effort) in enumerate(TICKETS):
        org = organisations[org_name]
        if db.session.scalars(select(Ticket.id).where(Ticket.organisation_id == org.id, Ticket.title == title)).first():
            continue  # seeded by an earlier run (also by versions before idempotency keys)
        deadline = None
        if "17:00 today" in description:
            try:
                deadline = tickets.parse_deadline("17:00", org.timezone, now)
            except tickets.TicketError:
                deadline = None  # 17:00 has passed: no deadline to show
        data = tickets.TicketInput(title, description, category, impact, revenue, deadline, onsite, safety)
        requester = _requester(org)
        opened = tickets.open_ticket(org.id, requester.id if requester else None, data, now,
                                     idempotency_key=f"demo-{index + 1}")
        if not opened.created:
            continue
        created += 1
        ticket = opened.ticket
        if ticket.required_skill != skill or ticket.effort_minutes != effort:
            tickets.set_details(ticket.id, onsite, effort, skill, dispatcher, now)
        if org_name == "Cedar Pharmacy":
            tickets.assign(ticket.id, technicians["tech2@demo.test"].id, dispatcher, now)
            tickets.set_status(ticket.id, "en_route", staff["tech2@demo.test"], now,
                               note="Leaving Brooklyn now.")
    return created
