import re

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Invitation, Organisation, OutboxMessage, Role, User
from tests.conftest import PASSWORD, csrf_token_from, login, make_organisation, make_user

SIGNUP = {
    "organisation_name": "Harbor Clinic",
    "site_address": "5 Harbor Rd",
    "full_name": "Hana Admin",
    "email": "Hana@Harbor.example",
    "password": PASSWORD,
    "confirm": PASSWORD,
}


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_signup_creates_organisation_and_client_admin_unconfirmed_and_logs_nobody_in(client):
    response = client.post("/auth/signup", data=SIGNUP)
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/signup/check-inbox")
    user = db.session.scalars(select(User)).one()
    assert user.email == "hana@harbor.example" and user.role == Role.CLIENT_ADMIN
    assert user.organisation.name == "Harbor Clinic"
    assert user.password_hash.startswith("$argon2id$")
    assert user.email_confirmed_at is None
    assert db.session.scalars(select(OutboxMessage.kind)).all() == ["email_confirmation"]
    assert client.get("/client/").status_code == 302  # nothing is logged in before the link is opened


def test_signup_refuses_weak_password_and_keeps_what_was_typed(client):
    data = dict(SIGNUP, password="password123", confirm="password123")
    response = client.post("/auth/signup", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Password: " in page and "too common" in page
    assert 'value="Harbor Clinic"' in page
    assert count(User) == 0 and count(Organisation) == 0


def test_signup_refuses_short_password_and_mismatch(client):
    response = client.post("/auth/signup", data=dict(SIGNUP, password="short", confirm="other"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "at least 10 characters" in page and "The two passwords differ." in page
    assert count(User) == 0


def test_signup_with_existing_email_does_not_reveal_it(client):
    make_user("hana@harbor.example", organisation=make_organisation("Other"))
    response = client.post("/auth/signup", data=SIGNUP, follow_redirects=True)
    assert "Check your inbox" in response.get_data(as_text=True)
    assert count(User) == 1 and count(Organisation) == 1
    assert db.session.scalars(select(OutboxMessage.kind)).all() == ["signup_exists"]


def test_login_logout_and_generic_error(client):
    make_user("a@acme.example", organisation=make_organisation())
    wrong = client.post("/auth/login", data={"email": "a@acme.example", "password": "not-the-password"})
    nobody = client.post("/auth/login", data={"email": "nobody@acme.example", "password": "not-the-password"})
    assert wrong.status_code == nobody.status_code == 401
    assert "do not match an account" in wrong.get_data(as_text=True)
    assert wrong.get_data(as_text=True).count("do not match") == nobody.get_data(as_text=True).count("do not match")
    assert login(client, "A@Acme.example").status_code == 302
    assert client.get("/client/").status_code == 200
    client.post("/auth/logout")
    assert client.get("/client/").status_code == 302


def test_remember_me_sets_a_lasting_cookie(client):
    make_user("a@acme.example", organisation=make_organisation())
    response = client.post("/auth/login", data={"email": "a@acme.example", "password": PASSWORD, "remember": "y"})
    cookies = response.headers.getlist("Set-Cookie")
    assert any(c.startswith("remember_token=") and "HttpOnly" in c for c in cookies)


def test_login_redirect_ignores_foreign_next(client):
    make_user("a@acme.example", organisation=make_organisation())
    response = client.post("/auth/login?next=//evil.example/x", data={"email": "a@acme.example", "password": PASSWORD})
    assert response.headers["Location"].endswith("/client/")


def test_staff_land_on_dispatch(client):
    make_user("d@firm.example", role=Role.DISPATCHER)
    assert login(client, "d@firm.example").headers["Location"].endswith("/staff/")


def test_technicians_land_on_their_jobs(client):
    """Technicians log in on a phone to work their jobs; the dispatch board is the dispatchers' page."""
    make_user("t@firm.example", role=Role.TECHNICIAN)
    assert login(client, "t@firm.example").headers["Location"].endswith("/staff/my-jobs")


def _last_link(kind: str) -> str:
    body = db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id.desc())).first()
    return re.search(r"http://portal\.test(\S+)", body).group(1)


def test_password_reset_is_single_use_and_same_message_for_unknown(client):
    make_user("a@acme.example", organisation=make_organisation())
    unknown = client.post("/auth/reset", data={"email": "nobody@acme.example"}, follow_redirects=True)
    known = client.post("/auth/reset", data={"email": "a@acme.example"}, follow_redirects=True)
    message = "If an account exists for that address"
    assert message in unknown.get_data(as_text=True) and message in known.get_data(as_text=True)
    link = _last_link("password_reset")
    new_password = "a-brand-new-passphrase-42"
    assert client.post(link, data={"password": new_password, "confirm": new_password}).status_code == 302
    assert login(client, "a@acme.example", new_password).status_code == 302
    client.post("/auth/logout")
    reused = client.post(link, data={"password": "another-passphrase-43", "confirm": "another-passphrase-43"})
    assert reused.status_code == 302 and reused.headers["Location"].endswith("/auth/reset")
    assert login(client, "a@acme.example", new_password).status_code == 302


def test_password_reset_rejects_forged_token(client):
    assert client.get("/auth/reset/not-a-token").status_code == 302


def test_password_reset_ends_other_sessions(app, client):
    make_user("a@acme.example", organisation=make_organisation())
    other = app.test_client()
    login(other, "a@acme.example")
    assert other.get("/client/").status_code == 200
    client.post("/auth/reset", data={"email": "a@acme.example"})
    new_password = "a-brand-new-passphrase-42"
    client.post(_last_link("password_reset"), data={"password": new_password, "confirm": new_password})
    assert other.get("/client/").status_code == 302


def test_invitation_flow(client):
    org = make_organisation()
    make_user("admin@acme.example", organisation=org)
    login(client, "admin@acme.example")
    response = client.post("/client/users", data={"email": "Colleague@acme.example", "role": "client_member"})
    assert response.status_code == 302
    invitation = db.session.scalars(select(Invitation)).one()
    assert invitation.email == "colleague@acme.example"
    link = _last_link("invitation")
    client.post("/auth/logout")
    page = client.get(link)
    assert page.status_code == 200 and "Join Acme" in page.get_data(as_text=True)
    response = client.post(link, data={"full_name": "Cole League", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    user = db.session.scalars(select(User).where(User.email == "colleague@acme.example")).one()
    assert user.organisation_id == org.id and user.role == Role.CLIENT_MEMBER
    # The form sent again (a double click, or Back and send) is the join that went through, not a dead link.
    again = client.post(link, data={"full_name": "Cole League", "password": PASSWORD, "confirm": PASSWORD},
                        follow_redirects=True)
    page = again.get_data(as_text=True)
    assert "You have joined the Acme portal." in page and "expired or was already used" not in page
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == "colleague@acme.example")) == 1
    assert user.email_confirmed_at is not None  # the invitation link proved the address
    assert client.get(link).headers["Location"].endswith("/client/")  # no join form again, for them either
    client.post("/auth/logout")
    assert client.get(link).status_code == 302  # used once only


def test_inviting_the_same_person_twice_leaves_one_live_link(client):
    """The second invitation replaces the first (whose link then says it is no longer valid), the
    users page lists one, and once accepted no other link for that address offers the join form."""
    org = make_organisation()
    make_user("admin@acme.example", organisation=org)
    login(client, "admin@acme.example")
    client.post("/client/users", data={"email": "bob@acme.example", "role": "client_member"})
    first = _last_link("invitation")
    again = client.post("/client/users", data={"email": "Bob@acme.example", "role": "client_member"},
                        follow_redirects=True).get_data(as_text=True)
    assert "Invitation sent again to bob@acme.example: the earlier link no longer works." in again
    from portal import clock

    live = db.session.scalars(select(Invitation).where(Invitation.expires_at > clock.now())).all()
    assert [i.email for i in live] == ["bob@acme.example"]
    second = _last_link("invitation")
    assert first != second
    client.post("/auth/logout")
    assert "Join Acme" not in client.get(first, follow_redirects=True).get_data(as_text=True)
    assert "Join Acme" in client.get(second).get_data(as_text=True)
    client.post(second, data={"full_name": "Bob", "password": PASSWORD, "confirm": PASSWORD})
    assert db.session.scalars(select(User).where(User.email == "bob@acme.example")).one()
    client.post("/auth/logout")
    login(client, "admin@acme.example")
    assert "bob@acme.example" in client.get("/client/users").get_data(as_text=True)  # a colleague now
    assert "not yet accepted" not in client.get("/client/users").get_data(as_text=True)


def test_invitation_refusals_save_nothing(client):
    org = make_organisation()
    make_user("admin@acme.example", organisation=org)
    make_user("taken@acme.example", organisation=org)
    login(client, "admin@acme.example")
    bad_email = client.post("/client/users", data={"email": "not-an-email", "role": "client_member"})
    taken = client.post("/client/users", data={"email": "taken@acme.example", "role": "client_member"})
    bad_role = client.post("/client/users", data={"email": "x@acme.example", "role": "owner"})
    assert bad_email.status_code == taken.status_code == bad_role.status_code == 400
    assert "already has an account" in taken.get_data(as_text=True)
    assert count(Invitation) == 0


def test_members_cannot_invite(client):
    org = make_organisation()
    make_user("m@acme.example", role=Role.CLIENT_MEMBER, organisation=org)
    login(client, "m@acme.example")
    assert client.get("/client/users").status_code == 403
    assert client.post("/client/users", data={"email": "x@acme.example", "role": "client_member"}).status_code == 403


def test_csrf_is_required_on_forms(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    with app.app_context():
        make_user("a@acme.example", organisation=make_organisation())
    refused = client.post("/auth/login", data={"email": "a@acme.example", "password": PASSWORD})
    assert refused.status_code == 400
    token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
    accepted = client.post("/auth/login", data={"email": "a@acme.example", "password": PASSWORD, "csrf_token": token})
    assert accepted.status_code == 302


def test_signup_names_the_plan_the_visitor_chose(client):
    from tests.conftest import make_plan

    make_plan("priority", name="Priority")
    page = client.get("/auth/signup?plan=priority").get_data(as_text=True)
    assert "You chose <strong>Priority</strong>" in page
    assert "You chose" not in client.get("/auth/signup?plan=nonsense").get_data(as_text=True)
    response = client.post("/auth/signup?plan=priority", data=SIGNUP)
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/signup/check-inbox")


def test_signup_for_break_fix_promises_no_contract_step(client):
    from tests.conftest import make_plan

    make_plan("break-fix", name="Break/Fix", is_contract=False)
    page = client.get("/auth/signup?plan=break-fix").get_data(as_text=True)
    assert "You chose <strong>Break/Fix</strong>: no contract to sign" in page
    assert "how to pay" not in page
