"""The webhook endpoint with events signed by Stripe's own scheme (stripe.WebhookSignature)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Contract, ContractStatus, StripeEvent, TicketEvent

from .conftest import signed, stripe_config
from .helpers import (
    card_request,
    checkout_session,
    customer_org,
    event,
    invoice,
    open_ticket,
    paid_plans,
    subscription,
)

T0 = 1_790_000_000


@pytest.fixture
def app(make_app):
    app = make_app(**stripe_config("http://127.0.0.1:9"))
    with app.app_context():
        yield app


def post(client, body: bytes, headers: dict):
    return client.post("/billing/webhook", data=body, headers=headers)


def deliver(client, evt: dict):
    body, headers = signed(evt)
    response = post(client, body, headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def contract_state(contract_id: int) -> tuple[str, str | None]:
    db.session.expire_all()
    contract = db.session.get(Contract, contract_id)
    return contract.status, contract.plan.slug


def events_recorded() -> int:
    return db.session.scalar(select(func.count()).select_from(StripeEvent))


def test_checkout_completed_activates_the_contract_and_rebases_open_tickets(client, now):
    _, priority = paid_plans()
    org = customer_org()
    ticket = open_ticket(org, now)
    contract = card_request(org, priority, now)

    result = deliver(client, event("checkout.session.completed", checkout_session(contract), T0))

    db.session.expire_all()
    contract = db.session.get(Contract, contract.id)
    assert result["replay"] is False
    assert contract.status == ContractStatus.ACTIVE
    assert contract.stripe_subscription_id == "sub_test_1"
    assert contract.starts_at is not None and contract.stripe_event_created == T0
    assert db.session.get(StripeEvent, result["received"]).type == "checkout.session.completed"
    timeline = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)).all()
    assert any("Priority contract active" in e.message for e in timeline)


def test_unpaid_checkout_leaves_the_contract_pending(client, now):
    _, priority = paid_plans()
    org = customer_org()
    contract = card_request(org, priority, now)
    deliver(client, event("checkout.session.completed", checkout_session(contract, payment_status="unpaid"), T0))
    assert contract_state(contract.id) == (ContractStatus.PENDING, "priority")
    assert db.session.get(Contract, contract.id).stripe_subscription_id == "sub_test_1"


@pytest.mark.parametrize("how", ["wrong secret", "tampered body", "stale timestamp", "no header"])
def test_bad_or_stale_signature_gets_400_and_changes_nothing(client, now, how):
    _, priority = paid_plans()
    org = customer_org()
    contract = card_request(org, priority, now)
    evt = event("checkout.session.completed", checkout_session(contract), T0)
    if how == "wrong secret":
        body, headers = signed(evt, secret="whsec_someone_else")
    elif how == "stale timestamp":
        body, headers = signed(evt, timestamp=int(time.time()) - 600)
    else:
        body, headers = signed(evt)
    if how == "tampered body":
        body = body.replace(b'"paid"', b'"paid" ')
    if how == "no header":
        headers = {"Content-Type": "application/json"}

    response = post(client, body, headers)

    assert response.status_code == 400
    assert contract_state(contract.id) == (ContractStatus.PENDING, "priority")
    assert events_recorded() == 0


def test_without_a_webhook_secret_every_event_is_refused(make_app, now):
    app = make_app(**stripe_config("http://127.0.0.1:9", STRIPE_WEBHOOK_SECRET=""))
    with app.app_context():
        _, priority = paid_plans()
        contract = card_request(customer_org(), priority, now)
        body, headers = signed(event("checkout.session.completed", checkout_session(contract), T0))
        assert app.test_client().post("/billing/webhook", data=body, headers=headers).status_code == 400
        assert contract_state(contract.id)[0] == ContractStatus.PENDING


def test_a_replayed_event_is_recorded_once_and_changes_nothing(client, now):
    _, priority = paid_plans()
    org = customer_org()
    ticket = open_ticket(org, now)
    contract = card_request(org, priority, now)
    completed = event("checkout.session.completed", checkout_session(contract), T0)
    failed = event("invoice.payment_failed", invoice(status="open"), T0 + 60)
    deliver(client, completed)
    deliver(client, failed)
    assert contract_state(contract.id)[0] == ContractStatus.PAST_DUE
    rebased = db.session.scalar(select(func.count()).select_from(TicketEvent).where(TicketEvent.ticket_id == ticket.id))

    again = deliver(client, completed)  # Stripe retries an event it thinks was not received
    again_failed = deliver(client, failed)

    assert again["replay"] is True and again_failed["replay"] is True
    assert contract_state(contract.id)[0] == ContractStatus.PAST_DUE
    assert events_recorded() == 2
    assert db.session.scalar(
        select(func.count()).select_from(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    ) == rebased


def test_subscription_events_in_the_wrong_order_end_in_the_newest_state(client, now):
    _, priority = paid_plans()
    org = customer_org()
    contract = card_request(org, priority, now)
    created = event("customer.subscription.created", subscription("incomplete", contract), T0)
    paid = event("invoice.paid", invoice(), T0 + 1)
    updated = event("customer.subscription.updated", subscription("active", contract), T0 + 2)
    deleted = event("customer.subscription.deleted", subscription("canceled", contract), T0 + 90)

    deliver(client, updated)
    assert contract_state(contract.id)[0] == ContractStatus.ACTIVE
    deliver(client, created)  # older: must not send the contract back to pending
    deliver(client, paid)
    assert contract_state(contract.id)[0] == ContractStatus.ACTIVE
    deliver(client, deleted)
    assert contract_state(contract.id)[0] == ContractStatus.CANCELED


def test_a_deleted_subscription_is_not_revived_by_late_events(client, now):
    _, priority = paid_plans()
    org = customer_org()
    contract = card_request(org, priority, now)
    deliver(client, event("customer.subscription.deleted", subscription("canceled", contract), T0 + 90))
    deliver(client, event("invoice.paid", invoice(), T0 + 100))
    deliver(client, event("customer.subscription.updated", subscription("active", contract), T0 + 2))
    db.session.expire_all()
    contract = db.session.get(Contract, contract.id)
    assert contract.status == ContractStatus.CANCELED and contract.ends_at is not None


def test_same_second_creation_and_payment_do_not_regress_to_pending(client, now):
    _, priority = paid_plans()
    org = customer_org()
    contract = card_request(org, priority, now)
    deliver(client, event("invoice.payment_succeeded", invoice(), T0))
    deliver(client, event("customer.subscription.created", subscription("incomplete", contract), T0))
    assert contract_state(contract.id)[0] == ContractStatus.ACTIVE
    db.session.expire_all()
    # The late event cannot send the contract back, but its billing period is still taken.
    assert db.session.get(Contract, contract.id).current_period_end is not None


def test_failed_renewal_makes_past_due_and_a_later_payment_restores(client, now):
    _, priority = paid_plans()
    org = customer_org()
    contract = card_request(org, priority, now)
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    deliver(client, event("invoice.payment_failed", invoice(status="open"), T0 + 3600))
    assert contract_state(contract.id)[0] == ContractStatus.PAST_DUE
    deliver(client, event("invoice.paid", invoice(), T0 + 7200))
    assert contract_state(contract.id)[0] == ContractStatus.ACTIVE


def test_a_subscription_stripe_stopped_collecting_is_suspended_until_paid(client, now):
    """Stripe gives up retrying (unpaid): the client is no longer served ahead of break/fix for free,
    its pages say why and how to pay, another failed attempt changes nothing, and paying restores it."""
    from portal.models import Role, Ticket
    from tests.conftest import login, make_user

    _, priority = paid_plans()
    org = customer_org()
    make_user("admin@bolt.test", organisation=org)
    make_user("member@bolt.test", role=Role.CLIENT_MEMBER, organisation=org)
    ticket = open_ticket(org, now)
    contract = card_request(org, priority, now)
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).sla_plan_id == priority.id
    deliver(client, event("invoice.payment_failed", invoice(status="open"), T0 + 3600))
    deliver(client, event("customer.subscription.updated", subscription("unpaid", contract), T0 + 7200))
    assert contract_state(contract.id)[0] == ContractStatus.SUSPENDED
    db.session.expire_all()
    suspended = db.session.get(Ticket, ticket.id)
    assert suspended.sla_plan_id is None and suspended.sla_best_effort
    assert any("Priority contract suspended: payment not received, served as break/fix until the invoice is paid"
               in e.message for e in suspended.events)
    login(client, "admin@bolt.test")
    for page in ("/billing/", "/client/", f"/billing/tickets/{ticket.id}/upgrade"):
        html = client.get(page).get_data(as_text=True)
        assert "Your Priority contract is suspended: Stripe could not collect its payment." in html
    client.post("/auth/logout")
    login(client, "member@bolt.test")
    ask = ("suspended until its payment is received. Only an admin of Bolt can pay it: "
           "ask Test Person (admin@bolt.test).")
    assert ask in client.get("/client/").get_data(as_text=True)
    # A member in an emergency reads the same on the upgrade panel, not a link to a page only admins may open.
    panel = client.get(f"/billing/tickets/{ticket.id}/upgrade").get_data(as_text=True)
    assert ask in panel
    assert 'href="/billing/"' not in panel.split('id="suspended"')[1].split("</p>")[0]
    deliver(client, event("invoice.payment_failed", invoice(status="open"), T0 + 9000))
    assert contract_state(contract.id)[0] == ContractStatus.SUSPENDED
    deliver(client, event("invoice.paid", invoice(), T0 + 10800))
    assert contract_state(contract.id)[0] == ContractStatus.ACTIVE
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).sla_plan_id == priority.id
    assert "is suspended" not in client.get("/client/").get_data(as_text=True)


def test_a_suspended_client_pays_the_open_invoice_instead_of_buying_a_second_plan(client, now):
    """A suspended contract is a Stripe subscription still holding an open invoice: a second plan bought
    beside it (Checkout, or by invoice and confirmed by an owner) would end it here while Stripe kept
    billing it, and paying that invoice later would bring it back over the new one. Every way to buy is
    refused with how to pay instead, and the owner cannot confirm an older invoice request over it."""
    from portal.models import Role
    from portal.services import billing, contracts
    from tests.conftest import login, make_user

    essentials, priority = paid_plans()
    org = customer_org()
    make_user("admin@bolt.test", organisation=org)
    owner = make_user("owner@firm.test", role=Role.OWNER)
    ticket = open_ticket(org, now)
    contract = card_request(org, priority, now)
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    deliver(client, event("customer.subscription.updated", subscription("unpaid", contract), T0 + 7200))
    assert contract_state(contract.id)[0] == ContractStatus.SUSPENDED

    login(client, "admin@bolt.test")
    html = client.get(f"/billing/tickets/{ticket.id}/upgrade").get_data(as_text=True)
    assert "Upgrade and pay" not in html and "Request, pay by invoice" not in html
    assert "Pay the open invoice in the Stripe billing portal" in html
    page = client.post("/billing/checkout/essentials", follow_redirects=True).get_data(as_text=True)
    assert "Your Priority contract is suspended: Stripe could not collect its payment." in page
    client.post("/client/plans/essentials/invoice")
    assert contracts.pending_contract(org.id) is None

    # An invoice request written before (or by hand) is not confirmed over the suspended subscription.
    request = Contract(organisation_id=org.id, plan_id=essentials.id, status=ContractStatus.PENDING,
                       payment_method="invoice", created_at=now)
    db.session.add(request)
    db.session.commit()
    with pytest.raises(billing.BillingError, match="sub_test_1, suspended: its open invoice is unpaid"):
        billing.activate_invoice_contract(request.id, owner, now)
    assert contract_state(contract.id)[0] == ContractStatus.SUSPENDED
    assert contract_state(request.id)[0] == ContractStatus.PENDING


def test_the_firm_sees_a_suspended_contract_on_its_organisation_pages(client, now):
    """A client suspended for non-payment calls the firm: the organisation pages must not read as a
    plain break/fix client, or nobody there knows why their tickets lost their guarantee."""
    from portal.models import Role
    from tests.conftest import login, make_user

    _, priority = paid_plans()
    org = customer_org()
    make_user("owner@firm.test", role=Role.OWNER)
    contract = card_request(org, priority, now)
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    deliver(client, event("customer.subscription.updated", subscription("unpaid", contract), T0 + 7200))
    login(client, "owner@firm.test")
    listing = client.get("/staff/organisations").get_data(as_text=True)
    assert "Break/fix (Priority suspended: unpaid)" in listing
    page = client.get(f"/staff/organisations/{org.id}").get_data(as_text=True)
    assert "their Priority contract is suspended" in page and "sub_test_1" in page
    deliver(client, event("invoice.paid", invoice(), T0 + 10800))
    assert "suspended" not in client.get(f"/staff/organisations/{org.id}").get_data(as_text=True)


def test_a_contract_whose_paid_period_closed_is_not_offered_to_be_kept(client, now):
    """Set to end, and the paid period is over: Stripe has ended the subscription, its webhook still on
    its way. 'Keep my contract' is not offered, and a click from an older page says the contract ended
    instead of asking Stripe to renew a subscription that no longer runs (nor to 'try again')."""
    from tests.conftest import login, make_user

    _, priority = paid_plans()
    org = customer_org()
    make_user("admin@bolt.test", organisation=org)
    contract = card_request(org, priority, now)
    deliver(client, event("customer.subscription.updated",
                          subscription("active", contract, period_end=T0 + 3600, cancel_at_period_end=True), T0))
    assert contract_state(contract.id)[0] == ContractStatus.ACTIVE
    login(client, "admin@bolt.test")
    html = client.get("/billing/").get_data(as_text=True)
    assert "Keep my contract" not in html
    assert "contract ended when its paid period closed on 21 Sep 2026: it can no longer be kept." in html
    page = client.post("/billing/keep", follow_redirects=True).get_data(as_text=True)
    assert "it can no longer be kept. Choose a plan to start a new contract." in page
    assert "goes on" not in page and "reach Stripe" not in page
    db.session.expire_all()
    assert db.session.get(Contract, contract.id).cancel_at_period_end is True


def test_failed_first_payment_keeps_the_request_pending(client, now):
    _, priority = paid_plans()
    org = customer_org()
    contract = card_request(org, priority, now)
    deliver(client, event("customer.subscription.created", subscription("incomplete", contract), T0))
    deliver(client, event("invoice.payment_failed", invoice(status="open"), T0 + 1))
    db.session.expire_all()
    contract = db.session.get(Contract, contract.id)
    assert contract.status == ContractStatus.PENDING and contract.stripe_status == "incomplete"


def test_plan_changed_in_stripe_moves_the_contract_and_ends_the_old_invoice_contract(client, now):
    essentials, priority = paid_plans()
    org = customer_org()
    invoiced = Contract(organisation_id=org.id, plan_id=essentials.id, status=ContractStatus.ACTIVE,
                        payment_method="invoice", starts_at=now)
    db.session.add(invoiced)
    db.session.commit()
    contract = card_request(org, essentials, now)
    deliver(client, event("customer.subscription.created", subscription("active", contract, "price_essentials"), T0))
    assert contract_state(invoiced.id)[0] == ContractStatus.CANCELED
    deliver(client, event("customer.subscription.updated", subscription("active", contract, "price_priority"), T0 + 5))
    assert contract_state(contract.id) == (ContractStatus.ACTIVE, "priority")


def test_subscription_made_outside_the_portal_becomes_a_contract_for_the_customer(client, now):
    _, priority = paid_plans()
    org = customer_org()
    sub = subscription("active", card_request(org, priority, now))
    db.session.execute(db.delete(Contract))
    db.session.commit()
    sub["metadata"] = {}
    deliver(client, event("customer.subscription.created", sub, T0))
    contract = db.session.scalars(select(Contract)).one()
    assert (contract.organisation_id, contract.status, contract.plan.slug) == (org.id, ContractStatus.ACTIVE, "priority")


def test_events_for_unknown_customers_are_recorded_and_ignored(client, now):
    paid_plans()
    org = customer_org()
    sub = {"id": "sub_other", "object": "subscription", "customer": "cus_nobody", "status": "active",
           "metadata": {}, "items": {"object": "list", "data": [{"id": "si_x", "price": {"id": "price_nowhere"}}]}}
    result = deliver(client, event("customer.subscription.updated", sub, T0))
    assert result["replay"] is False and events_recorded() == 1
    assert db.session.scalars(select(Contract).where(Contract.organisation_id == org.id)).all() == []


def test_a_failed_renewal_and_its_recovery_keep_the_open_tickets_deadlines(client, now):
    """Past due is still the same plan, "still served while Stripe retries": a failed card payment
    must not restart the SLA clock of every open ticket (its on-site deadline moved hours later and a
    promise about to be missed was never counted as missed), nor must the payment going through."""
    from datetime import datetime, timedelta, timezone

    from portal.models import OutboxMessage, Ticket
    from portal.services import sla as sla_service
    from tests.conftest import make_plan

    _, priority = paid_plans()
    org = customer_org()
    contract = card_request(org, priority, now)
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    opened = datetime(2026, 11, 17, 15, 0, tzinfo=timezone.utc)  # Tuesday 10:00 in New York
    ticket = open_ticket(org, opened)
    sla_service.apply_plan(ticket, db.session.get(Contract, contract.id).plan, opened, opened)
    db.session.commit()
    due = (ticket.response_due_at, ticket.arrival_due_at)
    mails = db.session.scalar(select(func.count()).select_from(OutboxMessage))

    deliver(client, event("invoice.payment_failed", invoice(status="open"), T0 + 3600))
    assert contract_state(contract.id)[0] == ContractStatus.PAST_DUE
    deliver(client, event("invoice.paid", invoice(), T0 + 7200))
    assert contract_state(contract.id)[0] == ContractStatus.ACTIVE

    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket.id)
    assert (ticket.sla_clock_start, ticket.response_due_at, ticket.arrival_due_at) == (opened, *due)
    assert db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                        TicketEvent.kind == "sla_rebased")).all() == []
    # nor is the client told their (unchanged) contract is "now active" on each ticket
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == mails


@pytest.mark.parametrize("first", ["customer.subscription.created", "invoice.paid"])
def test_the_emergency_ticket_is_told_its_new_place_whichever_event_stripe_sends_first(client, now, first):
    """Stripe does not order its events: when the subscription or its paid invoice arrived before
    checkout.session.completed, the contract was active already and the ticket that prompted the
    upgrade never got its 'Upgraded to ...: now number N in the queue' line."""
    _, priority = paid_plans()
    org = customer_org()
    ticket = open_ticket(org, now)
    contract = card_request(org, priority, now)
    sub = subscription("active", contract)
    sub["metadata"]["ticket_id"] = str(ticket.id)  # subscription_data metadata, as start_checkout sends it
    events = {
        "customer.subscription.created": event("customer.subscription.created", sub, T0),
        "invoice.paid": event("invoice.paid", invoice(), T0),
        "checkout.session.completed": event("checkout.session.completed",
                                            checkout_session(contract, ticket_id=ticket.id), T0 + 1),
    }
    order = [first] + [kind for kind in events if kind != first]
    for kind in order:
        deliver(client, events[kind])

    assert contract_state(contract.id)[0] == ContractStatus.ACTIVE
    notes = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                         TicketEvent.kind == "upgraded")).all()
    assert len(notes) == 1 and notes[0].message.startswith("Upgraded to Priority: payment confirmed by Stripe.")
