"""An organisation's time zone: its admin sets it on the account page."""
from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.models import AccountEvent, Organisation, Role
from tests.conftest import login, make_user


def _zone_of(org_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Organisation, org_id).timezone


def test_an_admin_sets_the_zone_and_the_activity_says_who(client, acme):
    org, admin = acme[0], acme[1]
    page = client.get("/client/account").get_data(as_text=True)
    assert "Time zone" in page and 'value="America/Los_Angeles"' in page
    # The common US zones come first.
    assert page.index('value="America/Los_Angeles"') < page.index('value="Africa/Abidjan"')
    response = client.post("/client/account/timezone", data={"timezone": "America/Los_Angeles"})
    assert response.status_code == 303
    assert _zone_of(org.id) == "America/Los_Angeles"
    page = client.get("/client/account").get_data(as_text=True)
    assert "Times are now shown and read in America/Los_Angeles." in page
    [event] = db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "timezone_changed")).all()
    assert event.organisation_id == org.id and event.actor_id == admin.id
    assert "from America/New_York to America/Los_Angeles" in event.message
    assert "America/Los_Angeles" in client.get("/client/users").get_data(as_text=True)
    # The same zone again writes nothing.
    client.post("/client/account/timezone", data={"timezone": "America/Los_Angeles"})
    assert len(db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "timezone_changed")).all()) == 1


def test_an_unknown_zone_is_refused_and_nothing_changes(client, acme):
    org = acme[0]
    for bad in ("Mars/Olympus_Mons", "", "america/los_angeles", "../../etc/passwd"):
        response = client.post("/client/account/timezone", data={"timezone": bad})
        assert response.status_code == 400
        assert "Choose a time zone from the list" in response.get_data(as_text=True)
        assert _zone_of(org.id) == "America/New_York"
    assert db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "timezone_changed")).all() == []


def test_a_member_cannot_change_the_zone(client, acme):
    org = acme[0]
    make_user("m@acme.example", role=Role.CLIENT_MEMBER, organisation=org)
    client.post("/auth/logout")
    login(client, "m@acme.example")
    assert client.get("/client/account").status_code == 403
    assert client.post("/client/account/timezone", data={"timezone": "America/Los_Angeles"}).status_code == 403
    assert _zone_of(org.id) == "America/New_York"
    assert "read as America/New_York time" in client.get("/client/tickets/new").get_data(as_text=True)