"""Changing one's email address: asked with the password, made by the link sent to the new address.

The form answers alike whether or not the new address has an account (no enumeration): an address
already in use gets an email saying so instead of a link. Nothing changes until the link is opened
(and its page sent); the old address is then told, and every session of the account ends.
"""
import re
from datetime import timedelta

from flask import g
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.models import AccountEvent, Invitation, OutboxMessage, Role, User
from portal.services import accounts
from tests.conftest import PASSWORD, login, make_organisation, make_user

OLD = "m@acme.example"
NEW = "mia@newmail.example"
SENT = "Check the inbox of"


def _member() -> User:
    return make_user(OLD, role=Role.CLIENT_MEMBER, organisation=make_organisation(), name="Mia Member")


def _emails(kind: str) -> list[OutboxMessage]:
    return db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)).all()


def _link(kind: str = accounts.EMAIL_CHANGE_EMAIL) -> str:
    return re.search(r"http://portal\.test(\S+)", _emails(kind)[-1].body).group(1)


def _email_of(user_id: int) -> str:
    db.session.expire_all()
    return db.session.get(User, user_id).email


def _ask(client, email: str = NEW, current: str = PASSWORD):
    return client.post("/auth/email", data={"email": email, "current": current})


def test_the_address_changes_only_through_the_link_sent_to_it(app, client):
    user = _member()
    other = app.test_client()
    login(other, OLD)
    login(client, OLD)
    assert 'href="/auth/email"' in client.get("/client/").get_data(as_text=True)  # the footer link
    response = _ask(client, "  Mia@NewMail.example ")
    assert response.status_code == 302 and response.headers["Location"].endswith("/client/")
    page = client.get("/client/").get_data(as_text=True)
    assert SENT in page and NEW in page
    [sent] = _emails(accounts.EMAIL_CHANGE_EMAIL)
    assert sent.recipient == NEW and "/auth/email/confirm/" in sent.body
    assert _email_of(user.id) == OLD  # nothing changed yet
    link = _link()
    page = client.get(link)
    assert page.status_code == 200 and NEW in page.get_data(as_text=True)
    assert _email_of(user.id) == OLD  # opening the link (a mail scanner may) changes nothing
    response = client.post(link)
    assert response.status_code == 302 and response.headers["Location"].endswith("/client/")
    assert f"Your address is now {NEW}" in client.get("/client/").get_data(as_text=True)  # this browser stays in
    assert _email_of(user.id) == NEW
    [notice] = _emails("email_changed")
    assert notice.recipient == OLD and NEW in notice.body
    event = db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "email_changed")).one()
    assert event.message == f"Mia Member ({OLD}) changed their address to {NEW}; every other session was signed out."
    g.pop("_login_user", None)
    assert other.get("/client/").status_code == 302  # the other session ended
    client.post("/auth/logout")
    assert login(client, OLD).status_code == 401
    assert login(client, NEW).status_code == 302


def test_a_browser_not_logged_in_logs_in_first_and_comes_back_to_the_link(app, client):
    user = _member()
    login(client, OLD)
    _ask(client)
    link = _link()
    fresh = app.test_client()
    g.pop("_login_user", None)  # the test's app context outlives requests: forget the user the last one loaded
    response = fresh.post(link)
    assert response.status_code == 302 and "/auth/login?next=" in response.headers["Location"]
    assert _email_of(user.id) == OLD
    response = fresh.post("/auth/login?next=" + link, data={"email": OLD, "password": PASSWORD})
    assert response.headers["Location"].endswith(link)
    assert fresh.post(link).status_code == 302 and _email_of(user.id) == NEW


def test_the_link_email_does_not_name_the_account_to_whoever_owns_the_new_address(client):
    _member()
    login(client, OLD)
    _ask(client)
    [sent] = _emails(accounts.EMAIL_CHANGE_EMAIL)
    assert OLD not in sent.body and "Mia" not in sent.body


def test_a_wrong_password_changes_nothing_and_keeps_the_address_typed(client):
    user = _member()
    login(client, OLD)
    response = _ask(client, current="not-my-password")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Current password: That is not your current password. Nothing changed." in body
    assert f'value="{NEW}"' in body
    assert _emails(accounts.EMAIL_CHANGE_EMAIL) == [] and _email_of(user.id) == OLD


def test_the_same_address_is_refused(client):
    user = _member()
    login(client, OLD)
    response = _ask(client, " M@Acme.example")
    assert response.status_code == 400 and "That is already your address. Nothing changed." in response.get_data(as_text=True)
    assert _emails(accounts.EMAIL_CHANGE_EMAIL) == [] and _email_of(user.id) == OLD


def test_an_invalid_address_is_refused_and_kept_in_the_form(client):
    user = _member()
    login(client, OLD)
    for typed in ("not-an-address", "a@b", ""):
        response = _ask(client, typed)
        body = response.get_data(as_text=True)
        assert response.status_code == 400 and "New email" in body
        if typed:
            assert f'value="{typed}"' in body
    assert db.session.scalars(select(OutboxMessage)).all() == [] and _email_of(user.id) == OLD


