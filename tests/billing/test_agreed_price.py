"""A contract keeps the price the client agreed to, whatever the owner does to the plan afterwards.

An invoiced request waits for an owner; a card Checkout waits for Stripe's webhook. Meanwhile the owner
may reprice the plan or take it off sale: the client is never put on a price they did not see, and the
owner confirming a request is told plainly what changed.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.models import Contract, ContractStatus, Plan, Role, User
from portal.services import billing
from tests.conftest import login, make_organisation, make_plan, make_user

from .conftest import signed, stripe_config
from .helpers import checkout_session, event, paid_plans, subscription
from .test_checkout_http import stripe_answers


@pytest.fixture
def app(make_app, recorder):
    app = make_app(**stripe_config(recorder.url))
    with app.app_context():
        yield app


@pytest.fixture
def bolt(client):
    """Bolt, a break/fix client whose admin is signed in; Essentials and Priority ($1,290, $500 onboarding) on sale."""
    paid_plans()
    make_plan("break-fix", name="Break/Fix")
    org = make_organisation("Bolt")
    make_user("admin@bolt.test", organisation=org)
    make_user("olga@firm.test", Role.OWNER)
    login(client, "admin@bolt.test")
    return org


def priority() -> Plan:
    return db.session.scalars(select(Plan).where(Plan.slug == "priority")).one()


def the_contract(organisation_id: int) -> Contract:
    db.session.expire_all()
    return db.session.scalars(select(Contract).where(Contract.organisation_id == organisation_id)).one()


def as_owner(client) -> None:
    client.post("/auth/logout")
    login(client, "olga@firm.test")


def owner_reprices(**changes) -> None:
    """What the owner's plan form saves (staff.update_plan), without the Stripe round trip it makes."""
    plan = priority()
    for name, value in changes.items():
        setattr(plan, name, value)
    db.session.commit()


def test_an_invoice_request_records_the_price_and_onboarding_fee_the_client_saw(client, bolt):
    client.post("/client/plans/priority/invoice")

    contract = the_contract(bolt.id)
    assert contract.status == ContractStatus.PENDING
    assert (contract.monthly_price, contract.currency, contract.onboarding_fee) == (Decimal("1290"), "usd",
                                                                                    Decimal("500"))
    page = client.get("/billing/").get_data(as_text=True)
    assert "Your request for Priority is pending, at $1,290 a month, $500 onboarding once" in page


def test_a_request_repriced_before_confirmation_starts_at_the_price_asked_and_the_owner_is_told(client, bolt):
    client.post("/client/plans/priority/invoice")
    request_id = the_contract(bolt.id).id
    owner_reprices(monthly_price=Decimal("1490"))
    as_owner(client)

    listing = client.get("/billing/staff/contracts").get_data(as_text=True)
    assert "asked at $1,290 a month, $500 onboarding once" in listing
    assert "Priority now lists at $1,490 a month, $500 onboarding once; Bolt asked for it on" in listing
    assert "Activate Priority at $1,290 a month, $500 onboarding once" in listing

    response = client.post(f"/billing/staff/contracts/{request_id}/activate", follow_redirects=True)

    page = response.get_data(as_text=True)
    assert "Bolt is now on Priority (pay by invoice) at $1,290 a month, $500 onboarding once." in page
    assert "the contract is confirmed at that price" in page
    contract = the_contract(bolt.id)
    assert contract.status == ContractStatus.ACTIVE
    assert (contract.monthly_price, contract.onboarding_fee) == (Decimal("1290"), Decimal("500"))

    client.post("/auth/logout")
    login(client, "admin@bolt.test")
    billing_page = client.get("/billing/").get_data(as_text=True)
    assert "Priority · $1,290 a month" in billing_page and "$1,490" not in billing_page


def test_a_request_still_at_list_price_is_confirmed_without_a_warning(client, bolt):
    client.post("/client/plans/priority/invoice")
    request_id = the_contract(bolt.id).id
    as_owner(client)

    page = client.post(f"/billing/staff/contracts/{request_id}/activate", follow_redirects=True).get_data(as_text=True)

    assert "Bolt is now on Priority (pay by invoice) at $1,290 a month" in page
    assert "now lists at" not in page and "off sale" not in page
    assert the_contract(bolt.id).status == ContractStatus.ACTIVE


