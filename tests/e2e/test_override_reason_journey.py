"""Journey 4: a dispatcher overrides a ticket's place with a reason; the client reads the reason
in the ticket's timeline (live, then after a reload too)."""
from __future__ import annotations

from tests.e2e.browsing import Journey
from tests.e2e.steps import DEMO_PASSWORD, move_ticket, place_number, report_problem, wait_live_match


def test_dispatcher_override_reason_reaches_the_client_timeline(people) -> None:
    client: Journey = people("client")
    client.login("admin@cedar.demo.test", DEMO_PASSWORD)
    ticket_id = report_problem(client, "Vaccine fridge alarm not reporting", impact="department", revenue=None,
                               onsite=True, category="network", safety=True,
                               description="The fridge's temperature alarm lost its network link this evening.")
    page = client.page
    wait_live_match(page, "place", r"in line")
    client.check("status page before the override")
    before = place_number(page.inner_text('[data-live="place"]'))
    assert before is not None

    dispatcher: Journey = people("dispatcher")
    dispatcher.login("dispatcher@demo.test", DEMO_PASSWORD)
    target, reason = move_ticket(dispatcher, ticket_id, before, {
        "top": "Vaccines at risk overnight: moved up by the dispatcher",
        "bottom": "Fridge has a manual thermometer; the pharmacist asked us to come after the 2 pm delivery",
    })
    dispatcher.check("ticket after the override")

    page.wait_for_function(
        "reason => document.querySelector('[data-live-list=\"timeline\"]').textContent.includes(reason)",
        arg=reason, timeout=25_000)
    client.check("timeline shows the reason (live)")

    client.goto(f"/client/tickets/{ticket_id}")
    assert reason in page.inner_text('[data-live-list="timeline"]')
    assert place_number(page.inner_text('[data-live="place"]')) == target, page.inner_text('[data-live="place"]')
    client.check("timeline after a reload")
