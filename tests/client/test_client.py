from sqlalchemy import select

from portal.extensions import db
from portal.models import Contract, ContractStatus, Role
from tests.conftest import login, make_organisation, make_plan, make_user


def test_dashboard_shows_contract(client):
    plan = make_plan("priority", name="Priority")
    make_user("a@acme.example", organisation=make_organisation("Acme", plan))
    login(client, "a@acme.example")
    page = client.get("/client/").get_data(as_text=True)
    assert "Acme" in page and "Priority" in page


def test_break_fix_dashboard_says_so(client):
    make_user("b@bolt.example", organisation=make_organisation("Bolt"))
    login(client, "b@bolt.example")
    assert "break/fix" in client.get("/client/").get_data(as_text=True)


def test_anonymous_is_sent_to_login_and_staff_are_refused(client):
    assert client.get("/client/").status_code == 302
    make_user("d@firm.example", role=Role.DISPATCHER)
    login(client, "d@firm.example")
    assert client.get("/client/").status_code == 403


def test_request_plan_by_invoice_creates_pending_contract_once(client):
    plan = make_plan("essentials", name="Essentials")
    org = make_organisation("Bolt")
    make_user("b@bolt.example", organisation=org)
    login(client, "b@bolt.example")
    assert "pay by invoice" in client.get("/client/plans/essentials").get_data(as_text=True)
    response = client.post("/client/plans/essentials/invoice", follow_redirects=True)
    assert "No card was charged" in response.get_data(as_text=True)
    contract = db.session.scalars(select(Contract)).one()
    assert (contract.status, contract.payment_method, contract.plan_id) == (ContractStatus.PENDING, "invoice", plan.id)
    again = client.post("/client/plans/essentials/invoice", follow_redirects=True)  # a double click
    assert "Your request for Essentials is recorded" in again.get_data(as_text=True)
    assert len(db.session.scalars(select(Contract)).all()) == 1


def test_members_cannot_request_plans(client):
    make_plan("essentials")
    make_user("m@bolt.example", role=Role.CLIENT_MEMBER, organisation=make_organisation("Bolt"))
    login(client, "m@bolt.example")
    assert client.post("/client/plans/essentials/invoice").status_code == 403
    assert db.session.scalars(select(Contract)).first() is None


def test_unknown_plan_is_404(client):
    make_user("b@bolt.example", organisation=make_organisation("Bolt"))
    login(client, "b@bolt.example")
    assert client.get("/client/plans/nope").status_code == 404