def test_a_plan_taken_off_sale_is_confirmed_only_on_the_owners_word_and_at_the_price_asked(client, bolt):
    client.post("/client/plans/priority/invoice")
    request_id = the_contract(bolt.id).id
    owner_reprices(active=False, monthly_price=Decimal("1490"))
    as_owner(client)

    org_page = client.get(f"/staff/organisations/{bolt.id}").get_data(as_text=True)
    assert "Priority was taken off sale after Bolt asked for it on" in org_page
    assert "Confirm anyway at $1,290 a month, $500 onboarding once" in org_page
    assert "ask Bolt to withdraw the request and choose a plan on sale" in org_page

    # A click without the owner's word (a stale page, a hand-made post) is refused and changes nothing.
    refused = client.post(f"/billing/staff/contracts/{request_id}/activate", follow_redirects=True)
    assert "Priority was taken off sale after Bolt asked for it" in refused.get_data(as_text=True)
    assert the_contract(bolt.id).status == ContractStatus.PENDING

    page = client.post(f"/billing/staff/contracts/{request_id}/activate", data={"honour_off_sale": "yes"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Bolt is now on Priority (pay by invoice) at $1,290 a month" in page
    contract = the_contract(bolt.id)
    assert contract.status == ContractStatus.ACTIVE and contract.monthly_price == Decimal("1290")


def test_a_plan_made_break_fix_since_the_request_cannot_be_confirmed_even_on_the_owners_word(client, bolt):
    client.post("/client/plans/priority/invoice")
    request_id = the_contract(bolt.id).id
    owner_reprices(is_contract=False, monthly_price=Decimal("0"), remote_response_minutes=None,
                   onsite_arrival_minutes=None)
    owner = db.session.scalars(select(User).where(User.email == "olga@firm.test")).one()

    with pytest.raises(billing.BillingError, match="no longer a contract plan.*Ask Bolt to withdraw the request"):
        billing.activate_invoice_contract(request_id, owner, clock.now(), honour_off_sale=True)
    assert the_contract(bolt.id).status == ContractStatus.PENDING

    as_owner(client)
    listing = client.get("/billing/staff/contracts").get_data(as_text=True)
    assert "Priority is no longer a contract plan" in listing
    assert "Confirm anyway" not in listing and "Activate Priority" not in listing


def test_a_card_checkout_records_what_stripe_charges_and_keeps_it_when_the_plan_is_repriced(client, recorder, bolt):
    stripe_answers(recorder)
    assert client.post("/billing/checkout/priority").status_code == 303
    [session] = recorder.calls("POST", "/v1/checkout/sessions")
    contract = the_contract(bolt.id)
    assert (contract.monthly_price, contract.currency, contract.onboarding_fee) == (Decimal("1290"), "usd",
                                                                                    Decimal("500"))
    assert session.form["line_items[1][price_data][unit_amount]"] == "50000"

    # The owner reprices while the client is on Stripe's page: a new Stripe price, which this Checkout never sees.
    owner_reprices(monthly_price=Decimal("1490"), onboarding_fee=Decimal("900"), stripe_price_id="price_priority_1490")
    body, headers = signed(event("checkout.session.completed", checkout_session(contract, customer="cus_rec_1"),
                                 int(clock.now().timestamp())))
    assert client.post("/billing/webhook", data=body, headers=headers).status_code == 200

    contract = the_contract(bolt.id)
    assert contract.status == ContractStatus.ACTIVE
    assert (contract.monthly_price, contract.onboarding_fee) == (Decimal("1290"), Decimal("500"))
    billing_page = client.get("/billing/").get_data(as_text=True)
    assert "Priority · $1,290 a month" in billing_page and "$1,490" not in billing_page


def test_a_card_plan_change_records_the_new_plans_price(client, recorder, bolt):
    stripe_answers(recorder)
    client.post("/billing/checkout/priority")
    contract = the_contract(bolt.id)
    now = int(clock.now().timestamp())
    for kind, obj in (("checkout.session.completed", checkout_session(contract, customer="cus_rec_1")),
                      ("customer.subscription.updated",
                       subscription("active", contract, "price_essentials", customer="cus_rec_1"))):
        body, headers = signed(event(kind, obj, now))
        assert client.post("/billing/webhook", data=body, headers=headers).status_code == 200
        now += 1

    contract = the_contract(bolt.id)
    assert contract.plan.slug == "essentials" and contract.status == ContractStatus.ACTIVE
    assert contract.monthly_price == Decimal("690")
    assert contract.onboarding_fee == Decimal("500")  # paid once with the first Checkout; a switch charges none


def test_the_amount_stripe_bills_is_recorded_over_the_plans_listing(client, recorder, bolt):
    """Essentials repriced while off sale kept its older Stripe price: the contract says what Stripe bills."""
    stripe_answers(recorder)
    client.post("/billing/checkout/priority")
    contract = the_contract(bolt.id)
    essentials = db.session.scalars(select(Plan).where(Plan.slug == "essentials")).one()
    essentials.monthly_price = Decimal("750")
    db.session.commit()
    switched = subscription("active", contract, "price_essentials", customer="cus_rec_1")
    switched["items"]["data"][0]["price"].update(unit_amount=69000, currency="usd")
    now = int(clock.now().timestamp())
    for offset, (kind, obj) in enumerate((("checkout.session.completed", checkout_session(contract, customer="cus_rec_1")),
                                          ("customer.subscription.updated", switched))):
        body, headers = signed(event(kind, obj, now + offset))
        assert client.post("/billing/webhook", data=body, headers=headers).status_code == 200

    contract = the_contract(bolt.id)
    assert contract.plan.slug == "essentials" and (contract.monthly_price, contract.currency) == (Decimal("690"), "usd")


def test_a_contract_written_without_a_price_takes_its_plans_list_price(app):
    """A demo seed or a subscription started in Stripe's dashboard: no page showed a price, the plan's is the one."""
    plan = make_plan("priority", name="Priority", monthly_price=Decimal("1290"), currency="eur")
    org = make_organisation("Acme", plan)
    # a plan written in the same flush, its price and currency left to their defaults
    basic = Plan(slug="basic", name="Basic", remote_response_minutes=60, onsite_arrival_minutes=240)
    other = make_organisation("Bolt")
    db.session.add(Contract(organisation=other, plan=basic, status=ContractStatus.ACTIVE, payment_method="invoice"))
    db.session.commit()

    assert (the_contract(org.id).monthly_price, the_contract(org.id).currency,
            the_contract(org.id).onboarding_fee) == (Decimal("1290"), "eur", Decimal("0"))
    assert (the_contract(other.id).monthly_price, the_contract(other.id).currency) == (Decimal("0"), "usd")


def test_migration_gives_existing_contracts_their_plans_price_and_a_waiting_first_request_its_fee(tmp_path):
    from flask_migrate import upgrade
    from sqlalchemy import text

    from portal import create_app
    from tests.conftest import base_config

    app = create_app(base_config("sqlite:///" + str(tmp_path / "before.sqlite3")))
    with app.app_context():
        upgrade(revision="5e2a7c19b4d3")
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO plan (id, slug, name, summary, monthly_price, currency, is_contract, coverage, "
                "after_hours_emergencies, hourly_rate, minimum_term_months, onboarding_fee, display_order, active) "
                "VALUES (1, 'priority', 'Priority', '', 1290, 'eur', 1, 'business_hours', 0, 0, 0, 500, 1, 1)"))
            for org in (1, 2):
                connection.execute(text(
                    "INSERT INTO organisation (id, name, site_address, timezone, created_at) "
                    f"VALUES ({org}, 'Org {org}', '1 Main St', 'UTC', '2026-01-01 00:00:00')"))
            for contract, org, status in ((1, 1, "active"), (2, 1, "pending"), (3, 2, "pending")):
                connection.execute(text(
                    "INSERT INTO contract (id, organisation_id, plan_id, status, payment_method, "
                    "cancel_at_period_end, created_at, updated_at) VALUES "
                    f"({contract}, {org}, 1, '{status}', 'invoice', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        upgrade()
        rows = {c.id: (c.monthly_price, c.currency, c.onboarding_fee)
                for c in db.session.scalars(select(Contract))}
        assert rows == {
            1: (Decimal("1290"), "eur", Decimal("0")),
            2: (Decimal("1290"), "eur", Decimal("0")),    # asked while under contract: no fee was shown
            3: (Decimal("1290"), "eur", Decimal("500")),  # a first contract: the fee the pages showed
        }
        db.session.remove()
        db.engine.dispose()
