"""The choose-plan page offers only what the request would get: a plan the organisation cannot ask
for now shows why, and what it can do, in place of the button that would be refused after the click."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from portal.extensions import db
from portal.models import Contract, ContractStatus, Organisation, Role
from tests.client.helpers import set_clock
from tests.conftest import login, make_organisation, make_plan, make_user

DEC_2_NY = datetime(2026, 12, 2, 15, 0, tzinfo=timezone.utc)
TERM_ENDS = datetime(2027, 3, 14, 15, 0, tzinfo=timezone.utc)  # 14 Mar 2027, 11:00 in New York
TERM_REASON = ("Your Premium 24/7 contract has a 12-month minimum term that runs until 14 Mar 2027; "
               "it cannot move to a cheaper plan before then.")


def plans() -> dict:
    return {
        "break-fix": make_plan("break-fix", name="Break/Fix"),
        "essentials": make_plan("essentials", name="Essentials", monthly_price=Decimal("490"), display_order=1),
        "priority": make_plan("priority", name="Priority", monthly_price=Decimal("1290"), display_order=2),
        "premium": make_plan("premium", name="Premium 24/7", monthly_price=Decimal("2490"), coverage="24x7",
                             display_order=3),
        "enterprise": make_plan("enterprise", name="Enterprise", monthly_price=Decimal("4990"), display_order=4),
    }


def acme_in_its_term(client, monkeypatch, role: str = Role.CLIENT_ADMIN) -> Organisation:
    """Acme on Premium 24/7 by invoice, inside its 12-month minimum term (as in the demo)."""
    set_clock(monkeypatch, DEC_2_NY)
    catalogue = plans()
    acme = make_organisation("Acme", catalogue["premium"])
    contract = db.session.scalars(select(Contract).where(Contract.organisation_id == acme.id)).one()
    contract.minimum_term_ends_at = TERM_ENDS
    db.session.commit()
    make_user("admin@acme.example", role, organisation=acme)
    login(client, "admin@acme.example")
    return acme


def bolt_with_a_request_waiting(client, monkeypatch) -> Organisation:
    """Bolt (break/fix) asked for Priority by invoice on 2 Dec; the firm has not confirmed it yet."""
    set_clock(monkeypatch, DEC_2_NY)
    plans()
    bolt = make_organisation("Bolt")
    make_user("admin@bolt.example", organisation=bolt)
    login(client, "admin@bolt.example")
    assert client.post("/client/plans/priority/invoice").status_code == 302
    return bolt


def contracts_of(organisation: Organisation) -> list[tuple]:
    db.session.expire_all()
    return [(c.plan.slug, c.status) for c in db.session.scalars(
        select(Contract).where(Contract.organisation_id == organisation.id).order_by(Contract.id))]


def test_a_cheaper_plan_inside_the_minimum_term_shows_why_and_no_button(client, monkeypatch):
    acme_in_its_term(client, monkeypatch)

    page = client.get("/client/plans/essentials").get_data(as_text=True)

    assert 'action="/client/plans/essentials/invoice"' not in page and "pay by invoice" not in page
    assert TERM_REASON in page and "Upgrades are possible at any time." in page


def test_a_dearer_plan_stays_on_offer_inside_the_minimum_term(client, monkeypatch):
    acme_in_its_term(client, monkeypatch)

    page = client.get("/client/plans/enterprise").get_data(as_text=True)

    assert 'action="/client/plans/enterprise/invoice"' in page and "Request Enterprise, pay by invoice" in page
    assert "minimum term that runs" not in page


def test_the_current_plan_says_so(client, monkeypatch):
    acme_in_its_term(client, monkeypatch)
    page = client.get("/client/plans/premium").get_data(as_text=True)
    assert "You are already on Premium 24/7." in page and "pay by invoice" not in page


def test_a_member_is_told_why_not_rather_than_to_ask_an_admin(client, monkeypatch):
    acme_in_its_term(client, monkeypatch, Role.CLIENT_MEMBER)
    page = client.get("/client/plans/essentials").get_data(as_text=True)
    assert TERM_REASON in page and "Ask an admin" not in page
    assert "Only an admin of Acme can change the plan." in client.get(
        "/client/plans/enterprise").get_data(as_text=True)


def test_a_stale_page_is_still_refused_and_nothing_changes(client, monkeypatch):
    acme = acme_in_its_term(client, monkeypatch)
    before = contracts_of(acme)

    page = client.post("/client/plans/essentials/invoice", follow_redirects=True).get_data(as_text=True)

    assert TERM_REASON in page and "Upgrades are possible at any time." in page
    assert contracts_of(acme) == before == [("premium", ContractStatus.ACTIVE)]


def test_a_pending_request_shows_what_waits_since_when_and_the_way_to_withdraw_it(client, monkeypatch):
    bolt_with_a_request_waiting(client, monkeypatch)

    page = client.get("/client/plans/premium").get_data(as_text=True)

    assert 'action="/client/plans/premium/invoice"' not in page and "pay by invoice" not in page
    assert "You already have a plan request waiting for confirmation: Priority, sent 2 Dec 2026." in page
    assert 'action="/billing/request/withdraw"' in page and "Withdraw the request for Priority" in page


def test_a_second_request_from_a_stale_page_is_refused_and_nothing_changes(client, monkeypatch):
    bolt = bolt_with_a_request_waiting(client, monkeypatch)
    before = contracts_of(bolt)

    page = client.post("/client/plans/premium/invoice", follow_redirects=True).get_data(as_text=True)

    assert "You already have a plan request waiting for confirmation: Priority, sent 2 Dec 2026." in page
    assert contracts_of(bolt) == before == [("priority", ContractStatus.PENDING)]


def test_the_same_request_sent_twice_is_the_one_waiting_and_reads_as_recorded(client, monkeypatch):
    bolt = bolt_with_a_request_waiting(client, monkeypatch)

    page = client.post("/client/plans/priority/invoice", follow_redirects=True).get_data(as_text=True)

    assert "Your request for Priority is recorded." in page and "already have a plan request" not in page
    assert contracts_of(bolt) == [("priority", ContractStatus.PENDING)]


def test_after_withdrawing_the_plans_are_offered_again(client, monkeypatch):
    bolt_with_a_request_waiting(client, monkeypatch)
    client.post("/billing/request/withdraw", data={"next": "/client/plans/premium"})
    page = client.get("/client/plans/premium").get_data(as_text=True)
    assert 'action="/client/plans/premium/invoice"' in page and "waiting for confirmation" not in page


def test_a_free_organisation_is_offered_every_plan_without_a_reason(client, monkeypatch):
    set_clock(monkeypatch, DEC_2_NY)
    plans()
    make_user("admin@bolt.example", organisation=make_organisation("Bolt"))
    login(client, "admin@bolt.example")
    for slug, name in (("essentials", "Essentials"), ("priority", "Priority"), ("premium", "Premium 24/7")):
        page = client.get(f"/client/plans/{slug}").get_data(as_text=True)
        assert f'action="/client/plans/{slug}/invoice"' in page and f"Request {name}, pay by invoice" in page
        assert "minimum term that runs" not in page and "waiting for confirmation" not in page
