"""The emergency upgrade panel, the pay-by-invoice path without keys, and the owner's activation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.models import Contract, ContractStatus, Plan, QueueEntry, Role, TicketEvent, TicketStatus, User
from portal.services import queue, sla, tickets
from portal.templating import ordinal
from tests.conftest import login, make_organisation, make_plan
from tests.services.conftest import add_technician, make_user, ticket_input

from .conftest import signed, stripe_config
from .helpers import checkout_session, event
from .test_checkout_http import stripe_answers


@pytest.fixture
def app(make_app, recorder):
    app = make_app(**stripe_config(recorder.url))
    with app.app_context():
        yield app


@pytest.fixture
def world(app):
    """Acme on Priority with three open tickets; Bolt on break/fix with its tills down; one technician."""
    now = clock.now()
    priority = make_plan("priority", name="Priority", stripe_price_id="price_priority", onboarding_fee=Decimal("500"),
                         minimum_term_months=12, display_order=2)
    make_plan("premium", name="Premium 24/7", monthly_price=Decimal("2490"), coverage="24x7",
              stripe_price_id="price_premium", display_order=3)
    make_plan("break-fix", name="Break/Fix")
    acme = make_organisation("Acme", priority)
    bolt = make_organisation("Bolt")
    add_technician("tom@firm.test", ["network", "server"], on_call=(now - timedelta(days=3), now + timedelta(days=4)))
    acme_admin = make_user("admin@acme.test", organisation=acme)
    bolt_admin = make_user("admin@bolt.test", organisation=bolt)
    make_user("member@bolt.test", Role.CLIENT_MEMBER, organisation=bolt)
    for i in range(3):
        tickets.open_ticket(acme.id, acme_admin.id, ticket_input(title=f"Acme {i}", impact="department"), now, None)
    tills = tickets.open_ticket(bolt.id, bolt_admin.id, ticket_input(title="Tills down", impact="company"), now, None)
    return {"acme": acme, "bolt": bolt, "ticket": tills.ticket, "priority": priority}


def saved_queue() -> list[tuple]:
    db.session.expire_all()
    return [(e.ticket_id, e.position, e.eta_median) for e in db.session.scalars(select(QueueEntry).order_by(QueueEntry.ticket_id))]


def test_panel_shows_each_paid_plan_with_place_estimate_price_and_fee_and_writes_nothing(client, world):
    ticket = world["ticket"]
    before = saved_queue()
    login(client, "admin@bolt.test")

    page = client.get(f"/billing/tickets/{ticket.id}/upgrade").get_data(as_text=True)

    quotes = queue.quote_upgrade(ticket.id, clock.now()).plans
    assert [plan.slug for plan, _ in quotes] == ["priority", "premium"]
    current = queue.entry_for(ticket.id)
    ahead = f"{current.ahead} ticket{'s' if current.ahead != 1 else ''} ahead of you" if current.ahead else "you are next"
    assert f"<strong>{ordinal(current.position)} in line</strong>: {ahead}" in page  # the status page's words
    # On a phone each plan is a card (table.stack) with its own labels, so the pay button is not off-screen.
    assert '<table class="stack">' in page and 'data-label="Technician expected"' in page
    for plan, quote in quotes:
        assert plan.name in page
        assert f"{ordinal(quote.position)} ({quote.ahead} ahead)" in page
        assert quote.position <= current.position
    assert "$1,290 a month, 12-month minimum from today" in page and "$500" in page and "$2,490 a month" in page
    assert page.count("Upgrade and pay") == 2
    assert saved_queue() == before


def test_members_see_the_panel_but_cannot_pay(client, world):
    """A member in an emergency reads who can upgrade, by name, not only "ask an admin"."""
    login(client, "member@bolt.test")
    page = client.get(f"/billing/tickets/{world['ticket'].id}/upgrade").get_data(as_text=True)
    assert "Only an admin of Bolt can upgrade: ask Test Person (admin@bolt.test)." in page
    assert "Upgrade and pay" not in page
    assert client.post(f"/billing/tickets/{world['ticket'].id}/upgrade/priority").status_code == 403


def test_a_member_is_not_told_to_withdraw_a_request_only_an_admin_can_withdraw(client, world):
    """Found as a member of an organisation whose admin had asked for a plan by invoice: every plan on the
    upgrade panel, the plans page and the plan pages read "withdraw the pending one first", which a
    member can neither do nor open the billing page for. They are told which admin can."""
    ticket = world["ticket"]
    login(client, "admin@bolt.test")
    client.post("/client/plans/priority/invoice")
    client.post("/auth/logout")
    login(client, "member@bolt.test")
    ask = "Only an admin of Bolt can change the plan: ask Test Person (admin@bolt.test)."
    for path in (f"/billing/tickets/{ticket.id}/upgrade", "/plans", "/plans/premium", "/client/plans/premium"):
        page = client.get(path).get_data(as_text=True)
        assert "You already have a plan request waiting for confirmation: Priority" in page, path
        assert ask in page, path
        assert "withdraw the pending one first" not in page and "Withdraw the request" not in page, path


def test_another_organisations_ticket_is_not_found(client, world):
    login(client, "admin@acme.test")
    assert client.get(f"/billing/tickets/{world['ticket'].id}/upgrade").status_code == 404
    assert client.post(f"/billing/tickets/{world['ticket'].id}/upgrade/priority").status_code == 404
    assert client.get("/billing/tickets/999999/upgrade").status_code == 404


def test_contract_clients_are_quoted_the_dearer_plans_only(client, world):
    """Acme is on Priority (by invoice): its emergency is quoted under Premium 24/7, with the
    invoice request as the way there; its own plan and cheaper ones are not offered."""
    login(client, "admin@acme.test")
    acme_ticket = db.session.scalars(select(QueueEntry).where(QueueEntry.organisation_id == world["acme"].id)).first()
    page = client.get(f"/billing/tickets/{acme_ticket.ticket_id}/upgrade").get_data(as_text=True)
    assert "Now, on Priority" in page and '<th scope="row">Premium 24/7</th>' in page
    assert '<th scope="row">Priority</th>' not in page
    assert 'action="/client/plans/premium/invoice"' in page and "Upgrade and pay" not in page
    card = db.session.scalars(select(Contract).where(Contract.organisation_id == world["acme"].id)).one()
    card.payment_method, card.stripe_subscription_id = "card", "sub_acme"
    db.session.commit()
    page = client.get(f"/billing/tickets/{acme_ticket.ticket_id}/upgrade").get_data(as_text=True)
    assert 'action="/billing/change-plan"' in page and 'name="plan" value="premium"' in page
    assert "Switch now (the difference is prorated)" in page
    # The switch leads back to the emergency it was asked for, never to another site.
    assert f'name="next" value="/client/tickets/{acme_ticket.ticket_id}"' in page
    back = client.post("/billing/change-plan", data={"plan": "nope", "next": f"/client/tickets/{acme_ticket.ticket_id}"})
    assert back.headers["Location"].endswith(f"/client/tickets/{acme_ticket.ticket_id}")
    away = client.post("/billing/change-plan", data={"plan": "nope", "next": "//elsewhere.example/x"})
    assert away.headers["Location"].endswith("/billing/")


def test_a_client_on_the_dearest_plan_is_told_no_plan_is_faster(client, world):
    premium = db.session.scalars(select(Contract).where(Contract.organisation_id == world["acme"].id)).one()
    premium.plan = db.session.scalars(select(Plan).where(Plan.slug == "premium")).one()
    db.session.commit()
    login(client, "admin@acme.test")
    acme_ticket = db.session.scalars(select(QueueEntry).where(QueueEntry.organisation_id == world["acme"].id)).first()
    page = client.get(f"/billing/tickets/{acme_ticket.ticket_id}/upgrade").get_data(as_text=True)
    assert "You are on Premium 24/7: no plan of ours would serve this ticket sooner." in page


def test_a_pending_invoice_request_can_be_withdrawn_and_blocks_a_second_one(client, world):
    ticket = world["ticket"]
    login(client, "admin@bolt.test")
    response = client.post("/client/plans/priority/invoice", data={"next": f"/client/tickets/{ticket.id}"})
    assert response.headers["Location"].endswith(f"/client/tickets/{ticket.id}")  # back to the emergency
    again = client.post("/client/plans/priority/invoice", data={"next": "https://evil.example/"})
    assert again.headers["Location"].endswith("/client/")  # the same request is the one waiting; never off-site
    assert client.post("/client/plans/premium/invoice").headers["Location"].endswith(
        "/client/plans/premium")  # another plan is refused: one request at a time
    page = client.get(f"/billing/tickets/{ticket.id}/upgrade").get_data(as_text=True)
    assert "Your request for Priority is pending" in page and "Withdraw the request for Priority" in page
    assert "Upgrade and pay" not in page and "Request, pay by invoice" not in page
    assert "withdraw the pending one first" in page
    assert "waiting for the firm to confirm it" in client.get("/billing/success").get_data(as_text=True)
    response = client.post("/billing/request/withdraw", data={"next": f"/billing/tickets/{ticket.id}/upgrade"},
                           follow_redirects=True)
    assert "Your request for Priority is withdrawn" in response.get_data(as_text=True)
    assert "Upgrade and pay" in response.get_data(as_text=True)
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == world["bolt"].id)).one()
    assert contract.status == ContractStatus.CANCELED
    again = client.post("/billing/request/withdraw", follow_redirects=True).get_data(as_text=True)
    assert "There is no plan request waiting to withdraw." in again


def test_paying_the_emergency_upgrade_moves_the_ticket_once_stripe_confirms(client, recorder, world):
    stripe_answers(recorder)
    ticket = world["ticket"]
    login(client, "admin@bolt.test")
    before = queue.entry_for(ticket.id).position
    promised = dict((p.slug, q) for p, q in queue.quote_upgrade(ticket.id, clock.now()).plans)["priority"]

    response = client.post(f"/billing/tickets/{ticket.id}/upgrade/priority")

    assert response.status_code == 303
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == world["bolt"].id)).one()
    assert contract.status == ContractStatus.PENDING
    assert queue.entry_for(ticket.id).position == before  # nothing moves on the way to Stripe
    [session] = recorder.calls("POST", "/v1/checkout/sessions")
    assert session.form["metadata[ticket_id]"] == str(ticket.id)

    body, headers = signed(event("checkout.session.completed",
                                 checkout_session(contract, customer="cus_rec_1", ticket_id=ticket.id),
                                 int(clock.now().timestamp())))
    assert client.post("/billing/webhook", data=body, headers=headers).status_code == 200

    db.session.expire_all()
    assert db.session.get(Contract, contract.id).status == ContractStatus.ACTIVE
    after = queue.entry_for(ticket.id)
    assert after.position == promised.position < before
    upgraded = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                            TicketEvent.kind == "upgraded")).one()
    assert upgraded.public and f"now number {after.position} in the queue" in upgraded.message
    if after.eta_median is not None:  # in the firm's time, not UTC
        assert "UTC" not in upgraded.message and "technician expected around" in upgraded.message


def test_a_second_emergency_upgrade_of_the_same_ticket_is_noted_once_too(client, recorder, world):
    """The contract of the first upgrade lapsed and the client upgrades again while the ticket waits:
    that upgrade gets its own line; Stripe sending its event again adds none."""
    stripe_answers(recorder)
    ticket = world["ticket"]
    login(client, "admin@bolt.test")

    def upgrade_and_pay(subscription: str) -> tuple:
        client.post(f"/billing/tickets/{ticket.id}/upgrade/priority")
        contract = db.session.scalars(select(Contract).where(Contract.organisation_id == world["bolt"].id,
                                                             Contract.status == ContractStatus.PENDING)).one()
        body, headers = signed(event("checkout.session.completed",
                                     checkout_session(contract, sub_id=subscription, customer="cus_rec_1",
                                                      ticket_id=ticket.id), int(clock.now().timestamp())))
        assert client.post("/billing/webhook", data=body, headers=headers).status_code == 200
        return contract, body, headers

    first, body, headers = upgrade_and_pay("sub_test_1")
    client.post("/billing/webhook", data=body, headers=headers)
    db.session.expire_all()
    db.session.get(Contract, first.id).status = ContractStatus.CANCELED
    db.session.commit()
    sla.rebase_organisation(world["bolt"].id, clock.now(), "contract ended")
    second, *_ = upgrade_and_pay("sub_test_2")

    notes = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                         TicketEvent.kind == "upgraded").order_by(TicketEvent.id)).all()
    assert [note.detail["contract_id"] for note in notes] == [first.id, second.id]


def test_without_stripe_keys_the_invoice_path_is_offered(make_app):
    app = make_app()
    with app.app_context():
        client = app.test_client()
        make_plan("priority", name="Priority", stripe_price_id="price_priority")
        bolt = make_organisation("Bolt")
        make_user("admin@bolt.test", organisation=bolt)
        login(client, "admin@bolt.test")
        page = client.get("/client/plans/priority").get_data(as_text=True)
        assert "pay by invoice" in page and "pay by card" not in page
        refused = client.post("/billing/checkout/priority", follow_redirects=True).get_data(as_text=True)
        assert "Card payments are not set up" in refused
        overview = client.get("/billing/").get_data(as_text=True)
        assert "break/fix" in overview and "billing portal" not in overview
        assert db.session.scalars(select(Contract)).all() == []


def test_card_button_shown_when_stripe_is_configured(client, world):
    login(client, "admin@bolt.test")
    page = client.get("/client/plans/priority").get_data(as_text=True)
    assert "Subscribe to Priority, pay by card" in page and "one-time onboarding fee of $500" in page


def test_owner_activates_an_invoiced_request_and_tickets_are_rebased(client, world):
    bolt, ticket = world["bolt"], world["ticket"]
    login(client, "admin@bolt.test")
    client.post("/client/plans/priority/invoice")
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == bolt.id)).one()
    assert contract.status == ContractStatus.PENDING and contract.payment_method == "invoice"
    client.post("/auth/logout")

    make_user("dana@firm.test", Role.DISPATCHER)
    login(client, "dana@firm.test")
    assert client.get("/billing/staff/contracts").status_code == 403
    assert client.post(f"/billing/staff/contracts/{contract.id}/activate").status_code == 403
    client.post("/auth/logout")

    make_user("olga@firm.test", Role.OWNER)
    login(client, "olga@firm.test")
    listing = client.get("/billing/staff/contracts").get_data(as_text=True)
    assert "Bolt" in listing and "Priority" in listing
    assert '<table class="stack">' in listing  # one card per request on a phone: the Activate button stays on screen
    org_page = client.get(f"/staff/organisations/{bolt.id}").get_data(as_text=True)
    assert "Plan requests (pay by invoice)" in org_page and "Activate Priority" in org_page
    response = client.post(f"/billing/staff/contracts/{contract.id}/activate",
                           data={"next": f"/staff/organisations/{bolt.id}"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/staff/organisations/{bolt.id}")
    page = client.get(f"/staff/organisations/{bolt.id}").get_data(as_text=True)
    assert "Bolt is now on Priority (pay by invoice)" in page and "Activate Priority" not in page

    db.session.expire_all()
    contract = db.session.get(Contract, contract.id)
    assert contract.status == ContractStatus.ACTIVE and contract.starts_at is not None
    assert contract.minimum_term_ends_at is not None and contract.minimum_term_ends_at > contract.starts_at
    assert db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id, TicketEvent.message.contains("Priority contract active (confirmed by the firm)")
    )).first()
    again = client.post(f"/billing/staff/contracts/{contract.id}/activate", follow_redirects=True).get_data(as_text=True)
    assert "already active" in again


def test_an_upgrade_activated_at_night_pages_the_on_call_technician_and_tells_the_client(client, monkeypatch, app):
    """Bolt (break/fix) has its tills down on a Friday night: its ticket waits for Monday. Once the
    owner activates Bolt's Premium 24/7 request, the ticket is an after-hours emergency like one
    opened now: the on-call technician is paged (once), the ticket's timeline says so, and Bolt's
    admin is told the new place, estimate, guarantee and the page."""
    from datetime import datetime, timezone

    from portal.models import OutboxMessage

    friday_22_ny = datetime(2026, 11, 21, 3, 0, tzinfo=timezone.utc)
    monkeypatch.setattr("portal.clock.now", lambda: friday_22_ny)
    make_plan("break-fix", name="Break/Fix")
    make_plan("premium", name="Premium 24/7", coverage="24x7", after_hours_emergencies=True,
              remote_response_minutes=30, onsite_arrival_minutes=120, minimum_term_months=1)
    bolt = make_organisation("Bolt")
    admin = make_user("admin@bolt.test", organisation=bolt)
    add_technician("tom@firm.test", ["network"], on_call=(friday_22_ny - timedelta(hours=3),
                                                           friday_22_ny + timedelta(hours=10)))
    tills = tickets.open_ticket(bolt.id, admin.id, ticket_input(title="Tills down", impact="company"),
                                friday_22_ny, None).ticket
    def pages():
        return db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "staff_alert_on_call")).all()
    assert pages() == []
    login(client, "admin@bolt.test")
    client.post("/client/plans/premium/invoice")
    client.post("/auth/logout")
    make_user("olga@firm.test", Role.OWNER)
    login(client, "olga@firm.test")
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == bolt.id)).one()
    assert client.post(f"/billing/staff/contracts/{contract.id}/activate").status_code == 302

    [page] = pages()
    assert page.recipient == "tom@firm.test"
    assert "Bolt upgraded to Premium 24/7" in page.body and "now an after-hours emergency" in page.body
    assert db.session.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == tills.id, TicketEvent.kind == "after_hours",
        TicketEvent.message.contains("on-call technician has been paged"))).one().public
    [told] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_upgraded")).all()
    assert told.recipient == "admin@bolt.test" and "Your Premium 24/7 contract is active" in told.body
    assert "1st in line" in told.body and "on-call technician has been paged" in told.body


def test_billing_overview_for_a_card_contract_offers_change_cancel_and_portal(client, world):
    acme = world["acme"]
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == acme.id)).one()
    contract.payment_method, contract.stripe_subscription_id = "card", "sub_x"
    acme.stripe_customer_id = "cus_acme"
    db.session.commit()
    login(client, "admin@acme.test")
    page = client.get("/billing/").get_data(as_text=True)
    assert "Change plan" in page and "Premium 24/7" in page
    assert "Cancel at the end of the paid period" in page and "Open the Stripe billing portal" in page


def test_owner_cannot_activate_an_invoice_request_over_a_card_subscription(client, world):
    acme = world["acme"]
    card = db.session.scalars(select(Contract).where(Contract.organisation_id == acme.id)).one()
    card.payment_method, card.stripe_subscription_id = "card", "sub_acme"
    premium_request = Contract(organisation_id=acme.id, plan_id=card.plan_id + 1, status=ContractStatus.PENDING,
                               payment_method="invoice")
    db.session.add(premium_request)
    db.session.commit()
    make_user("olga@firm.test", Role.OWNER)
    login(client, "olga@firm.test")
    page = client.post(f"/billing/staff/contracts/{premium_request.id}/activate",
                       follow_redirects=True).get_data(as_text=True)
    assert "pays Priority by card (Stripe subscription sub_acme)" in page
    db.session.expire_all()
    assert db.session.get(Contract, card.id).status == ContractStatus.ACTIVE
    assert db.session.get(Contract, premium_request.id).status == ContractStatus.PENDING


def test_card_clients_are_sent_to_the_billing_page_to_change_plan(client, world):
    acme = world["acme"]
    card = db.session.scalars(select(Contract).where(Contract.organisation_id == acme.id)).one()
    card.payment_method, card.stripe_subscription_id = "card", "sub_acme"
    db.session.commit()
    login(client, "admin@acme.test")
    page = client.get("/client/plans/premium").get_data(as_text=True)
    assert "Change to Premium 24/7 on your billing page" in page and "Subscribe to Premium" not in page
    refused = client.post("/client/plans/premium/invoice", follow_redirects=True).get_data(as_text=True)
    assert "You pay by card: change your plan on the billing page" in refused
    assert db.session.scalars(select(Contract).where(Contract.organisation_id == acme.id)).all() == [card]


def test_break_fix_billing_page_links_each_paid_plan_until_one_is_requested(client, world):
    """A break/fix admin on the billing page finds where to buy, not only "Compare plans"."""
    login(client, "admin@bolt.test")
    page = client.get("/billing/").get_data(as_text=True)
    assert 'href="/client/plans/priority"' in page and 'href="/client/plans/premium"' in page
    client.post("/client/plans/priority/invoice")
    page = client.get("/billing/").get_data(as_text=True)
    assert "Your request for Priority is pending" in page
    assert 'href="/client/plans/premium"' not in page


def test_invoice_path_honours_the_minimum_term_like_the_card_path(client, world):
    """Acme (Priority, term running) could request Essentials by invoice and an owner activated it at once."""
    acme = world["acme"]
    make_plan("essentials", name="Essentials", monthly_price=Decimal("490"), display_order=1)
    current = db.session.scalars(select(Contract).where(Contract.organisation_id == acme.id)).one()
    current.minimum_term_ends_at = clock.now() + timedelta(days=200)
    db.session.commit()
    login(client, "admin@acme.test")

    refused = client.post("/client/plans/essentials/invoice", follow_redirects=True).get_data(as_text=True)
    assert "12-month minimum term that runs until" in refused and "cannot move to a cheaper plan" in refused
    assert db.session.scalars(select(Contract).where(Contract.organisation_id == acme.id)).all() == [current]
    client.post("/client/plans/premium/invoice")  # an upgrade is always allowed
    assert db.session.scalars(select(Contract).where(
        Contract.organisation_id == acme.id, Contract.status == ContractStatus.PENDING)).one().plan.slug == "premium"


def test_owner_cannot_activate_a_cheaper_plan_inside_the_minimum_term(client, world):
    acme = world["acme"]
    essentials = make_plan("essentials", name="Essentials", monthly_price=Decimal("490"), display_order=1)
    current = db.session.scalars(select(Contract).where(Contract.organisation_id == acme.id)).one()
    current.minimum_term_ends_at = clock.now() + timedelta(days=200)
    request = Contract(organisation_id=acme.id, plan_id=essentials.id, status=ContractStatus.PENDING,
                       payment_method="invoice")
    db.session.add(request)
    db.session.commit()
    make_user("olga@firm.test", Role.OWNER)
    login(client, "olga@firm.test")
    page = client.post(f"/billing/staff/contracts/{request.id}/activate", follow_redirects=True).get_data(as_text=True)
    assert "Acme&#39;s Priority contract has a 12-month minimum term" in page
    db.session.expire_all()
    assert db.session.get(Contract, current.id).status == ContractStatus.ACTIVE
    assert db.session.get(Contract, request.id).status == ContractStatus.PENDING


def _acme_in_its_term(world, card: bool = False) -> Contract:
    """Acme on Priority with its 12-month minimum term running, Essentials cheaper (and payable by card)."""
    make_plan("essentials", name="Essentials", monthly_price=Decimal("490"), stripe_price_id="price_essentials",
              display_order=1)
    current = db.session.scalars(select(Contract).where(Contract.organisation_id == world["acme"].id)).one()
    current.minimum_term_ends_at = clock.now() + timedelta(days=200)
    if card:
        current.payment_method, current.stripe_subscription_id = "card", "sub_acme"
        world["acme"].stripe_customer_id = "cus_acme"
    db.session.commit()
    return current


def test_card_checkout_of_a_cheaper_plan_inside_the_minimum_term_is_neither_offered_nor_accepted(
        client, recorder, world):
    """An invoice client in its term could subscribe to a cheaper plan by card, which ended its contract."""
    stripe_answers(recorder)
    current = _acme_in_its_term(world)
    login(client, "admin@acme.test")

    page = client.get("/client/plans/essentials").get_data(as_text=True)
    assert "Subscribe to Essentials" not in page and "pay by invoice" not in page
    assert "minimum term that runs until" in page and "Upgrades are possible at any time." in page
    assert "Subscribe to Premium 24/7, pay by card" in client.get("/client/plans/premium").get_data(as_text=True)

    refused = client.post("/billing/checkout/essentials", follow_redirects=True).get_data(as_text=True)
    assert "minimum term that runs until" in refused and "cannot move to a cheaper plan" in refused
    assert recorder.calls("POST", "/v1/checkout/sessions") == []
    assert db.session.scalars(select(Contract).where(Contract.organisation_id == world["acme"].id)).all() == [current]


def test_billing_page_offers_only_the_plan_changes_stripe_would_be_asked_for(client, world):
    _acme_in_its_term(world, card=True)
    login(client, "admin@acme.test")

    page = client.get("/billing/").get_data(as_text=True)

    assert '<option value="premium">' in page and '<option value="essentials">' not in page
    assert "Essentials:" in page and "cannot be cancelled or moved to a cheaper plan before then" in page
    assert "Upgrades are possible at any time." in page
    assert "Cancel at the end of the paid period" not in page  # refused inside the term as well
    refused = client.post("/billing/change-plan", data={"plan": "essentials"}, follow_redirects=True)
    assert "cannot be cancelled or moved to a cheaper plan" in refused.get_data(as_text=True)


def test_the_choose_plan_page_of_a_card_client_in_its_term_sends_only_upgrades_to_the_billing_page(client, world):
    _acme_in_its_term(world, card=True)
    login(client, "admin@acme.test")
    down = client.get("/client/plans/essentials").get_data(as_text=True)
    assert "on your billing page" not in down and "cannot be cancelled or moved to a cheaper plan" in down
    up = client.get("/client/plans/premium").get_data(as_text=True)
    assert "Change to Premium 24/7 on your billing page" in up


def test_an_emergency_upgrade_stays_on_offer_inside_the_minimum_term(client, world):
    _acme_in_its_term(world)
    login(client, "admin@acme.test")
    acme_ticket = db.session.scalars(select(QueueEntry).where(QueueEntry.organisation_id == world["acme"].id)).first()
    page = client.get(f"/billing/tickets/{acme_ticket.ticket_id}/upgrade").get_data(as_text=True)
    assert 'action="/client/plans/premium/invoice"' in page and "minimum term" not in page


def test_the_upgrade_panel_says_why_a_switch_would_be_refused(client, world):
    """A card contract set to end at the close of the period cannot be switched: the panel says so
    instead of a "Switch now" that answers with the refusal."""
    current = _acme_in_its_term(world, card=True)
    current.cancel_at_period_end = True
    db.session.commit()
    login(client, "admin@acme.test")
    acme_ticket = db.session.scalars(select(QueueEntry).where(QueueEntry.organisation_id == world["acme"].id)).first()
    page = client.get(f"/billing/tickets/{acme_ticket.ticket_id}/upgrade").get_data(as_text=True)
    assert "Switch now" not in page and "set to end at the close of this period" in page


def test_a_pending_request_is_named_with_its_date_on_the_upgrade_panel(client, world):
    ticket = world["ticket"]
    login(client, "admin@bolt.test")
    client.post("/client/plans/priority/invoice")
    page = client.get(f"/billing/tickets/{ticket.id}/upgrade").get_data(as_text=True)
    sent = clock.now().astimezone(ZoneInfo("America/New_York"))
    assert f"You already have a plan request waiting for confirmation: Priority, sent {sent.day} {sent:%b %Y}." in page
    assert "Request, pay by invoice" not in page and "Upgrade and pay" not in page


def test_a_card_checkout_left_without_paying_can_be_withdrawn_from_the_billing_page_and_the_panel(
        client, recorder, world):
    """An admin who closed Stripe's tab (never coming back to /billing/cancelled) read "waiting for Stripe
    to confirm the payment" on the billing page and the upgrade panel with no way to take it back, and
    the invoice path had vanished from every plan page."""
    stripe_answers(recorder)
    ticket = world["ticket"]
    login(client, "admin@bolt.test")
    assert client.post(f"/billing/tickets/{ticket.id}/upgrade/priority").status_code == 303

    for path in ("/billing/", f"/billing/tickets/{ticket.id}/upgrade"):
        page = client.get(path).get_data(as_text=True)
        assert "Your request for Priority is pending" in page
        assert "If you left Stripe's page without paying, withdraw it" in page
        assert "Withdraw the request for Priority" in page

    page = client.post("/billing/request/withdraw", follow_redirects=True).get_data(as_text=True)
    assert "Your request for Priority is withdrawn" in page
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == world["bolt"].id)).one()
    assert contract.status == ContractStatus.CANCELED
    assert "Request Priority, pay by invoice" in client.get("/client/plans/priority").get_data(as_text=True)


def test_a_card_payment_stripe_is_confirming_cannot_be_withdrawn(client, world):
    """Once Stripe holds a subscription for the request, money may have moved: no withdraw button."""
    bolt = world["bolt"]
    db.session.add(Contract(organisation_id=bolt.id, plan_id=world["priority"].id, status=ContractStatus.PENDING,
                            payment_method="card", stripe_subscription_id="sub_incomplete", created_at=clock.now()))
    db.session.commit()
    login(client, "admin@bolt.test")
    page = client.get("/billing/").get_data(as_text=True)
    assert "waiting for Stripe to confirm the payment" in page
    assert "Withdraw the request" not in page and "left Stripe's page" not in page


def test_break_fix_is_offered_to_a_contract_client_as_the_end_of_the_contract(client, world):
    """A contract client read "Break/fix needs no contract: just report a problem when you have one."
    (invoice) or "Break/Fix cannot be paid by card; choose another plan." (card) under Break/Fix."""
    login(client, "admin@acme.test")
    for path in ("/client/plans/break-fix", "/plans"):
        page = client.get(path).get_data(as_text=True)
        assert "You are on Priority: break/fix is what remains once that contract ends." in page
        assert "To end an invoiced contract, contact us." in page
        assert "needs no contract" not in page
    refused = client.post("/client/plans/break-fix/invoice", follow_redirects=True).get_data(as_text=True)
    assert "break/fix is what remains once that contract ends" in refused

    current = _acme_in_its_term(world, card=True)
    page = client.get("/client/plans/break-fix").get_data(as_text=True)
    assert "You are on Priority: break/fix is what remains once that contract ends." in page
    assert "cannot be cancelled or moved to a cheaper plan before then" in page  # the term says why not yet
    assert "cannot be paid by card" not in page
    current.minimum_term_ends_at = clock.now() - timedelta(days=1)
    db.session.commit()
    page = client.get("/client/plans/break-fix").get_data(as_text=True)
    assert "To end it, cancel at the end of the paid period on your billing page." in page

    client.post("/auth/logout")
    login(client, "admin@bolt.test")  # a break/fix client is told as before
    assert "Break/fix needs no contract" in client.get("/client/plans/break-fix").get_data(as_text=True)


def test_a_ticket_a_technician_already_has_is_not_offered_an_upgrade_it_cannot_use(client, world):
    """With a technician already working on it, the panel read "Waiting for a place in the queue." and "No paid plan
    is on offer right now.", and the dashboard and ticket page still sent the client there."""
    ticket = world["ticket"]
    tom = db.session.scalars(select(User).where(User.email == "tom@firm.test")).one()
    login(client, "admin@bolt.test")
    assert f'href="/billing/tickets/{ticket.id}/upgrade"' in client.get("/client/").get_data(as_text=True)

    tickets.set_status(ticket.id, TicketStatus.IN_PROGRESS, tom, clock.now())

    page = client.get(f"/billing/tickets/{ticket.id}/upgrade").get_data(as_text=True)
    assert "This ticket is no longer waiting in the queue (being worked on remotely)" in page
    assert "Waiting for a place in the queue." not in page and "No paid plan is on offer" not in page
    assert "Upgrade and pay" not in page
    assert f'/billing/tickets/{ticket.id}/upgrade"' not in client.get("/client/").get_data(as_text=True)
    assert "upgrade-offer" not in client.get(f"/client/tickets/{ticket.id}").get_data(as_text=True)


