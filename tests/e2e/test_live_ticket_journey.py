"""Journey 2: a contract client reports a company-wide outage, sees its place and arrival estimate,
and watches both change without reloading while a dispatcher re-ranks the queue and a
technician taps "en route" in their own browsers."""
from __future__ import annotations

from tests.e2e.browsing import Journey
from tests.e2e.steps import (DEMO_PASSWORD, LIVE_WAIT_MS, assign_technician, board_order, live, move_ticket, place_number,
                             report_problem, tap, wait_live_change, wait_live_match)


def test_contract_client_watches_the_place_change_live(people) -> None:
    client: Journey = people("client")
    client.login("admin@acme.demo.test", DEMO_PASSWORD)
    ticket_id = report_problem(client, "Whole office offline: no internet, no phones", impact="company",
                               revenue="6000", onsite=True, category="network",
                               description="Since 9 pm the router shows red; all 40 staff are cut off.")
    page = client.page
    place = wait_live_match(page, "place", r"in line")
    first = place_number(place)
    assert first is not None, place
    eta = live(page, "eta")
    assert "around" in eta, eta
    client.check("status page, first place and estimate")
    page.evaluate("window.__notReloaded = true")

    dispatcher: Journey = people("dispatcher")
    dispatcher.login("dispatcher@demo.test", DEMO_PASSWORD)
    order = board_order(dispatcher)
    dispatcher.check("dispatch board")
    assert ticket_id in order, (ticket_id, order)
    expected, _ = move_ticket(dispatcher, ticket_id, first, {
        "top": "Whole company down; the owner phoned in",
        "bottom": "Site locked until the caretaker opens at 07:00",
    })

    if expected != first:  # the place may hold (see move_ticket); the reason still reaches the timeline
        place = wait_live_change(page, "place", place)
    assert place_number(place) == expected, (place, expected)
    assert page.evaluate("window.__notReloaded === true"), "the page reloaded"
    client.check("status page after the dispatcher re-ranked")

    assign_technician(dispatcher, ticket_id, "Tom")
    wait_live_match(page, "technician", r"Tom")

    technician: Journey = people("technician")
    technician.login("tech1@demo.test", DEMO_PASSWORD)
    before = live(page, "eta")
    tap(technician, ticket_id, "En route")
    technician.check("my jobs after tapping en route")

    status = wait_live_match(page, "status", r"en route")
    assert "route" in status.lower()
    assert live(page, "place") != place, "an en-route ticket no longer waits in line"
    assert live(page, "eta") != before
    assert page.evaluate("window.__notReloaded === true"), "the page reloaded"
    timeline = page.inner_text('[data-live-list="timeline"]')
    assert "route" in timeline.lower(), timeline
    client.check("status page with the technician en route")


def test_a_client_signed_out_is_told_the_page_is_no_longer_live(people) -> None:
    """Signed out (elsewhere, or the session ended), every poll got the log-in page: the script failed
    quietly and the page went on saying "This page updates by itself." over figures frozen in time."""
    client: Journey = people("client")
    client.login("admin@acme.demo.test", DEMO_PASSWORD)
    report_problem(client, "Scanner on the second floor offline", impact="person", revenue=None, onsite=False,
                   category="hardware", description="It shows an IP conflict.")
    page = client.page
    wait_live_match(page, "place", r"in line")
    assert page.inner_text("[data-live-note]").strip() == "This page updates by itself."
    client.context.clear_cookies()  # the session is gone, as after "Sign out on every device"
    page.wait_for_function(
        "() => document.querySelector('[data-live-note]').textContent.startsWith('Live updates have stopped')",
        timeout=LIVE_WAIT_MS)
    assert "Reload the page" in page.inner_text("[data-live-note]")
    client.check("status page after the session ended", allow_console="log-in|not the ticket")
