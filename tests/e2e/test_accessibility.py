"""axe-core on the main pages of each kind of person, logged in as each: no serious or critical
violation of a WCAG 2 A/AA rule.

`Journey.check` (browsing.py) holds the basics on every page of the journeys (labels, alt text,
headings, names, ids); axe adds what those cannot see: colour contrast, ARIA roles and states,
table headers, names computed as a screen reader computes them, scrolling boxes a keyboard cannot
reach. axe-core comes bundled with
the axe-playwright-python package (requirements-dev.txt): nothing is fetched at run time.

One test per kind of person; each visits all its pages before failing, so one run names every
violation: the rule, the page and the offending element's selector.
"""
from __future__ import annotations

import re
from typing import Callable

import pytest

from tests.e2e.browsing import DESKTOP, PHONE, Journey
from tests.e2e.steps import DEMO_PASSWORD

# WCAG 2.0, 2.1 and 2.2, levels A and AA (axe's rule tags).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="session")
def axe():
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def violations(axe, journey: Journey, page_name: str) -> list[str]:
    """The serious and critical WCAG violations on the page the journey is on, at desktop and phone
    width (a table stacks and a menu wraps on a phone), one line per offending element."""
    return page_violations(axe, journey.page, page_name)


def page_violations(axe, page, page_name: str) -> list[str]:
    page.wait_for_load_state()
    found: dict[tuple[str, str], str] = {}
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        results = axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS},
                                         "resultTypes": ["violations"]})
        assert results.response["passes"], f"axe checked nothing on {page_name} [{page.url}]"
        for rule in results.response["violations"]:
            if rule["impact"] not in BLOCKING:
                continue
            for node in rule["nodes"]:
                selector = " ".join(str(t) for t in node["target"])
                detail = (node.get("failureSummary") or "").replace("\n", " ").strip()
                found.setdefault((rule["id"], selector), (
                    f"{rule['id']} ({rule['impact']}) on {page_name} [{page.url}] at {label} width: "
                    f"{selector}\n      {rule['help']}. {detail}\n      {rule['helpUrl']}"))
    page.set_viewport_size(DESKTOP)
    return list(found.values())


def visit(axe, journey: Journey, pages: list[tuple[str, str]]) -> list[str]:
    problems: list[str] = []
    for name, path in pages:
        status = journey.goto(path).status
        assert status in (200, 400), f"{name} [{path}]: HTTP {status}, not the page meant to be checked"
        problems += violations(axe, journey, name)
    return problems


def first_link(journey: Journey, pattern: str, within: str = "main") -> str:
    """The path of the first link in `within` whose address matches the regular expression."""
    hrefs = journey.page.eval_on_selector_all(f"{within} a[href]", "links => links.map(a => a.getAttribute('href'))")
    found = next((h for h in hrefs if re.search(pattern, h)), None)
    assert found, f"no link matching {pattern} on {journey.page.url}: {hrefs}"
    return found


def report(problems: list[str]) -> str:
    return f"{len(problems)} accessibility violations:\n  " + "\n  ".join(problems)


def test_public_pages_have_no_serious_violations(people: Callable[[str], Journey], axe) -> None:
    prospect = people("prospect")
    problems = visit(axe, prospect, [
        ("home", "/"),
        ("plans comparison", "/plans"),
        ("plan page", "/plans/priority"),
        ("downtime calculator", "/calculator"),
        ("downtime calculator result",
         "/calculator?staff_affected=25&revenue_per_hour=4000&outages_per_year=6&staff_cost_per_hour=45"),
        ("downtime calculator with errors",
         "/calculator?staff_affected=&revenue_per_hour=x&outages_per_year=6&staff_cost_per_hour=45"),
        ("sign-up", "/auth/signup?plan=priority"),
        ("log-in", "/auth/login"),
        ("password reset request", "/auth/reset"),
    ])
    # Forms sent back with their errors beside the fields.
    prospect.goto("/auth/signup")
    prospect.page.click("main form button[type=submit]")
    problems += violations(axe, prospect, "sign-up with errors")
    prospect.goto("/auth/login")
    prospect.page.fill("#email", "nobody@example.com")
    prospect.page.fill("#password", "not-the-password")
    prospect.page.click("main form button[type=submit]")
    problems += violations(axe, prospect, "log-in refused")
    assert not problems, report(problems)


