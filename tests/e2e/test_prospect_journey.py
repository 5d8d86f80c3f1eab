"""Journey 1: a prospect compares the plans, prices their downtime, signs up, chooses a plan and
pays as far as the portal runs offline (pay by invoice without Stripe keys), sees the contract
pending, and sees it active once the firm's owner confirms it."""
from __future__ import annotations

import re
import uuid

from tests.e2e.browsing import Journey
from tests.e2e.steps import activate_pending_contract

PASSWORD = "Harbour-lantern-quartz-92"
DEMO_PASSWORD = "demo-pass-2026"


def test_prospect_compares_prices_signs_up_and_gets_a_contract(people) -> None:
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