def test_a_client_already_under_contract_is_neither_shown_nor_charged_an_onboarding_fee(client, recorder, world):
    """Onboarding is once: a card switch (Stripe prorates) never charged it, yet the upgrade panel and
    the plan page put Premium's $900 fee before a client already on Priority, and a card checkout
    from an invoiced contract added it to the bill. A break/fix client still sees and pays it."""
    stripe_answers(recorder)
    premium = db.session.scalars(select(Plan).where(Plan.slug == "premium")).one()
    premium.onboarding_fee = Decimal("900")
    db.session.commit()
    login(client, "admin@acme.test")
    acme_ticket = db.session.scalars(select(QueueEntry).where(QueueEntry.organisation_id == world["acme"].id)).first()
    panel = client.get(f"/billing/tickets/{acme_ticket.ticket_id}/upgrade").get_data(as_text=True)
    assert "$900" not in panel
    plan_page = client.get("/client/plans/premium").get_data(as_text=True)
    assert "onboarding fee of $900" not in plan_page and "$900 once" not in plan_page
    client.post("/billing/checkout/premium")
    [session] = recorder.calls("POST", "/v1/checkout/sessions")
    assert "line_items[1][price_data][unit_amount]" not in session.form

    client.post("/auth/logout")
    login(client, "admin@bolt.test")
    panel = client.get(f"/billing/tickets/{world['ticket'].id}/upgrade").get_data(as_text=True)
    assert "$900" in panel
    assert "one-time onboarding fee of $900" in client.get("/client/plans/premium").get_data(as_text=True)


