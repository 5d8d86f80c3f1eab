import pytest
from sqlalchemy import text

from portal import create_app
from portal.extensions import db


def test_production_refuses_the_development_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///" + str(tmp_path / "x.db"))
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


def test_configuration_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FIRM_NAME", "Harbor IT")
    monkeypatch.setenv("FIRM_TIMEZONE", "Europe/London")
    monkeypatch.setenv("HOLIDAY_COUNTRY", "GB")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///" + str(tmp_path / "x.db"))
    app = create_app()
    assert app.config["FIRM_NAME"] == "Harbor IT"
    assert app.config["FIRM_TIMEZONE"] == "Europe/London"
    assert app.config["HOLIDAY_COUNTRY"] == "GB"


def test_default_database_is_a_sqlite_file_in_the_instance_folder(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + app.instance_path + "/portal.sqlite3"


def test_sqlite_runs_in_wal_mode(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 15000


def test_security_headers(client):
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_form_from_an_ended_session_leads_back_to_its_page_on_this_site_only(make_app):
    """A client whose session ended (the browser restarted with its tabs) presses 'Request, pay by
    invoice' on a page still open: nothing is requested, and the link back goes to that page, never
    to the address another site put in the Referer."""
    import re

    from portal.models import Contract
    from tests.conftest import PASSWORD, csrf_token_from, make_organisation, make_plan, make_user

    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        make_plan("priority", name="Priority")
        make_user("admin@bolt.example", organisation=make_organisation("Bolt"))
    before = app.test_client()
    token = csrf_token_from(before.get("/auth/login").get_data(as_text=True))
    before.post("/auth/login", data={"email": "admin@bolt.example", "password": PASSWORD,
                                     "csrf_token": token})
    page = "http://portal.test/client/plans/priority"
    token = csrf_token_from(before.get(page).get_data(as_text=True))

    after_restart = app.test_client()  # the old page's token, but a new session
    response = after_restart.post("/client/plans/priority/invoice", data={"csrf_token": token},
                                  headers={"Referer": page})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "nothing was sent" in html
    assert re.search(r'<a href="/auth/login"', html)  # logged out: log in again first
    logged_in = app.test_client()
    token = csrf_token_from(logged_in.get("/auth/login").get_data(as_text=True))
    logged_in.post("/auth/login", data={"email": "admin@bolt.example", "password": PASSWORD,
                                        "csrf_token": token})
    for referer, link in ((page, '<a href="/client/plans/priority"'), ("https://elsewhere.example/x", None),
                          ("http://portal.test//elsewhere.example/x", None)):
        html = logged_in.post("/client/plans/priority/invoice", data={"csrf_token": "stale"},
                              headers={"Referer": referer}).get_data(as_text=True)
        assert "elsewhere.example" not in html
        if link:
            assert link in html
    with app.app_context():
        assert db.session.scalars(db.select(Contract)).all() == []
