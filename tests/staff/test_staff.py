from portal.models import Role
from tests.conftest import login, make_organisation, make_plan, make_user


def test_staff_list_all_organisations(client):
    plan = make_plan("priority", name="Priority")
    make_organisation("Acme", plan)
    make_organisation("Bolt")
    make_user("o@firm.example", role=Role.OWNER)
    login(client, "o@firm.example")
    page = client.get("/staff/organisations").get_data(as_text=True)
    assert "Acme" in page and "Bolt" in page and "Priority" in page and "Break/fix" in page


def test_clients_never_reach_staff_pages(client):
    org = make_organisation("Acme")
    make_user("a@acme.example", organisation=org)
    login(client, "a@acme.example")
    for url in ("/staff/", "/staff/organisations", f"/staff/organisations/{org.id}"):
        assert client.get(url).status_code == 403


def test_anonymous_goes_to_login(client):
    response = client.get("/staff/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_unknown_organisation_is_404(client):
    make_user("d@firm.example", role=Role.DISPATCHER)
    login(client, "d@firm.example")
    assert client.get("/staff/organisations/999").status_code == 404