def test_the_panel_compares_plans_with_now_from_one_run_and_says_when_none_is_sooner(client, app, monkeypatch):
    """Bolt's only ticket is next in line. The panel drew "now" from the queue saved minutes ago and the
    plans from a run at this instant, so every plan read a few minutes later than staying as it is."""
    opened = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # Tuesday 10:00 in New York: break/fix is served
    monkeypatch.setattr("portal.clock.now", lambda: opened)
    make_plan("priority", name="Priority", stripe_price_id="price_priority", display_order=2)
    make_plan("break-fix", name="Break/Fix")
    bolt = make_organisation("Bolt")
    add_technician("tom@firm.test", ["network", "server"], on_call=(opened - timedelta(days=3), opened + timedelta(days=4)))
    admin = make_user("admin@bolt.test", organisation=bolt)
    ticket = tickets.open_ticket(bolt.id, admin.id, ticket_input(title="Tills down", impact="company", category="network"),
                                opened, None).ticket
    saved = queue.entry_for(ticket.id).eta_median
    later = opened + timedelta(minutes=7)
    monkeypatch.setattr("portal.clock.now", lambda: later)
    login(client, "admin@bolt.test")
    page = client.get(f"/billing/tickets/{ticket.id}/upgrade").get_data(as_text=True)
    fresh = queue.quote_upgrade(ticket.id, later)
    now_line = page.split("<h2>Now, as break/fix</h2>")[1].split("</section>")[0]
    shown = fresh.current.eta_median.astimezone(ZoneInfo("America/New_York")).strftime("%a %d %b %H:%M")
    assert fresh.current.eta_median > saved and shown in now_line
    assert "Right now no plan would serve this ticket sooner: it is next in line already." in page
    assert "no sooner than now" in page and 'data-label="Guaranteed by"' in page


