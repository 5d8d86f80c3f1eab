"""Journey 1: a prospect compares the plans, prices their downtime, signs up, confirms the address
with the link from the email, chooses a plan and pays as far as the portal runs offline (pay by
invoice without Stripe keys), sees the contract pending, and sees it active once the firm's owner
confirms it."""
from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.e2e.browsing import Journey
from tests.e2e.steps import activate_pending_contract
from tests.serving import Server

PASSWORD = "Harbour-lantern-quartz-92"
DEMO_PASSWORD = "demo-pass-2026"


def _served_database_url(server: Server) -> str:
    """The database of the served portal, read from the environment of its gunicorn process."""
    variables = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
    return next(v.split(b"=", 1)[1].decode() for v in variables if v.startswith(b"DATABASE_URL="))


def _confirmation_link(server: Server, email: str) -> str:
    """The path of the confirmation link in the last email the portal wrote to `email`."""
    engine = create_engine(_served_database_url(server))
    try:
        for _ in range(50):
            with engine.connect() as connection:
                body = connection.execute(text(
                    "SELECT body FROM outbox_message WHERE recipient = :to AND kind = 'email_confirmation' "
                    "ORDER BY id DESC LIMIT 1"), {"to": email}).scalar()
            if body:
                return re.search(r"https?://[^/\s]+(/auth/confirm/\S+)", body).group(1)
            time.sleep(0.1)
    finally:
        engine.dispose()
    raise AssertionError(f"no confirmation email to {email} in the outbox")


def test_prospect_compares_prices_signs_up_and_gets_a_contract(people, served_portal: Server) -> None:
    prospect: Journey = people("prospect")
    page = prospect.page

    prospect.goto("/")
    prospect.check("home")

    page.click("nav >> text=Plans")
    page.wait_for_url(re.compile(r"/plans$"))
    table = page.locator("table.compare")
    for name in ("Break/Fix", "Essentials", "Priority", "Premium 24/7"):
        assert table.locator("thead th", has_text=name).count() == 1, name
    prospect.check("compare plans")

    page.click("main >> text=Price your downtime")
    page.fill("#staff_affected", "25")
    page.fill("#revenue_per_hour", "4000")
    page.fill("#outages_per_year", "6")
    page.fill("#staff_cost_per_hour", "45")
    page.click("main form button[type=submit]")
    page.wait_for_selector("section.result h2")
    recommendation = page.inner_text("section.result h2")
    assert recommendation.startswith("We recommend"), recommendation
    assert page.locator("section.result tbody tr").count() == 4
    assert "E+" not in page.inner_text("section.result table"), "hours shown in scientific notation"
    prospect.check("downtime calculator result")

    prospect.goto("/plans")
    page.click("table.compare >> text=Choose Priority")
    page.wait_for_url(re.compile(r"/auth/signup\?plan=priority"))
    email = f"it-{uuid.uuid4().hex[:8]}@harbour-dental.example.com"
    page.fill("#organisation_name", "Harbour Dental Group")
    page.fill("#site_address", "14 Pier Road, Hoboken, NJ")
    page.fill("#full_name", "Hana Harbour")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    prospect.check("sign-up form filled")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/auth/signup/check-inbox"))
    assert "Check your inbox" in page.inner_text("main")
    prospect.check("check your inbox")

    # The prospect opens the email the portal wrote (the served portal has no SMTP server: the
    # message waits in its outbox table) and follows the link in it.
    prospect.goto(_confirmation_link(served_portal, email))
    assert email in page.inner_text("main")
    prospect.check("confirm the address")
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/client/plans/priority"))
    assert page.inner_text("h1") == "Priority"
    prospect.check("chosen plan")

    # No Stripe keys in this run: the offline path is the invoice request (a pending contract).
    page.click("text=pay by invoice")
    page.wait_for_url(re.compile(r"/client/?$"))
    notice = page.inner_text("main")
    assert re.search(r"request for Priority is pending", notice), notice
    assert "No card was charged" in notice
    prospect.check("dashboard, contract pending")

    owner: Journey = people("owner")
    owner.login("owner@demo.test", DEMO_PASSWORD)
    activate_pending_contract(owner, "Harbour Dental Group", "Priority")

    prospect.goto("/client/")
    dashboard = page.inner_text("main")
    assert re.search(r"Priority\s*·\s*active", dashboard), dashboard
    assert "is pending" not in dashboard
    prospect.check("dashboard, contract active")
