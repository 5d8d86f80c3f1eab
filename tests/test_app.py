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