def test_the_panel_says_when_a_plans_own_estimate_expects_to_miss_its_guarantee(client, monkeypatch, app):
    """Wednesday 06:55, nobody on call: Premium 24/7 would guarantee a technician on site by 07:55, but its
    own estimate is after 08:00, when the first shift starts. The panel showed "Guaranteed by 07:55" as
    if it would hold; the ticket page, once upgraded, said "likely to be missed". Both now say so."""
    at = datetime(2026, 11, 25, 11, 55, tzinfo=timezone.utc)
    monkeypatch.setattr("portal.clock.now", lambda: at)
    make_plan("priority", name="Priority", stripe_price_id="price_priority", display_order=2)
    make_plan("premium", name="Premium 24/7", monthly_price=Decimal("2490"), coverage="24x7",
              remote_response_minutes=30, onsite_arrival_minutes=60, after_hours_emergencies=True,
              stripe_price_id="price_premium", display_order=3)
    bolt = make_organisation("Bolt")
    admin = make_user("admin@bolt.test", organisation=bolt)
    add_technician("tom@firm.test", ["network", "printer"])
    tills = tickets.open_ticket(bolt.id, admin.id, ticket_input(title="Tills down", impact="company",
                                                                onsite_needed=True), at, None).ticket
    login(client, "admin@bolt.test")

    page = client.get(f"/billing/tickets/{tills.id}/upgrade").get_data(as_text=True)

    quotes = {plan.slug: quote for plan, quote in queue.quote_upgrade(tills.id, at).plans}
    assert quotes["premium"].eta_median > quotes["premium"].sla_due  # the estimate is after the guarantee
    premium_row = page.split('<th scope="row">Premium 24/7</th>')[1].split("</tr>")[0]
    # The technician sets off at 08:00, after the remote response is due (07:25) as well.
    assert ("Wed 25 Nov 07:55<br><small>the remote response and the on-site arrival are likely to be missed: "
            "the technician is expected to set off at Wed 25 Nov 08:00</small>") in premium_row
    priority_row = page.split('<th scope="row">Priority</th>')[1].split("</tr>")[0]
    assert "missed" not in priority_row


