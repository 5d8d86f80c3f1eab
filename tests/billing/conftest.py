"""Billing fixtures: localstripe on loopback, a recording server, and the portal served on loopback.

localstripe keeps its state in /tmp/localstripe.pickle: do not run these tests in parallel processes.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Callable, Iterator

import pytest
import requests
import stripe
from flask import Flask
from werkzeug.serving import make_server

from portal.extensions import db

from .recording_server import RecordingServer, start_recording_server

WEBHOOK_SECRET = "whsec_portal_test_secret"
SECRET_KEY = "sk_test_portal_offline"


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """localstripe's aiohttp app bound to 127.0.0.1 on a free port, in a background thread."""
    from aiohttp import web
    from localstripe import server as localstripe_server

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(localstripe_server.app)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.SockSite(runner, sock).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "localstripe did not start"
    url = f"http://127.0.0.1:{port}"
    requests.delete(url + "/_config/data", timeout=5).raise_for_status()
    yield url
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture
def localstripe(localstripe_url: str) -> str:
    """A clean localstripe for each test."""
    requests.delete(localstripe_url + "/_config/data", timeout=5).raise_for_status()
    return localstripe_url


@pytest.fixture(scope="session")
def _recording_server() -> Iterator[RecordingServer]:
    state, server = start_recording_server()
    yield state
    server.shutdown()


@pytest.fixture
def recorder(_recording_server: RecordingServer) -> RecordingServer:
    _recording_server.reset()
    return _recording_server


def stripe_config(api_base: str, **extra) -> dict:
    config = dict(
        STRIPE_SECRET_KEY=SECRET_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=api_base,
        STRIPE_MAX_NETWORK_RETRIES=0,
    )
    config.update(extra)
    return config


class _Dispatch:
    """A WSGI app whose target is set after the port is known (SERVER_NAME must name the port)."""

    target: Flask | None = None

    def __call__(self, environ, start_response):
        assert self.target is not None
        return self.target(environ, start_response)


@pytest.fixture
def live_portal(make_app) -> Iterator[Callable[..., tuple[Flask, str]]]:
    """Serve a portal app on 127.0.0.1 (werkzeug, threaded) so localstripe can deliver webhooks to it."""
    servers = []

    def start(**config) -> tuple[Flask, str]:
        dispatch = _Dispatch()
        server = make_server("127.0.0.1", 0, dispatch, threaded=True)
        host = f"127.0.0.1:{server.server_port}"
        app = make_app(SERVER_NAME=host, **config)
        dispatch.target = app
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return app, f"http://{host}"

    yield start
    for server in servers:
        server.shutdown()


def register_webhook(localstripe_url: str, portal_url: str) -> None:
    requests.post(
        f"{localstripe_url}/_config/webhooks/portal",
        data={"url": portal_url + "/billing/webhook", "secret": WEBHOOK_SECRET},
        timeout=5,
    ).raise_for_status()


def wait_for(condition: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> object:
    """Poll (ending the test thread's transaction each time) until `condition()` is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        db.session.expire_all()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def signed(event: dict, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> tuple[bytes, dict]:
    """An event body and headers signed with Stripe's own scheme."""
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return payload.encode("utf-8"), {"Stripe-Signature": header, "Content-Type": "application/json"}
