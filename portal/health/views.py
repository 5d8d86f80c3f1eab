"""/healthz says the process answers; /readyz says it can serve: database and (when configured) Redis reachable.

Why two: a load balancer should stop sending traffic to a node whose database or Redis is
unreachable (/readyz, 503) without the orchestrator restarting a process that is itself fine
(/healthz touches nothing but the process, so it is also the benchmark's "no database" page).
"""
from __future__ import annotations

import time
from typing import Any, Callable

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from ..extensions import db

bp = Blueprint("health", __name__)


def _plain_http(view: Callable[..., Any]) -> Callable[..., Any]:
    """Probes reach a worker directly over plain HTTP, so no redirect to HTTPS (Talisman's per-view option)."""
    view.talisman_view_options = {"force_https": False}  # type: ignore[attr-defined]
    return view


@bp.route("/healthz")
@_plain_http
def healthz():
    return jsonify(status="ok")


def _check_database() -> str | None:
    """None when SELECT 1 answers, else the reason."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as error:  # any driver error means "not ready"
        db.session.rollback()
        return f"{type(error).__name__}: {error}".splitlines()[0][:200]
    return None


def _check_redis(url: str) -> str | None:
    """None when PING answers, else the reason. Short timeouts: a probe must not hang a worker."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except Exception as error:
        return f"{type(error).__name__}: {error}".splitlines()[0][:200]
    finally:
        client.close()
    return None


@bp.route("/readyz")
@_plain_http
def readyz():
    started = time.perf_counter()
    checks: dict[str, str] = {}
    failures: dict[str, str] = {}
    problem = _check_database()
    checks["database"] = "ok" if problem is None else "failed"
    if problem:
        failures["database"] = problem
    redis_url = current_app.config.get("REDIS_URL")
    if redis_url:
        problem = _check_redis(redis_url)
        checks["redis"] = "ok" if problem is None else "failed"
        if problem:
            failures["redis"] = problem
    else:
        checks["redis"] = "not configured"
    if failures:  # the reasons go to the log only: they may name hosts
        current_app.logger.warning("not ready: %s", failures)
    body = {
        "status": "ok" if not failures else "unavailable",
        "checks": checks,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return jsonify(body), (503 if failures else 200)