def test_the_panel_names_a_remote_response_its_plan_would_miss_though_the_arrival_holds(client, monkeypatch, app):
    """Wednesday 06:55, nobody on call: a plan guaranteeing a response by 07:25 and a technician on site by
    10:55. Its estimate has the day technician setting off at 08:00 and on site well before 10:55, so the
    panel read "Guaranteed by 10:55" with nothing beside it, while the ticket page, once upgraded, said
    the remote response was likely to be missed. The panel now judges both promises as the page does."""
    at = datetime(2026, 11, 25, 11, 55, tzinfo=timezone.utc)
    monkeypatch.setattr("portal.clock.now", lambda: at)
    make_plan("premium", name="Premium 24/7", monthly_price=Decimal("2490"), coverage="24x7",
              remote_response_minutes=30, onsite_arrival_minutes=240, after_hours_emergencies=True,
              stripe_price_id="price_premium", display_order=3)
    bolt = make_organisation("Bolt")
    admin = make_user("admin@bolt.test", organisation=bolt)
    add_technician("tom@firm.test", ["network", "printer"])
    tills = tickets.open_ticket(bolt.id, admin.id, ticket_input(title="Tills down", impact="company",
                                                                onsite_needed=True), at, None).ticket
    login(client, "admin@bolt.test")

    [(_, premium)] = queue.quote_upgrade(tills.id, at).plans
    assert premium.response_owed is not None and premium.set_off_median > premium.response_owed
    assert premium.eta_p90 <= premium.sla_due  # the arrival alone reads on track
    outlook = premium.outlook()
    assert outlook.worst.promise == "response" and outlook.state == "at_risk"
    page = client.get(f"/billing/tickets/{tills.id}/upgrade").get_data(as_text=True)
    set_off = premium.set_off_median.astimezone(ZoneInfo("America/New_York")).strftime("%a %d %b %H:%M")
    premium_row = page.split('<th scope="row">Premium 24/7</th>')[1].split("</tr>")[0]
    assert (f"Wed 25 Nov 10:55<br><small>the remote response is likely to be missed: the technician is expected "
            f"to set off at {set_off}</small>") in premium_row


