"""Checkout Sessions, billing-portal sessions and the catalogue sync, checked at the HTTP level.

localstripe has no prices, Checkout or billing portal, so the stripe library talks to a recording
server on loopback; the tests assert what the portal sent and give Stripe's documented answers.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Contract, ContractStatus, Organisation, Plan, Role
from tests.conftest import login, make_organisation, make_plan, make_user
from tests.staff.helpers import staff
from tests.staff.test_rota import plan_form

from .conftest import stripe_config
from .helpers import paid_plans, open_ticket
from .recording_server import Recorded, RecordingServer


def stripe_answers(recorder: RecordingServer) -> None:
    def answer(r: Recorded):
        if r.method == "POST" and r.path == "/v1/customers":
            return 200, {"id": "cus_rec_1", "object": "customer", "name": r.form.get("name")}
        if r.method == "POST" and r.path == "/v1/checkout/sessions":
            n = len(recorder.calls("POST", "/v1/checkout/sessions"))
            return 200, {"id": f"cs_rec_{n}", "object": "checkout.session", "mode": r.form.get("mode"),
                         "url": f"https://checkout.stripe.com/c/pay/cs_rec_{n}"}
        if r.method == "POST" and r.path == "/v1/billing_portal/sessions":
            return 200, {"id": "bps_rec_1", "object": "billing_portal.session",
                         "url": "https://billing.stripe.com/p/session/bps_rec_1"}
        return None

    recorder.answer(answer)


@pytest.fixture
def app(make_app, recorder):
    app = make_app(**stripe_config(recorder.url))
    with app.app_context():
        yield app


@pytest.fixture
def admin(client):
    org = make_organisation("Bolt")
    make_user("admin@bolt.example", organisation=org)
    login(client, "admin@bolt.example")
    return org


def test_checkout_session_is_created_for_the_customer_in_subscription_mode(client, recorder, admin):
    stripe_answers(recorder)
    _, priority = paid_plans()

    response = client.post("/billing/checkout/priority")

    assert response.status_code == 303
    assert response.headers["Location"] == "https://checkout.stripe.com/c/pay/cs_rec_1"
    [customer] = recorder.calls("POST", "/v1/customers")
    assert customer.form["metadata[organisation_id]"] == str(admin.id)
    assert customer.headers["idempotency-key"].startswith(f"customer-org-{admin.id}-")
    [session] = recorder.calls("POST", "/v1/checkout/sessions")
    contract = db.session.scalars(select(Contract)).one()
    form = session.form
    assert form["mode"] == "subscription"
    assert form["customer"] == "cus_rec_1"
    assert form["client_reference_id"] == str(admin.id)
    assert form["line_items[0][price]"] == "price_priority" and form["line_items[0][quantity]"] == "1"
    # the onboarding fee is a one-time line on the first invoice
    assert form["line_items[1][price_data][unit_amount]"] == "50000"
    assert form["line_items[1][price_data][currency]"] == "usd"
    assert "line_items[1][price_data][recurring][interval]" not in form
    assert form["success_url"] == "http://portal.test/billing/success?session_id={CHECKOUT_SESSION_ID}"
    assert form["cancel_url"] == "http://portal.test/billing/cancelled"
    assert form["metadata[contract_id]"] == str(contract.id)
    assert form["subscription_data[metadata][contract_id]"] == str(contract.id)
    assert session.headers["idempotency-key"] == f"checkout-cus_rec_1-{contract.id}-priority-0"
    assert session.headers["authorization"] == "Bearer sk_test_portal_offline"
    # pending until Stripe's webhook says it is paid; the browser coming back changes nothing
    assert (contract.status, contract.payment_method, contract.stripe_checkout_session_id) == (
        ContractStatus.PENDING, "card", "cs_rec_1")
    assert "Stripe is confirming your payment" in client.get("/billing/success?session_id=cs_rec_1").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Contract, contract.id).status == ContractStatus.PENDING


def test_the_customer_is_created_once_and_reused(client, recorder, admin):
    stripe_answers(recorder)
    essentials, _ = paid_plans()
    client.post("/billing/checkout/priority")
    client.post("/billing/checkout/essentials")  # changed their mind before paying

    assert len(recorder.calls("POST", "/v1/customers")) == 1
    sessions = recorder.calls("POST", "/v1/checkout/sessions")
    assert [s.form["customer"] for s in sessions] == ["cus_rec_1", "cus_rec_1"]
    assert sessions[1].form["line_items[0][price]"] == "price_essentials"
    assert "line_items[1][price_data][unit_amount]" not in sessions[1].form  # Essentials has no onboarding fee
    contract = db.session.scalars(select(Contract)).one()  # the abandoned request was replaced, not duplicated
    assert contract.plan_id == essentials.id
    assert db.session.get(Organisation, admin.id).stripe_customer_id == "cus_rec_1"


def test_emergency_upgrade_checkout_names_the_ticket(client, recorder, admin, now):
    stripe_answers(recorder)
    paid_plans()
    ticket = open_ticket(admin, now)
    response = client.post(f"/billing/tickets/{ticket.id}/upgrade/priority")
    assert response.status_code == 303
    [session] = recorder.calls("POST", "/v1/checkout/sessions")
    assert session.form["metadata[ticket_id]"] == str(ticket.id)
    assert session.headers["idempotency-key"].endswith(f"-priority-{ticket.id}")


def test_stripe_refusal_gives_a_clear_message_and_leaves_no_contract(client, recorder, admin):
    recorder.answer(lambda r: (200, {"id": "cus_rec_1", "object": "customer"}) if r.path == "/v1/customers" else None)
    recorder.answer(lambda r: (400, {"error": {"type": "invalid_request_error", "message": "No such price"}})
                    if r.path == "/v1/checkout/sessions" else None)
    paid_plans()
    page = client.post("/billing/checkout/priority", follow_redirects=True).get_data(as_text=True)
    assert "Stripe could not complete the request. Nothing was changed" in page
    assert db.session.scalars(select(Contract)).all() == []


def test_stripe_unreachable_gives_a_clear_message_and_changes_nothing(make_app, now):
    app = make_app(**stripe_config("http://127.0.0.1:9"))  # nothing listens on the discard port
    with app.app_context():
        client = app.test_client()
        org = make_organisation("Bolt")
        make_user("admin@bolt.example", organisation=org)
        login(client, "admin@bolt.example")
        paid_plans()
        page = client.post("/billing/checkout/priority", follow_redirects=True).get_data(as_text=True)
        assert "could not reach Stripe" in page and "Nothing was changed" in page
        assert db.session.scalars(select(Contract)).all() == []
        assert db.session.get(Organisation, org.id).stripe_customer_id is None


def test_billing_portal_session_for_the_customer(client, recorder, admin):
    stripe_answers(recorder)
    admin.stripe_customer_id = "cus_rec_1"
    db.session.commit()
    response = client.post("/billing/portal")
    assert response.status_code == 303
    assert response.headers["Location"] == "https://billing.stripe.com/p/session/bps_rec_1"
    [call] = recorder.calls("POST", "/v1/billing_portal/sessions")
    assert call.form == {"customer": "cus_rec_1", "return_url": "http://portal.test/billing/"}
    assert call.headers["idempotency-key"].startswith(f"portal-{admin.id}-")


def test_billing_portal_without_a_customer_explains(client, recorder, admin):
    page = client.post("/billing/portal", follow_redirects=True).get_data(as_text=True)
    assert "no card account yet" in page
    assert recorder.requests == []


def test_members_cannot_manage_billing(client, recorder):
    org = make_organisation("Bolt")
    make_user("member@bolt.example", role=Role.CLIENT_MEMBER, organisation=org)
    login(client, "member@bolt.example")
    paid_plans()
    assert client.get("/billing/").status_code == 403
    assert client.post("/billing/checkout/priority").status_code == 403
    assert client.post("/billing/portal").status_code == 403
    assert client.post("/billing/cancel").status_code == 403
    assert recorder.requests == []


# --- flask stripe sync-plans -----------------------------------------------------------------


class FakeCatalogue:
    """Stripe's product and price endpoints as documented, kept in memory for the sync tests."""

    def __init__(self) -> None:
        self.products: dict[str, dict] = {}
        self.prices: list[dict] = []

    def __call__(self, r: Recorded):
        if r.path.startswith("/v1/products/") and r.method == "GET":
            product = self.products.get(r.path.rsplit("/", 1)[1])
            return (200, product) if product else (404, {"error": {"type": "invalid_request_error",
                                                                   "message": "No such product"}})
        if r.path.startswith("/v1/products/") and r.method == "POST":
            product = self.products[r.path.rsplit("/", 1)[1]]
            product.update(name=r.form.get("name", product["name"]))
            return 200, product
        if r.path == "/v1/products" and r.method == "POST":
            product = {"id": r.form["id"], "object": "product", "name": r.form["name"], "active": True}
            self.products[product["id"]] = product
            return 200, product
        if r.path == "/v1/prices" and r.method == "GET":
            key = r.query.get("lookup_keys[0]")
            found = [p for p in self.prices if p["lookup_key"] == key and p["active"]]
            return 200, {"object": "list", "data": found[:1], "has_more": False, "url": "/v1/prices"}
        if r.path == "/v1/prices" and r.method == "POST":
            if r.form.get("transfer_lookup_key") == "true":
                for old in self.prices:
                    if old["lookup_key"] == r.form["lookup_key"]:
                        old["lookup_key"] = None
            price = {"id": f"price_rec_{len(self.prices) + 1}", "object": "price", "active": True,
                     "product": r.form["product"], "unit_amount": int(r.form["unit_amount"]),
                     "currency": r.form["currency"], "lookup_key": r.form["lookup_key"],
                     "recurring": {"interval": r.form["recurring[interval]"]}}
            self.prices.append(price)
            return 200, price
        return None


