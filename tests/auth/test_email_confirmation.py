"""Sign-up confirms the address by email before the account opens.

Sign-up answers the same way for a new address and a registered one (no user enumeration); the
email says which it was. The confirmation link opens the account once, expires, and carries the
plan the prospect picked.
"""
import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from portal import clock
from portal.auth import hash_password
from portal.extensions import db
from portal.models import Organisation, OutboxMessage, User
from portal.services import accounts
from tests.auth.test_auth import SIGNUP
from tests.conftest import PASSWORD, csrf_token_from, login, make_organisation, make_plan, make_user

CHECK_INBOX = "/auth/signup/check-inbox"
OTHER_PASSWORD = "an-intruder-passphrase-91"


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def kinds() -> list[str]:
    return db.session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)).all()


def last_email(kind: str) -> OutboxMessage:
    return db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id.desc())
    ).first()


def links_in(message: OutboxMessage) -> list[str]:
    return re.findall(r"http://portal\.test(\S+)", message.body)


def confirmation_link() -> str:
    (link,) = links_in(last_email("email_confirmation"))
    return link


def unconfirmed_user(email: str = "hana@harbor.example", password: str = PASSWORD) -> User:
    user = make_user(email, organisation=make_organisation("Harbor Clinic"), password=password)
    user.email_confirmed_at = None
    db.session.commit()
    return user


# --- one answer for every address ----------------------------------------------------------------------------


def _signup_answers(app, email: str) -> tuple:
    """The POST answer and the page it leads to, with the CSRF token blanked out."""
    client = app.test_client()
    token = csrf_token_from(client.get("/auth/signup?plan=priority").get_data(as_text=True))
    response = client.post("/auth/signup?plan=priority", data=dict(SIGNUP, email=email, csrf_token=token))
    page = client.get(response.headers["Location"])
    blank = lambda html: re.sub(r'(name="csrf_token"[^>]*value=")[^"]+', r"\1", html)  # noqa: E731
    headers = sorted((k, v) for k, v in response.headers.items() if k not in ("Set-Cookie", "Date"))
    return (response.status_code, headers, response.get_data(as_text=True),
            page.status_code, blank(page.get_data(as_text=True)))


