"""Pages a logged-in client reloads during an emergency, served again while nothing has been written.

Why: a client with an outage keeps its ticket page open and reloads it, and the page polls
live.json every few seconds; rendering it reads seven tables, and between two changes every
render is the same. So the rendered answer is kept in the worker's memory under a key made of
who asks (the whole signed session, the address and browser that Flask-Login's session
protection compares), what they ask (path and query) and the *data version*: one Redis counter
that every commit which wrote anything increments after it has committed, in every worker and
on every node. A stored page is filed under the version read *before* it was rendered, so a page
built from older data can never be served under a newer version; any write anywhere (a ticket,
a recompute, a deactivated user, a signed-out session) makes every stored page unreachable.

Only with REDIS_URL (the counter must be shared by all workers); without it, or while Redis does
not answer, every request renders as usual. Only a 200 that left the session untouched is kept
(a page that showed a flash message or a one-off notice is rendered again next time), and only
for PAGE_CACHE_SECONDS, which also bounds how stale a page can be if a write ever failed to
reach Redis.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from functools import wraps
from typing import Any, Callable, Optional, TypeVar

import redis
from cachelib import SimpleCache
from flask import Flask, Response, current_app, has_app_context, make_response, request, session
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.elements import TextClause
from werkzeug.http import unquote_etag

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
VERSION_KEY = "portal:data-version"
KEPT_HEADERS = ("Content-Type", "ETag", "Cache-Control")
_WROTE = "page_cache_wrote"
QUIET_SECONDS = 5.0


class PageCache:
    """The version counter (Redis) and this worker's stored pages."""

    def __init__(self, redis_url: str, seconds: int, entries: int) -> None:
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self.pages = SimpleCache(threshold=entries, default_timeout=seconds)
        self._lock = threading.Lock()
        self._owed = False  # a commit whose bump did not reach Redis
        self._quiet_until = 0.0  # after a failure Redis is left alone a moment: no timeout on every request

    def version(self) -> Optional[str]:
        """The current data version, or None when Redis does not answer (then nothing is cached).

        A bump owed from an outage is paid first. A missing counter (a new or restarted Redis)
        starts at a random number, so pages filed under the old counter's values never match.
        """
        if time.monotonic() < self._quiet_until:
            return None
        try:
            if self._owed:
                self._pay_owed_bump()
            value = self.redis.get(VERSION_KEY)
            if value is None:
                self.redis.set(VERSION_KEY, secrets.randbits(62), nx=True)
                value = self.redis.get(VERSION_KEY)
        except redis.RedisError as error:
            self._failed(error)
            return None
        return value.decode() if value is not None else None

    def bump(self) -> None:
        """After a commit that wrote; if Redis does not answer, owed until it does (pages stay off meanwhile)."""
        with self._lock:
            self._owed = True
        if time.monotonic() < self._quiet_until:
            return
        try:
            self._pay_owed_bump()
        except redis.RedisError as error:
            self._failed(error)

    def _pay_owed_bump(self) -> None:
        with self._lock:
            owed, self._owed = self._owed, False
        if owed:
            try:
                self.redis.incr(VERSION_KEY)
            except redis.RedisError:
                with self._lock:
                    self._owed = True
                raise

    def _failed(self, error: Exception) -> None:
        log.warning("page cache off for %s s, Redis unreachable: %s", QUIET_SECONDS, error)
        self._quiet_until = time.monotonic() + QUIET_SECONDS
        self.pages.clear()


def init_app(app: Flask) -> None:
    url = app.config.get("REDIS_URL")
    if url and app.config.get("PAGE_CACHE_SECONDS", 0) > 0:
        app.extensions["page_cache"] = PageCache(url, app.config["PAGE_CACHE_SECONDS"],
                                                 app.config["PAGE_CACHE_ENTRIES"])


def _current() -> Optional[PageCache]:
    return current_app.extensions.get("page_cache") if has_app_context() else None


def _key(version: str) -> str:
    asker = json.dumps([dict(session), request.remote_addr, request.user_agent.string], sort_keys=True, default=str)
    return hashlib.sha256(f"{version}\0{request.full_path}\0{asker}".encode()).hexdigest()


def _replay(stored: tuple[bytes, dict[str, str]]) -> Response:
    """The kept answer, or 304 when the client already holds it (live.json polls with If-None-Match)."""
    body, headers = stored
    if "ETag" in headers and request.if_none_match.contains(unquote_etag(headers["ETag"])[0] or ""):
        return Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
    return Response(body, status=200, headers=headers)


def cached_page(view: F) -> F:
    """Serve the view's stored answer for the same session, request and data version; else render and keep it.

    Outermost decorator: a stored answer was produced by a request that passed the view's own
    log-in and role checks with the same session at the same data version, and any change to the
    user (role, deactivation, signing out everywhere) is a write, which moves the version.
    """

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any):
        cache = _current()
        version = cache.version() if cache is not None and "_user_id" in session else None
        if cache is None or version is None:
            return view(*args, **kwargs)
        key = _key(version)
        stored = cache.pages.get(key)
        if stored is not None:
            return _replay(stored)
        response = make_response(view(*args, **kwargs))
        if response.status_code == 200 and not session.modified and not response.direct_passthrough:
            headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
            cache.pages.set(key, (response.get_data(), headers))
        return response

    return wrapped  # type: ignore[return-value]


@event.listens_for(Session, "after_flush")
def _flushed(db_session: Session, flush_context: Any) -> None:
    """Marked until the next commit, even if a savepoint rolls back: a needless bump only costs a render."""
    db_session.info[_WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    """Bulk UPDATE/DELETE/INSERT and raw SQL write without a flush; raw SELECTs do not count."""
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete or (
            isinstance(statement, TextClause) and not statement.text.lstrip().lower().startswith("select")):
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
def _committed(db_session: Session) -> None:
    if db_session.info.pop(_WROTE, False):
        cache = _current()
        if cache is not None:
            cache.bump()