def test_sync_plans_creates_products_and_prices_once(app, recorder):
    catalogue = FakeCatalogue()
    recorder.answer(catalogue)
    from tests.conftest import make_plan

    make_plan("break-fix", name="Break/Fix")
    make_plan("priority", name="Priority")
    runner = app.test_cli_runner()

    first = runner.invoke(args=["stripe", "sync-plans"])
    assert first.exit_code == 0, first.output
    creates = [r for r in recorder.requests if r.method == "POST"]
    assert [r.path for r in creates] == ["/v1/products", "/v1/prices"]  # break/fix is not sold
    product, price = creates
    assert product.form["id"] == "portal-plan-priority" and product.headers["idempotency-key"] == "product-priority"
    assert price.form["lookup_key"] == "priority" and price.form["recurring[interval]"] == "month"
    assert price.form["unit_amount"] == "129000" and price.form["currency"] == "usd"
    assert price.headers["idempotency-key"] == "price-priority-129000-usd-first"
    plan = db.session.scalars(select(Plan).where(Plan.slug == "priority")).one()
    assert (plan.stripe_product_id, plan.stripe_price_id) == ("portal-plan-priority", "price_rec_1")

    recorder.requests.clear()
    second = runner.invoke(args=["stripe", "sync-plans"])
    assert second.exit_code == 0, second.output
    assert [r for r in recorder.requests if r.method == "POST"] == []
    assert recorder.calls("GET", "/v1/prices")[0].query["lookup_keys[0]"] == "priority"
    assert "0 updated, 1 unchanged" in second.output


