"""/healthz answers without the database; /readyz checks the database and Redis and says 503 when one is down."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import event

from portal import create_app
from portal.extensions import db
from tests.conftest import base_config


def test_healthz_answers_without_touching_the_database(app, client):
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.get("/healthz")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert statements == []


def test_readyz_is_ok_with_a_reachable_database_and_no_redis(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "redis": "not configured"}


def test_readyz_is_503_when_redis_is_unreachable(make_app):
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    with app.app_context():
        response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {"database": "ok", "redis": "failed"}
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path):
    missing = tmp_path / "no-such-folder" / "portal.sqlite3"
    app = create_app(base_config(f"sqlite:///{missing}"))
    with app.app_context():
        response = app.test_client().get("/readyz")
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "failed"


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="TEST_REDIS_URL not set (a real Redis to PING)")
def test_readyz_pings_a_real_redis(make_app):
    app = make_app(REDIS_URL=os.environ["TEST_REDIS_URL"])
    with app.app_context():
        response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["redis"] == "ok"
