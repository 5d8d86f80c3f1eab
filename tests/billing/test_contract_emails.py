"""The client admins hear by email when Stripe's events suspend their contract, bring it back, or end it:
once per change, whatever Stripe repeats or reorders, and never at the cost of the change itself."""
from __future__ import annotations

import smtplib
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Contract, ContractStatus, OutboxMessage, Role, TicketStatus
from portal.services import contracts, outbox
from tests.conftest import login, make_plan, make_user

from .conftest import signed, stripe_config
from .helpers import card_request, customer_org, event, invoice, open_ticket, paid_plans, subscription

T0 = 1_790_000_000
PUBLIC_URL = "https://portal.example.com"


@pytest.fixture
def app(make_app):
    app = make_app(**stripe_config("http://127.0.0.1:9"), PUBLIC_URL=PUBLIC_URL)
    with app.app_context():
        yield app


def deliver(client, evt: dict) -> dict:
    body, headers = signed(evt)
    response = client.post("/billing/webhook", data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def mails(kind: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def status(contract_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Contract, contract_id).status


@pytest.fixture
def bolt(now):
    """Bolt on a Priority card contract, with two admins, a member, an admin whose access was removed and
    two open tickets (one resolved); Acme, another client, has its own admin and contract."""
    _, priority = paid_plans()
    org = customer_org()
    make_user("admin@bolt.test", organisation=org)
    make_user("second@bolt.test", organisation=org)
    make_user("member@bolt.test", role=Role.CLIENT_MEMBER, organisation=org)
    gone = make_user("gone@bolt.test", organisation=org)
    gone.active = False
    open_ticket(org, now, "Server down")
    open_ticket(org, now, "Printer jam")
    done = open_ticket(org, now, "Old issue")
    done.status = TicketStatus.RESOLVED
    db.session.commit()
    acme = customer_org("Acme", "cus_acme")
    make_user("admin@acme.test", organisation=acme)
    acme_contract = card_request(acme, priority, now)
    acme_contract.status = ContractStatus.ACTIVE
    db.session.commit()
    return card_request(org, priority, now)


BOLT_ADMINS = ["admin@bolt.test", "second@bolt.test"]


def test_suspension_emails_each_admin_once_and_payment_brings_a_short_active_again(client, bolt):
    contract = bolt
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    failed = event("invoice.payment_failed", invoice(status="open"), T0 + 3600)
    deliver(client, failed)
    assert mails("contract_suspended") == []  # past due is still served: nothing to tell yet

    paused = event("customer.subscription.updated", subscription("paused", contract), T0 + 7200)
    deliver(client, paused)
    assert status(contract.id) == ContractStatus.SUSPENDED
    sent = mails("contract_suspended")
    assert [m.recipient for m in sent] == BOLT_ADMINS  # not the member, not the removed admin, not Acme
    mail = sent[0]
    assert mail.subject == "Your Priority contract is suspended: payment not received"
    assert "Your Priority contract is suspended: Stripe could not collect its payment." in mail.body
    assert ("From now on your open tickets, and any new ticket you report, are served as break/fix: "
            "after our contract clients, with no guaranteed response time.") in mail.body
    assert "You have 2 open tickets right now." in mail.body
    assert f"Pay the open invoice from your billing page: {PUBLIC_URL}/billing/\n" in mail.body

    # Stripe repeats itself, marks the paused subscription unpaid, and sends older events late.
    assert deliver(client, paused)["replay"] is True
    deliver(client, event("customer.subscription.updated", subscription("unpaid", contract), T0 + 9000))
    deliver(client, event("invoice.payment_failed", invoice(status="open"), T0 + 9100))
    deliver(client, event("customer.subscription.updated", subscription("past_due", contract), T0 + 5000))
    assert status(contract.id) == ContractStatus.SUSPENDED
    assert len(mails("contract_suspended")) == 2
    assert mails("contract_active_again") == []

    paid = event("invoice.paid", invoice(), T0 + 10800)
    deliver(client, paid)
    deliver(client, event("customer.subscription.updated", subscription("active", contract), T0 + 10800))
    assert deliver(client, paid)["replay"] is True
    deliver(client, event("customer.subscription.updated", subscription("unpaid", contract), T0 + 9500))  # late
    assert status(contract.id) == ContractStatus.ACTIVE
    again = mails("contract_active_again")
    assert [m.recipient for m in again] == BOLT_ADMINS
    assert again[0].subject == "Your Priority contract is active again"
    assert "Stripe confirmed the payment: your Priority contract is active again." in again[0].body
    assert len(mails("contract_suspended")) == 2
    assert mails("contract_ended") == []


def test_the_links_in_the_emails_open_the_right_pages(client, bolt):
    contract = bolt
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    deliver(client, event("customer.subscription.updated", subscription("unpaid", contract), T0 + 60))
    deliver(client, event("customer.subscription.deleted", subscription("canceled", contract), T0 + 120))
    links = [line.rsplit(": ", 1)[1] for mail in mails("contract_suspended")[:1] + mails("contract_ended")[:1]
             for line in mail.body.splitlines() if "http" in line]
    assert links == [f"{PUBLIC_URL}/billing/", f"{PUBLIC_URL}/plans"]
    assert all(urlsplit(link).scheme == "https" and urlsplit(link).netloc == "portal.example.com" for link in links)
    login(client, "admin@bolt.test")
    assert client.get(urlsplit(links[0]).path).status_code == 200
    plans_page = client.get(urlsplit(links[1]).path)
    assert plans_page.status_code == 200 and "Priority" in plans_page.get_data(as_text=True)


def test_the_suspended_notice_links_where_the_email_does(client, bolt):
    contract = bolt
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    deliver(client, event("customer.subscription.updated", subscription("unpaid", contract), T0 + 60))
    login(client, "admin@bolt.test")
    dashboard = client.get("/client/").get_data(as_text=True)
    notice = dashboard.split('id="suspended"')[1].split("</p>")[0]
    link = mails("contract_suspended")[0].body.split("billing page: ")[1].split("\n")[0]
    assert f'href="{urlsplit(link).path}"' in notice
    page = client.get(urlsplit(link).path)
    assert page.status_code == 200
    assert "Your Priority contract is suspended: Stripe could not collect its payment." in page.get_data(as_text=True)


def test_an_ended_contract_emails_each_admin_once(client, bolt):
    contract = bolt
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    deliver(client, event("customer.subscription.updated",
                          subscription("active", contract, cancel_at_period_end=True), T0 + 60))
    assert mails("contract_ended") == []  # set to end, not ended
    deleted = event("customer.subscription.deleted", subscription("canceled", contract), T0 + 3600)
    deliver(client, deleted)
    assert status(contract.id) == ContractStatus.CANCELED
    sent = mails("contract_ended")
    assert [m.recipient for m in sent] == BOLT_ADMINS
    ended_on = contracts.firm_date(db.session.get(Contract, contract.id).ends_at)
    assert sent[0].subject == "Your Priority contract has ended"
    assert f"Your Priority contract ended on {ended_on}." in sent[0].body
    assert ("Your 2 open tickets stay open and will still be worked on, now as break/fix: after our contract "
            "clients, with no guaranteed response time.") in sent[0].body
    assert f"To sign up for a plan again: {PUBLIC_URL}/plans\n" in sent[0].body

    assert deliver(client, deleted)["replay"] is True
    deliver(client, event("customer.subscription.updated", subscription("canceled", contract), T0 + 3700))
    deliver(client, event("invoice.paid", invoice(), T0 + 3800))  # a deleted subscription never comes back
    deliver(client, event("customer.subscription.updated", subscription("active", contract), T0 + 30))
    assert status(contract.id) == ContractStatus.CANCELED
    assert len(mails("contract_ended")) == 2
    assert mails("contract_suspended") == [] and mails("contract_active_again") == []


def test_a_suspended_contract_that_ends_says_so_once(client, bolt):
    contract = bolt
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    deliver(client, event("customer.subscription.updated", subscription("unpaid", contract), T0 + 60))
    deliver(client, event("customer.subscription.deleted", subscription("canceled", contract), T0 + 120))
    assert len(mails("contract_suspended")) == 2 and len(mails("contract_ended")) == 2
    assert mails("contract_active_again") == []


def test_a_checkout_that_never_started_a_contract_ends_without_an_email(client, bolt):
    contract = bolt
    deliver(client, event("customer.subscription.created", subscription("incomplete", contract), T0))
    deliver(client, event("customer.subscription.updated", subscription("incomplete_expired", contract), T0 + 86400))
    assert status(contract.id) == ContractStatus.CANCELED
    assert mails("contract_ended") == []


def test_a_contract_ending_beside_another_in_force_does_not_say_break_fix(client, bolt, now):
    """A subscription deleted after the client moved to another contract: their tickets are not break/fix."""
    contract = bolt
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    other = Contract(organisation_id=contract.organisation_id, plan_id=make_plan("premier", name="Premier").id,
                     status=ContractStatus.ACTIVE, payment_method="invoice", created_at=now, starts_at=now)
    db.session.add(other)
    db.session.commit()
    deliver(client, event("customer.subscription.deleted", subscription("canceled", contract), T0 + 60))
    assert status(contract.id) == ContractStatus.CANCELED
    assert mails("contract_ended") == []


def test_an_smtp_failure_leaves_the_suspension_saved_and_the_emails_waiting(client, bolt, now):
    contract = bolt
    deliver(client, event("customer.subscription.created", subscription("active", contract), T0))
    deliver(client, event("customer.subscription.updated", subscription("unpaid", contract), T0 + 60))

    def down(message):
        raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")

    sent, failed = outbox.deliver_due(down, now.replace(year=2100))
    assert sent == 0 and failed >= 2
    db.session.expire_all()
    assert status(contract.id) == ContractStatus.SUSPENDED
    waiting = mails("contract_suspended")
    assert len(waiting) == 2
    assert all(m.sent_at is None and "SMTPServerDisconnected" in m.last_error for m in waiting)
    # Sent later, once, when the server is back; the contract is left as it was.
    accepted = []
    assert outbox.deliver_due(accepted.append, now.replace(year=2101)) == (failed, 0)
    assert sorted(m.recipient for m in accepted if m.kind == "contract_suspended") == BOLT_ADMINS
    assert status(contract.id) == ContractStatus.SUSPENDED