def test_sync_plans_after_a_price_change_moves_the_lookup_key_to_a_new_price(app, recorder):
    from decimal import Decimal

    from tests.conftest import make_plan

    catalogue = FakeCatalogue()
    recorder.answer(catalogue)
    plan = make_plan("priority", name="Priority")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["stripe", "sync-plans"]).exit_code == 0
    plan.monthly_price = Decimal("1390")
    db.session.commit()
    recorder.requests.clear()

    result = runner.invoke(args=["stripe", "sync-plans"])

    assert result.exit_code == 0, result.output
    [created] = [r for r in recorder.requests if r.method == "POST"]
    assert created.form["unit_amount"] == "139000" and created.form["transfer_lookup_key"] == "true"
    assert created.headers["idempotency-key"] == "price-priority-139000-usd-price_rec_1"
    db.session.expire_all()
    assert db.session.get(Plan, plan.id).stripe_price_id == "price_rec_2"


def test_a_card_plans_new_price_is_priced_in_stripe_as_the_owner_saves_it(client, recorder):
    """Checkout and plan changes charge the plan's Stripe price: a price saved on the plan form gets
    its Stripe price in the same step, so card clients are never charged another amount than the
    plans page shows. Changing what Stripe does not hold (the order on the page) asks Stripe nothing."""
    catalogue = FakeCatalogue()
    recorder.answer(catalogue)
    plan = make_plan("priority", name="Priority")
    assert client.application.test_cli_runner().invoke(args=["stripe", "sync-plans"]).exit_code == 0
    staff(client, Role.OWNER)
    recorder.requests.clear()

    saved = client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, monthly_price="1,390"))

    assert saved.status_code == 302
    [created] = [r for r in recorder.requests if r.method == "POST"]
    assert created.path == "/v1/prices" and created.form["unit_amount"] == "139000"
    db.session.expire_all()
    plan = db.session.get(Plan, plan.id)
    assert (plan.monthly_price, plan.stripe_price_id) == (Decimal("1390.00"), "price_rec_2")

    recorder.requests.clear()
    assert client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, display_order="7")).status_code == 302
    assert recorder.requests == []