def test_signup_answers_byte_for_byte_alike_for_new_registered_and_unconfirmed_addresses(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        make_plan("priority")
        make_user("taken@harbor.example", organisation=make_organisation("Other"))
        unconfirmed_user("pending@harbor.example")
    new = _signup_answers(app, "new@harbor.example")
    registered = _signup_answers(app, "Taken@Harbor.example")
    pending = _signup_answers(app, "pending@harbor.example")
    assert new == registered == pending
    assert new[0] == 302 and ("Location", "/auth/signup/check-inbox") in new[1]
    assert "Check your inbox: we sent the next step to that address." in new[4]
    with app.app_context():
        assert count(User) == 3 and count(Organisation) == 3  # the registered addresses added no row
        assert kinds() == ["email_confirmation", "signup_exists", "email_confirmation"]


def test_registered_address_is_told_by_email_with_links_to_log_in_and_reset(client):
    make_user("hana@harbor.example", organisation=make_organisation("Other"))
    response = client.post("/auth/signup", data=SIGNUP)
    assert response.headers["Location"].endswith(CHECK_INBOX)
    assert count(User) == 1 and count(Organisation) == 1
    message = last_email("signup_exists")
    assert message.recipient == "hana@harbor.example" and kinds() == ["signup_exists"]
    assert links_in(message) == ["/auth/login", "/auth/reset"]
    assert client.get("/client/").status_code == 302


def test_unconfirmed_address_gets_its_confirmation_link_again_and_no_new_row(client):
    client.post("/auth/signup", data=SIGNUP)
    first = confirmation_link()
    client.post("/auth/signup", data=dict(SIGNUP, organisation_name="Another name"))
    assert count(User) == 1 and count(Organisation) == 1
    assert db.session.scalars(select(Organisation.name)).one() == "Harbor Clinic"
    assert kinds() == ["email_confirmation", "email_confirmation"]
    assert last_email("email_confirmation").recipient == "hana@harbor.example"
    assert client.post(confirmation_link(), data={"password": PASSWORD}).headers["Location"].endswith("/client/")
    client.post("/auth/logout")
    assert client.post(first, data={"password": PASSWORD}).headers["Location"].endswith("/auth/login")  # used


# --- the confirmation link --------------------------------------------------------------------------------


def test_confirmation_link_logs_in_once_and_only_once(client):
    client.post("/auth/signup", data=SIGNUP)
    link = confirmation_link()
    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "hana@harbor.example" in html and "Harbor Clinic" in html
    assert db.session.scalars(select(User)).one().email_confirmed_at is None  # opening the page writes nothing

    response = client.post(link, data={"password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/client/")
    assert client.get("/client/").status_code == 200
    user = db.session.scalars(select(User)).one()
    assert user.email_confirmed_at is not None and user.last_login_at is not None
    assert kinds() == ["email_confirmation", "welcome"]

    client.post("/auth/logout")
    again = client.get(link, follow_redirects=True)
    assert "already used" in again.get_data(as_text=True)
    reused = client.post(link, data={"password": PASSWORD})
    assert reused.status_code == 302 and reused.headers["Location"].endswith("/auth/login")
    assert client.get("/client/").status_code == 302  # the second use logged nobody in
    assert kinds() == ["email_confirmation", "welcome"]
    assert login(client, "hana@harbor.example").status_code == 302  # from now on, the password alone


def test_confirmation_starts_a_fresh_session(client):
    client.post("/auth/signup", data=SIGNUP)
    with client.session_transaction() as session:
        session["planted"] = "by-an-attacker"
    client.post(confirmation_link(), data={"password": PASSWORD})
    with client.session_transaction() as session:
        assert "planted" not in session and session["_user_id"].endswith(":1")


def test_plan_picked_before_signing_up_survives_the_link(client):
    make_plan("priority")
    client.post("/auth/signup?plan=priority", data=SIGNUP)
    response = client.post(confirmation_link(), data={"password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/client/plans/priority")


def test_a_link_sent_again_still_leads_to_the_plan_picked_before_signing_up(client):
    make_plan("priority")
    make_plan("premium-24-7")
    client.post("/auth/signup?plan=priority", data=SIGNUP)
    client.post("/auth/confirm-again", data={"email": SIGNUP["email"]})
    assert kinds() == ["email_confirmation", "email_confirmation"]
    client.post("/auth/signup?plan=premium-24-7", data=SIGNUP)  # signed up again, another plan picked
    client.post("/auth/confirm-again", data={"email": SIGNUP["email"]})
    response = client.post(confirmation_link(), data={"password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/client/plans/premium-24-7")
    assert db.session.scalars(select(User)).one().sign_up_plan is None


def test_unknown_plan_slug_leads_to_the_dashboard(client):
    client.post("/auth/signup?plan=no-such-plan", data=SIGNUP)
    response = client.post(confirmation_link(), data={"password": PASSWORD})
    assert response.headers["Location"].endswith("/client/")


def test_confirmation_link_expires_after_48_hours(client, monkeypatch):
    signed_up = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(clock, "now", lambda: signed_up)
    client.post("/auth/signup", data=SIGNUP)
    link = confirmation_link()
    monkeypatch.setattr(clock, "now", lambda: signed_up + accounts.CONFIRM_MAX_AGE + timedelta(seconds=1))
    response = client.get(link)
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/confirm-again")
    assert "has expired" in client.get("/auth/confirm-again").get_data(as_text=True)
    refused = client.post(link, data={"password": PASSWORD})
    assert refused.headers["Location"].endswith("/auth/confirm-again")
    assert db.session.scalars(select(User)).one().email_confirmed_at is None
    assert client.get("/client/").status_code == 302

    monkeypatch.setattr(clock, "now", lambda: signed_up + accounts.CONFIRM_MAX_AGE - timedelta(minutes=1))
    assert client.post(link, data={"password": PASSWORD}).headers["Location"].endswith("/client/")


def test_tampered_or_foreign_links_are_refused_with_a_clear_message(client):
    client.post("/auth/signup", data=SIGNUP)
    link = confirmation_link()
    token = link.rsplit("/", 1)[1]
    forged = link[: -len(token)] + token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    cut = link[:-10]
    client.post("/auth/reset", data={"email": "hana@harbor.example"})
    reset_token = links_in(last_email("password_reset"))[0].rsplit("/", 1)[1]
    for bad in (forged, cut, "/auth/confirm/" + reset_token, "/auth/confirm/not-a-token"):
        response = client.post(bad, data={"password": PASSWORD})
        assert response.status_code == 302 and response.headers["Location"].endswith("/auth/confirm-again"), bad
        assert "not complete or was changed" in client.get("/auth/confirm-again").get_data(as_text=True)
    assert db.session.scalars(select(User)).one().email_confirmed_at is None


def test_wrong_password_at_confirmation_opens_nothing(client):
    client.post("/auth/signup", data=SIGNUP)
    response = client.post(confirmation_link(), data={"password": OTHER_PASSWORD})
    assert response.status_code == 401
    assert "not the password chosen when this address was signed up" in response.get_data(as_text=True)
    assert db.session.scalars(select(User)).one().email_confirmed_at is None
    assert client.get("/client/").status_code == 302


def test_someone_who_signed_up_first_with_my_address_cannot_have_me_open_their_account(client):
    """Pre-registration: a stranger signs up with my address and their password. My own sign-up
    mails me their pending account's link; my password does not open it, a reset makes it mine."""
    client.post("/auth/signup", data=dict(SIGNUP, password=OTHER_PASSWORD, confirm=OTHER_PASSWORD))
    client.post("/auth/signup", data=SIGNUP)
    assert client.post(confirmation_link(), data={"password": PASSWORD}).status_code == 401
    client.post("/auth/reset", data={"email": "hana@harbor.example"})
    (reset_link,) = links_in(last_email("password_reset"))
    client.post(reset_link, data={"password": PASSWORD, "confirm": PASSWORD})
    user = db.session.scalars(select(User)).one()
    assert user.email_confirmed_at is not None  # the reset link proved the address
    assert login(client, "hana@harbor.example", OTHER_PASSWORD).status_code == 401
    assert login(client, "hana@harbor.example").status_code == 302


# --- log-in before confirmation, and asking for the link again ---------------------------------------------


def test_login_is_refused_before_confirmation_with_a_way_to_get_the_link(client):
    unconfirmed_user()
    response = login(client, "hana@harbor.example")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "not confirmed yet" in page and 'href="/auth/confirm-again"' in page
    assert client.get("/client/").status_code == 302
    assert db.session.scalars(select(User)).one().last_login_at is None


def test_wrong_password_on_an_unconfirmed_account_answers_like_an_unknown_address(client):
    unconfirmed_user()
    wrong = client.post("/auth/login", data={"email": "hana@harbor.example", "password": OTHER_PASSWORD})
    unknown = client.post("/auth/login", data={"email": "nobody@harbor.example", "password": OTHER_PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda r: re.sub(r'value="[^"]*@harbor\.example"', "", r.get_data(as_text=True))  # noqa: E731
    assert strip(wrong) == strip(unknown)
    assert "not confirmed" not in strip(wrong)


def test_resend_answers_alike_for_any_address_and_mails_only_a_pending_one(client):
    make_user("known@harbor.example", organisation=make_organisation("Other"))
    unconfirmed_user()
    answers = [client.post("/auth/confirm-again", data={"email": email})
               for email in ("nobody@harbor.example", "known@harbor.example", "Hana@Harbor.example")]
    assert {a.status_code for a in answers} == {302}
    assert {a.headers["Location"] for a in answers} == {"/auth/login"}
    assert len({a.get_data() for a in answers}) == 1
    assert kinds() == ["email_confirmation"]
    assert last_email("email_confirmation").recipient == "hana@harbor.example"
    response = client.post(confirmation_link(), data={"password": PASSWORD})
    assert response.headers["Location"].endswith("/client/")


def test_resend_keeps_what_was_typed_on_an_error(client):
    response = client.post("/auth/confirm-again", data={"email": "not an address"})
    assert response.status_code == 400 and 'value="not an address"' in response.get_data(as_text=True)


def test_resend_is_rate_limited_like_the_reset_form(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    client = app.test_client()
    statuses = [client.post("/auth/confirm-again", data={"email": f"u{i}@harbor.example"}).status_code for i in range(6)]
    assert statuses == [302] * 5 + [429]


def test_accounts_made_by_staff_invitation_or_seed_need_no_confirmation(client):
    """Only a self-service sign-up waits for its link; every other account is confirmed when made."""
    user = User(email="tech@firm.example", role="technician", password_hash=hash_password(PASSWORD))
    db.session.add(user)
    db.session.commit()
    assert user.email_confirmed_at is not None
    assert login(client, "tech@firm.example").status_code == 302


def test_migration_confirms_the_accounts_that_existed_before(tmp_path):
    from flask_migrate import upgrade
    from sqlalchemy import text

    from portal import create_app
    from tests.conftest import base_config

    app = create_app(base_config("sqlite:///" + str(tmp_path / "before.sqlite3")))
    with app.app_context():
        upgrade(revision="68b50a7a8d84")
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO organisation (name, site_address, timezone, created_at) "
                "VALUES ('Acme', '1 Main St', 'UTC', '2026-01-01 00:00:00')"))
            connection.execute(text(
                "INSERT INTO user_account (email, full_name, password_hash, role, organisation_id, active, "
                "session_version, created_at) VALUES ('old@acme.example', 'Old', 'x', 'client_admin', 1, 1, 1, "
                "'2026-01-01 00:00:00')"))
        upgrade()
        user = db.session.scalars(select(User)).one()
        assert user.email_confirmed_at is not None
        db.session.remove()
        db.engine.dispose()