def test_a_taken_address_gets_the_same_answer_and_an_email_saying_it_has_an_account(client):
    user = _member()
    make_user(NEW, organisation=make_organisation("Other"), name="Nora Newmail")
    login(client, OLD)
    response = _ask(client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/client/")
    assert SENT in client.get("/client/").get_data(as_text=True)
    assert _emails(accounts.EMAIL_CHANGE_EMAIL) == []
    [warning] = _emails("email_change_exists")
    assert warning.recipient == NEW and "already has an account" in warning.body and "/auth/email/confirm/" not in warning.body
    assert _email_of(user.id) == OLD
    assert db.session.scalars(select(AccountEvent).where(AccountEvent.kind == "email_changed")).all() == []


def test_an_address_taken_after_the_link_was_sent_is_refused_clearly(client):
    user = _member()
    login(client, OLD)
    _ask(client)
    link = _link()
    make_user(NEW, organisation=make_organisation("Other"))
    response = client.post(link, follow_redirects=True)
    assert "has been given to another account since the link was sent. Nothing changed" in response.get_data(as_text=True)
    assert _email_of(user.id) == OLD and _emails("email_changed") == []


def test_an_expired_link_changes_nothing(client, monkeypatch):
    user = _member()
    asked = clock.now()
    monkeypatch.setattr(clock, "now", lambda: asked)
    login(client, OLD)
    _ask(client)
    link = _link()
    monkeypatch.setattr(clock, "now", lambda: asked + accounts.EMAIL_CHANGE_MAX_AGE + timedelta(seconds=1))
    response = client.post(link, follow_redirects=True)
    assert "has expired or was already used. Nothing changed" in response.get_data(as_text=True)
    assert _email_of(user.id) == OLD
    monkeypatch.setattr(clock, "now", lambda: asked + accounts.EMAIL_CHANGE_MAX_AGE - timedelta(minutes=1))
    assert client.post(link).status_code == 302 and _email_of(user.id) == NEW


def test_a_tampered_link_changes_nothing(client):
    user = _member()
    login(client, OLD)
    _ask(client)
    link = _link()
    for bad in (link[:-3], link + "x", "/auth/email/confirm/not-a-token"):
        response = client.post(bad, follow_redirects=True)
        assert "is not complete or was changed" in response.get_data(as_text=True)
    assert _email_of(user.id) == OLD


def test_a_link_is_used_once_even_if_the_address_changes_back(client):
    user = _member()
    login(client, OLD)
    _ask(client)
    first = _link()
    assert client.post(first).status_code == 302 and _email_of(user.id) == NEW
    again = client.post(first, follow_redirects=True)
    assert "has expired or was already used" in again.get_data(as_text=True)
    _ask(client, OLD)  # and back again
    client.post(_link())
    assert _email_of(user.id) == OLD
    client.post(first)
    assert _email_of(user.id) == OLD  # the first link stays dead


def test_a_link_opened_by_another_logged_in_account_changes_nothing(app, client):
    user = _member()
    make_user("ada@acme.example", organisation=user.organisation, name="Ada Admin")
    login(client, OLD)
    _ask(client)
    link = _link()
    intruder = app.test_client()
    g.pop("_login_user", None)
    assert login(intruder, "ada@acme.example").status_code == 302
    for method in (intruder.get, intruder.post):
        g.pop("_login_user", None)  # the test's app context outlives requests: forget the user the last one loaded
        response = method(link, follow_redirects=True)
        assert "is for another account than the one logged in here. Nothing changed" in response.get_data(as_text=True)
    assert _email_of(user.id) == OLD
    g.pop("_login_user", None)
    assert client.post(link).status_code == 302 and _email_of(user.id) == NEW  # still good for its owner


def test_a_password_change_ends_a_pending_link(client):
    user = _member()
    login(client, OLD)
    _ask(client)
    link = _link()
    new_password = "a-brand-new-passphrase-42"
    client.post("/auth/password", data={"current": PASSWORD, "password": new_password, "confirm": new_password})
    client.post(link)
    assert _email_of(user.id) == OLD


def test_staff_change_their_address_and_the_page_needs_a_log_in(client):
    tech = make_user("tech@firm.example", role=Role.TECHNICIAN, name="Tara Tech")
    response = client.get("/auth/email")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    login(client, "tech@firm.example")
    assert _ask(client, "tara@firm.example").headers["Location"].endswith("/staff/my-jobs")
    assert client.post(_link()).headers["Location"].endswith("/staff/my-jobs")
    assert _email_of(tech.id) == "tara@firm.example"


def test_invitations_waiting_for_the_new_address_end(client):
    user = _member()
    admin = make_user("ada@other.example", organisation=make_organisation("Other"), name="Ada Admin")
    accounts.invite_colleague(admin, NEW, Role.CLIENT_MEMBER, clock.now())
    invitation_link = _link("invitation")
    login(client, OLD)
    _ask(client)
    client.post(_link())
    assert _email_of(user.id) == NEW
    invitation = db.session.scalars(select(Invitation)).one()
    assert invitation.expires_at <= clock.now()
    client.post("/auth/logout")
    response = client.get(invitation_link)
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")


def test_a_reset_link_sent_to_the_old_address_dies_with_the_change(client):
    user = _member()
    client.post("/auth/reset", data={"email": OLD})
    reset_link = _link("password_reset")
    login(client, OLD)
    _ask(client)
    client.post(_link())
    client.post("/auth/logout")
    new_password = "a-brand-new-passphrase-42"
    response = client.post(reset_link, data={"password": new_password, "confirm": new_password})
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/reset")
    assert login(client, NEW, new_password).status_code == 401 and _email_of(user.id) == NEW
