"""Journey 3: a break/fix client reports an emergency after hours, is told the next business day,
opens the upgrade panel, sees the quoted place and estimate under each paid plan, upgrades
(pay by invoice offline; the owner confirms) and sees the new place at once.

After hours whatever the real time: the served portal's FIRM_TIMEZONE puts the clock at 22:00
(tests/e2e/conftest.py)."""
from __future__ import annotations

import re

from tests.e2e.browsing import Journey
from tests.e2e.steps import (DEMO_PASSWORD, activate_pending_contract, live, place_number, report_problem,
                             wait_live_change, wait_live_match)


def test_break_fix_client_upgrades_after_hours_and_moves_up(people) -> None:
    client: Journey = people("client")
    client.login("admin@bolt.demo.test", DEMO_PASSWORD)
    ticket_id = report_problem(client, "Back-office server will not boot", impact="company", revenue="3000",
                               onsite=True, category="hardware",
                               description="Stock and tills cannot sync; the shop opens at 9.")
    page = client.page
    notice = page.inner_text("#after-hours")
    assert "next business day" in notice, notice
    place = wait_live_match(page, "place", r"in line")
    before = place_number(place)
    assert before is not None, place
    client.check("after-hours notice: next business day")

    page.click("#after-hours >> text=See what upgrading now would change")
    page.wait_for_url(re.compile(rf"/billing/tickets/{ticket_id}/upgrade$"))
    rows = page.locator("table tbody tr")
    quotes: dict[str, int] = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        plan = row.locator("th").inner_text().strip()
        cells = row.locator("td")
        quoted = re.match(r"(\d+)(st|nd|rd|th) \((\d+) ahead\)", cells.nth(0).inner_text())
        assert quoted, cells.nth(0).inner_text()
        assert "around" in cells.nth(1).inner_text(), f"{plan}: no estimate"
        quotes[plan] = int(quoted.group(1))
    assert set(quotes) == {"Essentials", "Priority", "Premium 24/7"}, quotes
    assert quotes["Premium 24/7"] <= before
    client.check("upgrade panel with a quote per plan")

    rows.filter(has_text="Premium 24/7").locator("button", has_text="pay by invoice").click()
    page.wait_for_load_state()
    assert "request for Premium 24/7 is recorded" in page.inner_text("main")  # back on the ticket
    assert page.url.endswith(f"/client/tickets/{ticket_id}"), page.url
    client.check("upgrade requested, pending")

    client.goto(f"/client/tickets/{ticket_id}")
    place = live(page, "place")
    owner: Journey = people("owner")
    owner.login("owner@demo.test", DEMO_PASSWORD)
    activate_pending_contract(owner, "Bolt Retail", "Premium 24/7")

    if quotes["Premium 24/7"] != before:
        place = wait_live_change(page, "place", place)
    assert place_number(place) == quotes["Premium 24/7"], (place, quotes)
    reasons = page.inner_text('[data-live-list="reasons"]')
    assert "Break/fix" not in reasons, reasons
    client.check("ticket under Premium 24/7")
