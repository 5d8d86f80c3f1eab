"""Browser journeys: Playwright drives Debian's chromium, headless, against the portal served by gunicorn.

The served portal is built like a real one (`flask db upgrade`, `flask seed-demo`) in a fresh
SQLite file, or in a PostgreSQL database beside TEST_DATABASE_URL's (name + "_e2e").

The firm's time zone (FIRM_TIMEZONE, a real setting) is chosen so that the real clock reads
about 22:00 there: every journey then runs after business hours whatever the time of the run,
so the after-hours journey holds, and no test-only clock exists in the production code.

Without chromium these tests are skipped with the reason, except in CI (CI=true), where a
missing browser is a failure: .ci/run installs it.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.serving import ROOT, Server, build_database, chromium_path, gunicorn, portal_env, sibling_database

from .browsing import ARTIFACTS, DESKTOP, Journey

LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def after_hours_timezone(now: datetime, local_hour: int = 22) -> str:
    """An Etc/GMT zone in which `now` is `local_hour` o'clock (Etc/GMT-9 is UTC+9: the sign is inverted)."""
    offset = (local_hour - now.astimezone(timezone.utc).hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" + (f"-{offset}" if offset > 0 else f"+{-offset}" if offset < 0 else "")


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is missing in CI: .ci/run must install it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium); the browser journeys need it")
    return path


@pytest.fixture(scope="session")
def firm_timezone() -> str:
    return after_hours_timezone(datetime.now(timezone.utc))


@pytest.fixture(scope="session")
def served_portal(chromium: str, tmp_path_factory: pytest.TempPathFactory, firm_timezone: str) -> Iterator[Server]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url and not url.startswith("sqlite"):
        url = sibling_database(url, "e2e")
    else:
        url = "sqlite:///" + str(tmp_path_factory.mktemp("e2e-db") / "portal.sqlite3")
    # Rate limits stay on in production; here one loopback address logs in as a dozen people.
    # With TEST_REDIS_URL the journeys run as production does: two workers keeping pages between
    # writes (portal/page_cache.py), so every change must still reach the other browser.
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    env = portal_env(url, FIRM_TIMEZONE=firm_timezone, RATELIMIT_ENABLED="false",
                     **({"REDIS_URL": redis_url} if redis_url else {}))
    build_database(env)
    with gunicorn(env, ARTIFACTS / "gunicorn.log", workers=2, threads=4) as server:
        yield server


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def people(browser, served_portal: Server, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Journey]]:
    """people("prospect") -> a Journey with its own browser context (own cookies, own session)."""
    journeys: list[Journey] = []

    def person(role: str) -> Journey:
        context = browser.new_context(base_url=served_portal.base_url, viewport=dict(DESKTOP))
        context.set_default_timeout(15_000)
        journeys.append(Journey(context, f"{request.node.name.removeprefix('test_')[:40]}-{role}"))
        return journeys[-1]

    yield person
    failed = getattr(request.node, "rep_call", None)
    for j in journeys:
        if failed is not None and failed.failed:
            j.screenshot_on_failure()
        j.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep the call's report on the item so `people` can screenshot every page of a failed journey."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
