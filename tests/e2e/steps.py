"""Steps shared by the journeys: what a client, a dispatcher and a technician do in their browsers."""
from __future__ import annotations

import re
from typing import Optional

from tests.e2e.browsing import Journey

DEMO_PASSWORD = "demo-pass-2026"
LIVE_WAIT_MS = 25_000  # the status page polls every 5 s; leave room for a few polls


def report_problem(client: Journey, title: str, *, impact: str, revenue: Optional[str], onsite: bool,
                   category: Optional[str] = None, safety: bool = False, description: str = "") -> int:
    """Fill the emergency intake form from the dashboard; returns the new ticket's id (on its status page)."""
    page = client.page
    client.goto("/client/")
    client.check("dashboard")
    page.click("main >> text=Report a problem")
    page.wait_for_url(re.compile(r"/client/tickets/new"))
    page.fill("#title", title)
    page.fill("#description", description or title)
    if category:
        page.select_option("#category", category)
    page.check(f"input[name=impact][value={impact}]")
    if revenue:
        page.check("input[name=money_lost][value=yes]")
        page.fill("#revenue_at_risk_per_hour", revenue)
    if onsite:
        page.check("#onsite_needed")
    if safety:
        page.check("#safety_critical")
    client.check("report a problem, filled in")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r"/client/tickets/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def live(page, name: str) -> str:
    return page.inner_text(f'[data-live="{name}"]').strip()


def wait_live_change(page, name: str, old: str, timeout: int = LIVE_WAIT_MS) -> str:
    """Wait, without reloading, until the live field differs from `old`."""
    page.wait_for_function(
        "([name, old]) => { const el = document.querySelector('[data-live=\"' + name + '\"]');"
        " return el && el.textContent.trim() !== old; }",
        arg=[name, old], timeout=timeout)
    return live(page, name)


def wait_live_match(page, name: str, pattern: str, timeout: int = LIVE_WAIT_MS) -> str:
    """Wait, without reloading, until the live field matches the regular expression (case-insensitive)."""
    page.wait_for_function(
        "([name, pattern]) => { const el = document.querySelector('[data-live=\"' + name + '\"]');"
        " return el && new RegExp(pattern, 'i').test(el.textContent); }",
        arg=[name, pattern], timeout=timeout)
    return live(page, name)


def place_number(text: str) -> Optional[int]:
    match = re.match(r"(\d+)(st|nd|rd|th) in line", text)
    return int(match.group(1)) if match else None


def board_order(dispatcher: Journey) -> list[int]:
    """Ticket ids in the board's waiting table, in dispatch order."""
    dispatcher.goto("/staff/")
    rows = dispatcher.page.locator("#board-waiting tr[data-ticket]")
    return [int(rows.nth(i).get_attribute("data-ticket")) for i in range(rows.count())]


def override_place(dispatcher: Journey, ticket_id: int, position: int, reason: str) -> None:
    page = dispatcher.page
    dispatcher.goto(f"/staff/tickets/{ticket_id}")
    page.fill("#override-position", str(position))
    page.fill("#override-reason", reason)
    dispatcher.check("ticket, override filled in")
    page.locator("form", has=page.locator("#override-position")).locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert f"overridden to {position}: {reason}" in page.inner_text("main"), page.inner_text("main")[:600]


def assign_technician(dispatcher: Journey, ticket_id: int, name_part: str) -> None:
    page = dispatcher.page
    dispatcher.goto(f"/staff/tickets/{ticket_id}")
    options = page.eval_on_selector_all("#assign-technician_id option", "os => os.map(o => [o.value, o.textContent])")
    value = next(v for v, label in options if name_part in label)
    page.select_option("#assign-technician_id", value)
    page.locator("form", has=page.locator("#assign-technician_id")).locator("button[type=submit]").click()
    page.wait_for_load_state()
    dispatcher.check("ticket assigned")


def tap(technician: Journey, ticket_id: int, label: str) -> None:
    """A technician's one-tap status button on their phone's job list."""
    page = technician.page
    technician.goto("/staff/my-jobs")
    technician.check("my jobs")
    page.locator(f"#job-{ticket_id}").locator("button", has_text=label).first.click()
    page.wait_for_load_state()


def staff_place(dispatcher: Journey, ticket_id: int) -> Optional[int]:
    """The place the staff ticket page shows (e.g. "2 (1 ahead) · overridden to 1: ...")."""
    dispatcher.goto(f"/staff/tickets/{ticket_id}")
    text = dispatcher.page.locator("dl.facts dt:text-is('Place') + dd").inner_text()
    match = re.match(r"\s*(\d+)", text)
    return int(match.group(1)) if match else None


def move_ticket(dispatcher: Journey, ticket_id: int, before: int, reasons: dict[str, str]) -> tuple[int, str]:
    """Override the ticket's place so that it really moves; returns (new place, the reason used).

    A place is the order in which tickets are expected to start, so pinning a ticket first in
    the triage order does not always change its place (a free specialist may start a lower
    ticket earlier; at night the on-call technician starts the one job that may be done now,
    wherever it is pinned). The dispatcher tries the top of the queue, then the bottom (or the
    reverse); if neither moves it, the place held and the last reason is still the client's to read.
    """
    length = len(board_order(dispatcher))
    tries = [("top", 1), ("bottom", length)] if before > 1 else [("bottom", length), ("top", 1)]
    now_at: Optional[int] = before
    for which, target in tries:
        override_place(dispatcher, ticket_id, target, reasons[which])
        now_at = staff_place(dispatcher, ticket_id)
        if now_at is not None and now_at != before:
            break
    return now_at, reasons[which]


def activate_pending_contract(owner: Journey, organisation: str, plan: str) -> None:
    """The owner confirms an invoiced plan request on the firm's list of requests."""
    page = owner.page
    owner.goto("/billing/staff/contracts")
    row = page.locator("tbody tr", has_text=organisation)
    assert row.count() == 1, page.inner_text("main")
    owner.check("invoiced plan requests")
    row.locator("button", has_text="Activate").click()
    page.wait_for_load_state()
    assert f"{organisation} is now on {plan}" in page.inner_text("main"), page.inner_text("main")[:500]
    owner.check("contract activated")
