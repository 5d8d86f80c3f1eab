"""Changing one's password knowing the current one: any account, from the link in every page's footer."""
from flask import g
from sqlalchemy import select

from portal.extensions import db
from portal.models import AccountEvent, Role, User
from tests.conftest import PASSWORD, login, make_organisation, make_user

NEW = "a-brand-new-passphrase-42"


def _member():
    return make_user("m@acme.example", role=Role.CLIENT_MEMBER, organisation=make_organisation(), name="Mia Member")


def test_a_member_changes_their_password_and_every_other_session_ends(app, client):
    _member()
    other = app.test_client()
    login(other, "m@acme.example")
    login(client, "m@acme.example")
    assert 'href="/auth/password"' in client.get("/client/").get_data(as_text=True)
    response = client.post("/auth/password", data={"current": PASSWORD, "password": NEW, "confirm": NEW})
    assert response.status_code == 302 and response.headers["Location"].endswith("/client/")
    page = client.get("/client/", follow_redirects=True).get_data(as_text=True)
    assert "Your password is changed" in page  # this browser stays signed in
    g.pop("_login_user", None)  # the test's app context outlives requests: forget the user the last one loaded
    assert other.get("/client/").status_code == 302  # the other one is signed out
    client.post("/auth/logout")
    assert login(client, "m@acme.example", PASSWORD).status_code == 401  # the old password no longer works
    assert login(client, "m@acme.example", NEW).status_code == 302
    event = db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "password_changed")).one()
    assert "Mia Member (m@acme.example) changed their password" in event.message


def test_a_wrong_current_password_changes_nothing_and_says_so(client):
    user = _member()
    before = user.password_hash
    login(client, "m@acme.example")
    response = client.post("/auth/password", data={"current": "not-my-password", "password": NEW, "confirm": NEW})
    assert response.status_code == 400
    assert "Current password: That is not your current password. Nothing changed." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash == before
    assert client.get("/client/").status_code == 200  # still signed in
    assert db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "password_changed")).all() == []


def test_a_weak_or_mismatched_new_password_is_refused(client):
    user = _member()
    before = user.password_hash
    login(client, "m@acme.example")
    for data, words in (({"password": "short", "confirm": "short"}, "at least 10 characters"),
                        ({"password": NEW, "confirm": NEW + "x"}, "The two passwords differ."),
                        ({"password": "m@acme.example", "confirm": "m@acme.example"}, "too common or easy to guess")):
        response = client.post("/auth/password", data={"current": PASSWORD, **data})
        assert response.status_code == 400 and words in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash == before


def test_staff_change_their_password_and_land_on_their_own_page(client):
    make_user("tech@firm.example", role=Role.TECHNICIAN, name="Tara Tech")
    login(client, "tech@firm.example")
    response = client.post("/auth/password", data={"current": PASSWORD, "password": NEW, "confirm": NEW})
    assert response.status_code == 302 and response.headers["Location"].endswith("/staff/my-jobs")


def test_the_page_needs_a_log_in(client):
    response = client.get("/auth/password")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_an_invited_colleague_cannot_make_a_password_of_their_own_address(client):
    org = make_organisation()
    make_user("admin@acme.example", organisation=org)
    login(client, "admin@acme.example")
    client.post("/client/users", data={"email": "jonathan.harrington@acme.example", "role": "client_member"})
    from tests.auth.test_auth import _last_link

    link = _last_link("invitation")
    client.post("/auth/logout")
    weak = "jonathan.harrington@acme.example"
    response = client.post(link, data={"full_name": "Jonathan Harrington", "password": weak, "confirm": weak})
    assert response.status_code == 400 and "too common or easy to guess" in response.get_data(as_text=True)
