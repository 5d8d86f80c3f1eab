"""A form is sent once: a client admin who clicked "Create token" again while the first answer was on
its way made a second live token whose secret was never shown. Back brings the page with its
buttons usable again."""
from __future__ import annotations

import re

from tests.e2e.browsing import Journey
from tests.e2e.steps import DEMO_PASSWORD

CREATE = "main form:has(#name) button[type=submit]"
# Count the sendings the page makes and keep it from leaving: the answer is "still on its way".
COUNT_AND_STAY = """() => { window.__sent = 0;
  window.addEventListener('submit', e => { window.__sent += 1; e.preventDefault(); }); }"""


def test_a_second_click_while_the_answer_is_on_its_way_sends_nothing(people) -> None:
    admin: Journey = people("client")
    admin.login("admin@acme.demo.test", DEMO_PASSWORD)
    admin.goto("/client/account")
    page = admin.page
    page.fill("#name", "Nagios")
    page.evaluate(COUNT_AND_STAY)

    page.click(CREATE)
    page.wait_for_timeout(200)
    assert page.is_disabled(CREATE)
    page.click(CREATE, force=True)
    page.wait_for_timeout(200)
    assert page.evaluate("window.__sent") == 1, "the second click sent the form again"

    admin.goto("/client/account")
    page.fill("#name", "Nagios")
    page.click(CREATE)
    page.wait_for_selector("#new-token")
    admin.check("account page with the token created")
    assert page.locator("table tr", has_text="Nagios").count() == 1
    page.go_back()
    page.wait_for_url(re.compile(r"/client/account$"))
    assert page.is_enabled(CREATE)