def test_a_plan_repriced_while_off_sale_is_priced_in_stripe_when_it_goes_back_on_sale(client, recorder):
    """Priced in Stripe at $1,290, taken off sale, repriced to $1,390 (nothing asked of Stripe for a plan not
    sold), then put back on sale: the save asked Stripe nothing, so Checkout charged $1,290 while the plans
    page showed $1,390."""
    catalogue = FakeCatalogue()
    recorder.answer(catalogue)
    plan = make_plan("priority", name="Priority")
    assert client.application.test_cli_runner().invoke(args=["stripe", "sync-plans"]).exit_code == 0
    staff(client, Role.OWNER)
    retired = plan_form(plan, monthly_price="1390")
    del retired["active"]
    assert client.post(f"/staff/plans/{plan.id}", data=retired).status_code == 302
    db.session.expire_all()
    plan = db.session.get(Plan, plan.id)
    assert (plan.monthly_price, plan.active) == (Decimal("1390.00"), False)

    assert client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, active="y")).status_code == 302

    db.session.expire_all()
    plan = db.session.get(Plan, plan.id)
    [price] = [p for p in catalogue.prices if p["id"] == plan.stripe_price_id]
    assert (plan.active, price["unit_amount"]) == (True, 139000)


def test_a_price_stripe_could_not_take_is_not_saved(client, recorder):
    recorder.answer(lambda r: (500, {"error": {"type": "api_error", "message": "Stripe is down"}}))
    plan = make_plan("priority", name="Priority", stripe_price_id="price_old")
    staff(client, Role.OWNER)

    refused = client.post(f"/staff/plans/{plan.id}", data=plan_form(plan, monthly_price="1390"))

    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Stripe could not be reached, so nothing was saved" in page and 'value="1390"' in page
    db.session.expire_all()
    plan = db.session.get(Plan, plan.id)
    assert (plan.monthly_price, plan.stripe_price_id) == (Decimal("1290.00"), "price_old")


def test_sync_plans_without_a_key_says_so(make_app):
    app = make_app()
    result = app.test_cli_runner().invoke(args=["stripe", "sync-plans"])
    assert result.exit_code != 0 and "STRIPE_SECRET_KEY is not set" in result.output


def test_leaving_checkout_withdraws_the_request_and_a_late_payment_still_counts(client, recorder, admin):
    from .conftest import signed
    from .helpers import checkout_session, event

    stripe_answers(recorder)
    paid_plans()
    client.post("/billing/checkout/priority")
    contract = db.session.scalars(select(Contract)).one()

    page = client.get("/billing/cancelled").get_data(as_text=True)

    assert "Nothing was charged" in page and "Withdraw the request for Priority" in page
    db.session.expire_all()
    assert db.session.get(Contract, contract.id).status == ContractStatus.PENDING, "a GET changes nothing"
    page = client.post("/billing/request/withdraw", follow_redirects=True).get_data(as_text=True)
    assert "request for Priority is withdrawn" in page
    db.session.expire_all()
    assert db.session.get(Contract, contract.id).status == ContractStatus.CANCELED
    assert "pending" not in client.get("/billing/").get_data(as_text=True)

    body, headers = signed(event("checkout.session.completed", checkout_session(contract, customer="cus_rec_1"),
                                 1_790_000_000))
    assert client.post("/billing/webhook", data=body, headers=headers).status_code == 200
    db.session.expire_all()
    revived = db.session.get(Contract, contract.id)
    assert revived.status == ContractStatus.ACTIVE and revived.ends_at is None


def test_cancelling_names_the_last_paid_day_as_the_billing_page_does(client, recorder, admin):
    """A period ending at 02:00 UTC ends on the evening before in New York: the message said
    "04 January 2027" while the billing page's "Paid until" read 03 Jan 2027."""
    from datetime import datetime, timezone

    _, priority = paid_plans()
    period_end = datetime(2027, 1, 4, 2, 0, tzinfo=timezone.utc)  # Sun 3 Jan 2027 21:00 in New York
    contract = Contract(organisation_id=admin.id, plan_id=priority.id, status=ContractStatus.ACTIVE,
                        payment_method="card", stripe_subscription_id="sub_rec_1", current_period_end=period_end)
    db.session.add(contract)
    db.session.commit()

    def answer(r: Recorded):
        if r.method == "POST" and r.path == "/v1/subscriptions/sub_rec_1":
            return 200, {"id": "sub_rec_1", "object": "subscription", "status": "active", "cancel_at_period_end": True,
                         "current_period_end": int(period_end.timestamp())}
        return None

    recorder.answer(answer)
    page = client.post("/billing/cancel", follow_redirects=True).get_data(as_text=True)

    assert "Your Priority contract will end on 3 Jan 2027; until then nothing changes." in page
    assert "Paid until</dt><dd>03 Jan 2027" in page
    assert "04 January" not in page
