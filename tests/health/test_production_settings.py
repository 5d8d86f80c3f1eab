"""Production settings: pool sized from the worker threads, gunicorn numbers from the environment, proxy headers trusted only when told."""
from __future__ import annotations

import runpy
from pathlib import Path

from flask import request

from portal.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_postgres_pool_has_one_connection_per_worker_thread(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://portal@db.internal/portal")
    monkeypatch.setenv("GUNICORN_THREADS", "6")
    monkeypatch.delenv("DB_POOL_SIZE", raising=False)
    options = load_config(str(tmp_path))["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] == 6
    assert options["pool_pre_ping"] is True
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    assert load_config(str(tmp_path))["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"] == 3


def test_rate_limits_use_redis_when_configured(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert load_config(str(tmp_path))["RATELIMIT_STORAGE_URI"] == "memory://"
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6379/0")
    assert load_config(str(tmp_path))["RATELIMIT_STORAGE_URI"] == "redis://cache.internal:6379/0"


def test_gunicorn_config_reads_workers_threads_and_keeps_preload_off(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "8")
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["workers"] == 3
    assert settings["threads"] == 8
    assert settings["worker_class"] == "gthread"
    assert settings["preload_app"] is False
    assert settings["accesslog"] == "-"
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["workers"] >= 3


def _seen_address(app) -> str:
    app.add_url_rule("/_seen", "seen", lambda: request.remote_addr or "")
    response = app.test_client().get("/_seen", headers={"X-Forwarded-For": "203.0.113.9"},
                                     environ_base={"REMOTE_ADDR": "127.0.0.1"})
    return response.get_data(as_text=True)


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(make_app):
    assert _seen_address(make_app()) == "127.0.0.1"
    assert _seen_address(make_app(TRUSTED_PROXIES=1)) == "203.0.113.9"


def test_log_in_still_answers_when_the_rate_limit_redis_is_down(make_app, monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    config = load_config(str(tmp_path))
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=config["RATELIMIT_STORAGE_URI"],
                   RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"])
    with app.app_context():
        response = app.test_client().post("/auth/login", data={"email": "nobody@example.com", "password": "wrong-one"})
    assert response.status_code < 500
