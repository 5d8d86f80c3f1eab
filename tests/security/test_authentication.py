"""Authentication checks beyond tests/auth: hashing parameters, password rules on every form that
sets one, throttling per account and per address (memory and Redis storage), no enumeration,
expiring tokens, session renewal and clearing, cookie flags in development and production."""
from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from argon2 import extract_parameters
from itsdangerous.timed import TimestampSigner
from sqlalchemy import func, select

from portal import clock
from portal.auth import hash_password, password_problem, verify_password
from portal.extensions import db
from portal.models import Invitation, OutboxMessage, Role, User
from portal.services import accounts
from tests.conftest import PASSWORD, base_config, login, make_organisation, make_user
from tests.security.figures import record

REDIS_URL = "redis://127.0.0.1:6379/7"


def _last_link(kind: str) -> str:
    body = db.session.scalars(
        select(OutboxMessage.body).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id.desc())
    ).first()
    return re.search(r"http://portal\.test(\S+)", body).group(1)


# --- hashing and password rules -------------------------------------------------------------------


def test_passwords_are_hashed_with_argon2id_and_owasp_parameters():
    stored = hash_password(PASSWORD)
    parameters = extract_parameters(stored)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert parameters.memory_cost >= 19 * 1024 and parameters.time_cost >= 2  # OWASP minimum for argon2id
    assert hash_password(PASSWORD) != stored  # salted
    assert verify_password(stored, PASSWORD) and not verify_password(stored, PASSWORD + "x")
    assert not verify_password("not-a-hash", PASSWORD)


@pytest.mark.parametrize("password", ["password123", "qwertyuiop", "1234567890", "iloveyou12", "letmein2024"])
def test_common_passwords_are_refused(password):
    assert password_problem(password) is not None


def test_short_and_overlong_passwords_are_refused_and_a_good_one_accepted():
    assert "at least 10" in password_problem("Xk3#pQ9!z")
    assert "at most 200" in password_problem("x7Y" * 70)
    assert password_problem("copper-lantern-grows-quietly") is None


@pytest.mark.parametrize("length", [72, 73, 100, 200])
def test_long_passphrases_up_to_the_limit_are_judged_not_crashed_on(length):
    """zxcvbn raises past 72 characters: a 73-character passphrase answered 500 on every password form."""
    passphrase = ("copper-lantern-grows-quietly-" * 8)[:length]
    assert password_problem(passphrase) is None
    assert password_problem("0" * length) is not None


def test_reset_form_applies_the_password_rules_and_changes_nothing_on_refusal(client):
    user = make_user("a@acme.example", organisation=make_organisation())
    before = user.password_hash
    client.post("/auth/reset", data={"email": "a@acme.example"})
    link = _last_link("password_reset")
    for weak in ("short", "password123"):
        response = client.post(link, data={"password": weak, "confirm": weak})
        assert response.status_code == 400
        assert "New password: " in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).password_hash == before


def test_invitation_form_applies_the_password_rules(client):
    org = make_organisation()
    admin = make_user("admin@acme.example", organisation=org)
    accounts.invite_colleague(admin, "new@acme.example", Role.CLIENT_MEMBER, clock.now())
    link = _last_link("invitation")
    response = client.post(link, data={"full_name": "New Person", "password": "password123", "confirm": "password123"})
    assert response.status_code == 400 and "too common" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


# --- throttling -------------------------------------------------------------------------------------