def test_the_upgrade_email_says_the_new_deadline_is_likely_missed_as_the_ticket_page_does(client, monkeypatch, app):
    """Upgraded at 06:55 with nobody on call: the page said the on-site deadline was likely to be missed,
    the email only "Your contract guarantees: ... technician on site by 07:55"."""
    from portal.models import OutboxMessage

    at = datetime(2026, 11, 25, 11, 55, tzinfo=timezone.utc)
    monkeypatch.setattr("portal.clock.now", lambda: at)
    make_plan("premium", name="Premium 24/7", monthly_price=Decimal("2490"), coverage="24x7",
              remote_response_minutes=30, onsite_arrival_minutes=60, minimum_term_months=1)
    bolt = make_organisation("Bolt")
    admin = make_user("admin@bolt.test", organisation=bolt)
    add_technician("tom@firm.test", ["network", "printer"])
    tills = tickets.open_ticket(bolt.id, admin.id, ticket_input(title="Tills down", impact="company",
                                                                onsite_needed=True), at, None).ticket
    login(client, "admin@bolt.test")
    client.post("/client/plans/premium/invoice")
    client.post("/auth/logout")
    make_user("olga@firm.test", Role.OWNER)
    login(client, "olga@firm.test")
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == bolt.id)).one()
    assert client.post(f"/billing/staff/contracts/{contract.id}/activate").status_code == 302

    [told] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "ticket_upgraded")).all()
    # The technician sets off at 08:00 when the day shift starts: both promises are likely missed.
    assert ("technician on site by Wed 25 Nov 07:55 EST — the remote response and the on-site arrival are likely "
            "to be missed: the technician is expected to set off at Wed 25 Nov 08:00 EST") in told.body
    client.post("/auth/logout")
    login(client, "admin@bolt.test")
    assert "likely to be missed" in client.get(f"/client/tickets/{tills.id}").get_data(as_text=True)