def test_client_pages_have_no_serious_violations(people: Callable[[str], Journey], axe) -> None:
    client = people("client")
    client.login("admin@acme.demo.test", DEMO_PASSWORD)
    problems = visit(axe, client, [("dashboard", "/client/")])
    ticket = first_link(client, r"^/client/tickets/\d+$")
    problems += visit(axe, client, [
        ("ticket status page", ticket),
        ("new ticket form", "/client/tickets/new"),
        ("billing", "/billing/"),
        ("users", "/client/users"),
        ("API tokens", "/client/account"),
        ("plan choice", "/client/plans/premium-24-7"),
    ])
    # The form sent empty: every error shown beside its field.
    client.goto("/client/tickets/new")
    client.page.click("main form button[type=submit]")
    problems += violations(axe, client, "new ticket form with errors")
    # A token created: its secret shown once, and the table of tokens.
    client.goto("/client/account")
    client.page.fill("#name", "Monitoring")
    client.page.click("main form.narrow button[type=submit]")
    problems += violations(axe, client, "API tokens, one just created")

    # A break/fix client sees the emergency upgrade offer on their open ticket.
    breakfix = people("break-fix client")
    breakfix.login("admin@bolt.demo.test", DEMO_PASSWORD)
    problems += visit(axe, breakfix, [("break/fix dashboard", "/client/")])
    upgrade = breakfix.page.locator("#upgrade-offer")
    if upgrade.count():
        problems += visit(axe, breakfix, [("emergency upgrade", upgrade.get_attribute("href"))])
    assert not problems, report(problems)


def test_staff_pages_have_no_serious_violations(people: Callable[[str], Journey], axe) -> None:
    owner = people("owner")
    owner.login("owner@demo.test", DEMO_PASSWORD)
    problems = visit(axe, owner, [("dispatch board", "/staff/")])
    ticket = "/staff/tickets/" + owner.page.locator("#board-waiting tr[data-ticket]").first.get_attribute("data-ticket")
    problems += visit(axe, owner, [("staff ticket", ticket), ("technicians", "/staff/technicians")])
    technician = first_link(owner, r"^/staff/technicians/\d+$")
    problems += visit(axe, owner, [
        ("technician and shifts", technician),
        ("on-call rota", "/staff/on-call"),
        ("plans", "/staff/plans"),
        ("new plan", "/staff/plans/new"),
        ("triage weights", "/staff/settings/triage"),
        ("what if", "/staff/what-if"),
        ("promises kept", "/staff/promises"),
        ("plan requests", "/billing/staff/contracts"),
        ("organisations", "/staff/organisations"),
    ])
    organisation = first_link(owner, r"^/staff/organisations/\d+$")
    problems += visit(axe, owner, [("organisation", organisation)])

    technician = people("technician")
    technician.login("tech1@demo.test", DEMO_PASSWORD)
    problems += visit(axe, technician, [("technician's phone view", "/staff/my-jobs")])
    assert not problems, report(problems)


def test_a_violation_is_reported_with_its_rule_page_and_element(browser, axe) -> None:
    """The check itself, on a page made for it (no server): a field without a label and grey on
    white text are named with the rule, the page and the element's selector."""
    page = browser.new_page()
    try:
        page.set_content('<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>Form</h1>'
                         '<input id="unnamed" type="text"><p id="faint" style="color:#bbb">Faint</p></main></body></html>')
        problems = page_violations(axe, page, "made-up page")
    finally:
        page.close()
    assert any(p.startswith("label (critical) on made-up page") and "#unnamed" in p for p in problems), problems
    assert any(p.startswith("color-contrast (serious) on made-up page") and "#faint" in p for p in problems), problems