def _attempt(client, email: str, address: str, password: str = "wrong-password-1"):
    return client.post("/auth/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def _throttles_per_account(app) -> None:
    client = app.test_client()
    with app.app_context():
        make_user("a@acme.example", organisation=make_organisation())
    statuses = [_attempt(client, "a@acme.example", f"10.0.0.{i}").status_code for i in range(1, 6)]
    assert statuses == [401] * 5
    # the sixth guess from yet another address is refused, even with the right password
    assert _attempt(client, "A@Acme.example ", "10.0.0.99", PASSWORD).status_code == 429
    # other accounts are not affected
    assert _attempt(client, "b@acme.example", "10.0.0.100").status_code == 401
    record("auth: throttled log-in attempts", 7)


def _throttles_per_address(app) -> None:
    client = app.test_client()
    statuses = [_attempt(client, f"user{i}@acme.example", "192.0.2.7").status_code for i in range(10)]
    assert statuses == [401] * 10
    refused = _attempt(client, "user99@acme.example", "192.0.2.7")
    assert refused.status_code == 429 and "Wait a minute" in refused.get_data(as_text=True)
    assert _attempt(client, "user99@acme.example", "192.0.2.8").status_code == 401
    record("auth: throttled log-in attempts", 12)


def test_login_is_throttled_per_account(make_app):
    _throttles_per_account(make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://"))


def test_login_is_throttled_per_address(make_app):
    _throttles_per_address(make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://"))


@pytest.fixture
def redis_db7():
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        connection.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    connection.flushdb()
    yield connection
    connection.flushdb()


def test_throttling_uses_redis_when_redis_url_is_set(make_app, monkeypatch, redis_db7):
    """Several gunicorn workers share the counts: the storage comes from REDIS_URL."""
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    app = make_app(RATELIMIT_ENABLED=True)
    assert app.config["RATELIMIT_STORAGE_URI"] == REDIS_URL
    _throttles_per_account(app)
    assert redis_db7.keys("LIMITS*"), "no rate-limit counters were written to Redis"
    redis_db7.flushdb()
    _throttles_per_address(app)


# --- no enumeration -----------------------------------------------------------------------------------


def test_login_answers_alike_for_unknown_wrong_and_deactivated_accounts(client):
    org = make_organisation()
    make_user("a@acme.example", organisation=org)
    gone = make_user("gone@acme.example", organisation=org)
    gone.active = False
    db.session.commit()
    pages = [
        client.post("/auth/login", data={"email": email, "password": password})
        for email, password in (("a@acme.example", "wrong-password-1"), ("nobody@acme.example", "wrong-password-1"),
                                ("gone@acme.example", PASSWORD))
    ]
    assert {p.status_code for p in pages} == {401}
    bodies = {re.sub(r'value="[^"]*@acme\.example"', "", p.get_data(as_text=True)) for p in pages}
    assert len(bodies) == 1


def test_reset_request_answers_alike_for_known_and_unknown(client):
    make_user("a@acme.example", organisation=make_organisation())
    known = client.post("/auth/reset", data={"email": "a@acme.example"})
    unknown = client.post("/auth/reset", data={"email": "nobody@acme.example"})
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"]
    assert known.get_data() == unknown.get_data()


# --- tokens expire and die once used ----------------------------------------------------------------------


def test_reset_link_expires_after_an_hour(client, monkeypatch):
    make_user("a@acme.example", organisation=make_organisation())
    issued = int(time.time()) - int(accounts.RESET_MAX_AGE.total_seconds()) - 5
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued)
    client.post("/auth/reset", data={"email": "a@acme.example"})
    monkeypatch.undo()
    link = _last_link("password_reset")
    response = client.post(link, data={"password": "a-brand-new-passphrase-42", "confirm": "a-brand-new-passphrase-42"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/reset")
    assert login(client, "a@acme.example").status_code == 302  # the old password still works


def test_reset_link_dies_when_the_password_changes_another_way(client):
    user = make_user("a@acme.example", organisation=make_organisation())
    client.post("/auth/reset", data={"email": "a@acme.example"})
    link = _last_link("password_reset")
    user.password_hash = hash_password("changed-elsewhere-77")
    db.session.commit()
    assert client.get(link).status_code == 302


def test_invitation_expires_and_is_single_use(client):
    org = make_organisation()
    admin = make_user("admin@acme.example", organisation=org)
    accounts.invite_colleague(admin, "late@acme.example", Role.CLIENT_MEMBER, clock.now() - timedelta(days=8))
    expired_link = _last_link("invitation")
    response = client.post(expired_link, data={"full_name": "Late", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/auth/login")
    assert db.session.scalar(select(func.count()).select_from(User)) == 1
    invitation = db.session.scalars(select(Invitation)).one()
    assert invitation.accepted_at is None and len(invitation.token_hash) == 64  # stored hashed only
    assert expired_link.rsplit("/", 1)[1] not in invitation.token_hash


# --- sessions ----------------------------------------------------------------------------------------------------


def _session_cookie(response) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith("session="):
            return header
    return ""


def test_log_in_starts_a_fresh_session(client):
    make_user("a@acme.example", organisation=make_organisation())
    with client.session_transaction() as session:
        session["planted"] = "by-an-attacker"
    before = client.get_cookie("session", domain="portal.test").value
    response = login(client, "a@acme.example")
    assert response.status_code == 302
    assert client.get_cookie("session", domain="portal.test").value != before
    with client.session_transaction() as session:
        assert "planted" not in session and session["_user_id"].endswith(":1")


def test_log_out_clears_the_session_cookie(client):
    make_user("a@acme.example", organisation=make_organisation())
    login(client, "a@acme.example")
    with client.session_transaction() as session:
        assert "_user_id" in session
    response = client.post("/auth/logout")
    assert _session_cookie(response)  # the browser's cookie is replaced ...
    with client.session_transaction() as session:
        assert not {"_user_id", "_fresh", "_id"} & set(session)  # ... by one that names nobody (only the goodbye message)
    assert client.get("/client/").status_code == 302


def test_signing_out_everywhere_kills_copied_cookies(app, client):
    user = make_user("a@acme.example", organisation=make_organisation())
    login(client, "a@acme.example")
    stolen = client.get_cookie("session", domain="portal.test").value
    thief = app.test_client()
    thief.set_cookie("session", stolen, domain="portal.test")
    assert thief.get("/client/").status_code == 200
    assert 'action="/auth/sessions/end-all"' in client.get("/client/").get_data(as_text=True)
    client.post("/auth/sessions/end-all")
    db.session.expire_all()
    assert db.session.get(User, user.id).session_version == 2
    assert thief.get("/client/").status_code == 302


def test_session_and_remember_cookies_are_httponly_and_samesite_lax_in_development(client):
    make_user("a@acme.example", organisation=make_organisation())
    response = client.post("/auth/login", data={"email": "a@acme.example", "password": PASSWORD, "remember": "y"})
    cookies = {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}
    for name in ("session", "remember_token"):
        assert "HttpOnly" in cookies[name] and "SameSite=Lax" in cookies[name]
        assert "Secure" not in cookies[name]  # development runs on plain http://127.0.0.1


@pytest.fixture
def production_app(database_url, monkeypatch):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-long-random-production-secret-for-tests")
    from portal import create_app

    config = base_config(database_url)
    del config["SECRET_KEY"]
    app = create_app(config)
    yield app
    with app.app_context():
        from tests.conftest import empty_all_tables

        db.session.remove()
        empty_all_tables()
        db.engine.dispose()


def test_production_cookies_are_secure_and_https_is_enforced(production_app):
    app = production_app
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
    with app.app_context():
        make_user("a@acme.example", organisation=make_organisation())
    client = app.test_client()
    plain = client.get("/auth/login")
    assert plain.status_code in (301, 302) and plain.headers["Location"].startswith("https://")
    response = client.post("/auth/login", base_url="https://portal.test",
                           data={"email": "a@acme.example", "password": PASSWORD, "remember": "y"})
    assert response.status_code == 302
    cookies = {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}
    for name in ("session", "remember_token"):
        assert "Secure" in cookies[name] and "HttpOnly" in cookies[name] and "SameSite=Lax" in cookies[name]
    hsts = response.headers["Strict-Transport-Security"]
    assert "max-age=" in hsts and int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31536000


def test_no_secret_travels_in_the_readable_session_cookie(app, client):
    """Flask's session cookie is signed, not encrypted: an API token shown once must not be put in it."""
    make_user("admin@acme.example", organisation=make_organisation())
    login(client, "admin@acme.example")
    response = client.post("/client/account", data={"name": "Monitoring"})
    page = response.get_data(as_text=True)
    secret = re.search(r"nwp_[A-Za-z0-9_-]{20,}", page).group(0)
    serializer = app.session_interface.get_signing_serializer(app)
    cookie = client.get_cookie("session", domain="portal.test")
    session = serializer.loads(cookie.value) if cookie else {}
    assert secret not in repr(session) and PASSWORD not in repr(session)
    assert set(session) <= {"_user_id", "_fresh", "_id", "csrf_token", "_flashes", "_remember", "_remember_seconds"}


def test_static_files_cannot_escape_the_static_folder(client):
    for path in ("/static/../config.py", "/static/..%2f..%2fapp.py", "/static/%2e%2e/models.py", "/static//etc/passwd"):
        response = client.get(path, follow_redirects=True)  # "//" is first merged by a redirect
        assert response.status_code == 404, path
        assert b"SECRET_KEY" not in response.get_data()
