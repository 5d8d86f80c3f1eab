"""The stylesheet at phone width (390 px), in a real browser: what the QA walk found overflowing.

Renders portal.css around small pieces of the portal's markup in the journeys' chromium (no server)."""
from __future__ import annotations

from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parents[2] / "portal" / "static" / "css" / "portal.css").read_text()


@pytest.fixture
def phone(browser):
    """A page of the journeys' browser (one Playwright per session: a second one cannot start in its loop)."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    yield page
    page.close()


def render(page, body: str) -> None:
    page.set_content(f"<!doctype html><html><head><style>{CSS}</style></head><body><main>{body}</main></body></html>")


def test_a_pasted_path_in_a_ticket_title_does_not_widen_the_page(phone):
    token = "ERROR_0x80070005_ACCESS_DENIED_\\\\fileserver01\\share\\accounting\\payroll_2026_final_v3.xlsx"
    render(phone, f"<h1>#10 · {token}</h1><p>https://support.example.com/{'a' * 150}</p>")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_stacked_table_keeps_its_last_column_on_screen(phone):
    cells = "".join(f'<td data-label="Column {i}">around Wed 25 Nov 09:40, 9 times out of 10 by Wed 25 Nov 10:53</td>'
                    for i in range(4))
    render(phone, '<div class="table-wrap"><table class="stack"><caption>If you upgrade now</caption>'
                  f"<tbody><tr><th>Essentials</th>{cells}<td><button id=pay>Request, pay by invoice</button></td></tr>"
                  "</tbody></table></div>")
    right = phone.evaluate("document.getElementById('pay').getBoundingClientRect().right")
    assert right <= 390
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_plan_comparison_keeps_the_row_names_while_scrolling_sideways(phone):
    cells = "".join(f"<td>Technician on site within {h} business hours</td>" for h in (8, 4, 2, 1))
    render(phone, '<div class="table-wrap"><table class="compare"><tbody>'
                  f'<tr><th scope="row" id="name">On-site arrival</th>{cells}</tr></tbody></table></div>')
    phone.evaluate("document.querySelector('.table-wrap').scrollLeft = 400")
    wrap_left = phone.evaluate("document.querySelector('.table-wrap').getBoundingClientRect().left")
    name_left = phone.evaluate("document.getElementById('name').getBoundingClientRect().left")
    assert abs(name_left - wrap_left) < 1  # stuck to the left edge of the scrolling box, not scrolled away


def test_a_header_hidden_for_screen_readers_does_not_widen_the_page(phone):
    """A column of buttons is named for screen readers only; in a table wider than the phone, that
    hidden name must scroll with the table, not stretch the page to where the column ends."""
    headers = "".join(f'<th scope="col">Column {i} with a long name</th>' for i in range(6))
    render(phone, '<div class="table-wrap"><table><thead><tr>'
                  f'{headers}<th scope="col"><span class="visually-hidden">Revoke</span></th></tr></thead></table></div>')
    assert phone.evaluate("document.querySelector('table').getBoundingClientRect().right") > 390
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
