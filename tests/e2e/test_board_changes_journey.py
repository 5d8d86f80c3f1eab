"""Journey: a dispatcher keeps the board open; a client reports an emergency in their own browser,
and the board says the queue has changed without being redrawn under the dispatcher's eyes; one
click shows the new ticket in its place."""
from __future__ import annotations

import re

from tests.e2e.browsing import Journey
from tests.e2e.steps import DEMO_PASSWORD, LIVE_WAIT_MS, report_problem

BOARD_POLL_MS = 10_000


def test_the_open_board_says_when_a_new_emergency_comes_in(people) -> None:
    dispatcher: Journey = people("dispatcher")
    dispatcher.login("dispatcher@demo.test", DEMO_PASSWORD)
    dispatcher.goto("/staff/")
    board = dispatcher.page
    assert board.is_hidden("#board-changed")
    board.evaluate("window.__notReloaded = true")

    client: Journey = people("client")
    client.login("admin@acme.demo.test", DEMO_PASSWORD)
    ticket_id = report_problem(client, "Card terminals at the front desk are offline", impact="department",
                               revenue="900", onsite=False, category="network")

    board.wait_for_selector("#board-changed", state="visible", timeout=BOARD_POLL_MS + LIVE_WAIT_MS)
    assert board.evaluate("window.__notReloaded === true"), "the board redrew itself while being read"
    assert board.title().startswith("\u2022 ")
    assert board.locator(f'#board-waiting tr[data-ticket="{ticket_id}"]').count() == 0
    dispatcher.check("board says the queue has changed")

    board.click("#board-changed a")
    board.wait_for_url(re.compile(r"/staff/$"))
    assert board.locator(f'#board-waiting tr[data-ticket="{ticket_id}"]').count() == 1
    assert board.is_hidden("#board-changed")
    dispatcher.check("board drawn again with the new ticket")
