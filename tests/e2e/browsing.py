"""One person in a browser: every page they reach is checked at desktop and phone width.

`Journey.check(step)` is called on each page of a journey: no console errors or failed
requests since the last check, no horizontal overflow at 1280 px and at 390 px, the
accessibility basics (every field labelled, images with alt text, one h1 and no skipped
heading levels, every link and button named, unique ids), and a screenshot at both widths
in test-artifacts/e2e/ (CI keeps that folder).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.serving import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

A11Y_CHECK = r"""
() => {
  const problems = [];
  const visible = el => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const short = el => el.outerHTML.replace(/\s+/g, ' ').slice(0, 140);
  if (!document.documentElement.getAttribute('lang')) problems.push('<html> has no lang');
  if (!document.title.trim()) problems.push('page has no title');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const type = (el.getAttribute('type') || '').toLowerCase();
    if (['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || el.getAttribute('title');
    if (!named) problems.push('field without a label: ' + short(el));
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) problems.push('image without alt text: ' + short(img));
  }
  for (const el of document.querySelectorAll('a[href], button')) {
    if (!visible(el)) continue;
    const name = (el.innerText || '').trim() || el.getAttribute('aria-label') || el.getAttribute('title')
      || [...el.querySelectorAll('img[alt]')].map(i => i.alt).join('').trim();
    if (!name) problems.push('link or button without a name: ' + short(el));
  }
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].filter(visible);
  const h1s = headings.filter(h => h.tagName === 'H1').length;
  if (h1s !== 1) problems.push('expected one h1, found ' + h1s);
  let previous = 0;
  for (const h of headings) {
    const level = Number(h.tagName[1]);
    if (previous === 0 && level !== 1) problems.push('first heading is h' + level + ': ' + h.innerText.trim().slice(0, 60));
    if (previous && level > previous + 1)
      problems.push('heading jumps from h' + previous + ' to h' + level + ': ' + h.innerText.trim().slice(0, 60));
    previous = level;
  }
  const seen = new Set();
  // Hidden inputs (one CSRF token per form) are never labelled or focused: their ids cannot mislead.
  for (const el of document.querySelectorAll('[id]:not(input[type=hidden])')) {
    if (seen.has(el.id)) problems.push('duplicate id: ' + el.id);
    seen.add(el.id);
  }
  return problems;
}
"""

OVERFLOW_CHECK = r"""
() => {
  const width = window.innerWidth;
  const page = document.documentElement.scrollWidth;
  if (page <= width) return null;
  const culprits = [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > width + 1)
    .filter(el => !el.parentElement || el.parentElement.getBoundingClientRect().right <= width + 1)
    .slice(0, 5)
    .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().replace(/\s+/g, '.') : '')
         + ' (right edge ' + Math.round(el.getBoundingClientRect().right) + 'px)');
  return {page, width, culprits};
}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


class Journey:
    """A person with their own browser context (cookies) and one page."""

    def __init__(self, context: Any, name: str) -> None:
        self.context = context
        self.name = _slug(name)
        self.page = context.new_page()
        self.problems: list[str] = []
        self.steps = 0
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught script error: {error}"))
        self.page.on("response", self._response)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            where = (message.location or {}).get("url", "")
            self.problems.append(f"console error: {message.text} ({where})")

    def _response(self, response: Any) -> None:
        # Pages answer 4xx on purpose (a form with errors: 400); a missing script, style or image does not.
        if response.status >= 500 or (response.status >= 400 and response.request.resource_type != "document"):
            self.problems.append(f"HTTP {response.status} for {response.request.resource_type} {response.url}")

    def goto(self, path: str) -> Any:
        response = self.page.goto(path)
        assert response is not None and response.status < 500, f"{path}: HTTP {response and response.status}"
        return response

    def login(self, email: str, password: str) -> None:
        self.goto("/auth/login")
        self.page.fill("#email", email)
        self.page.fill("#password", password)
        self.page.click("main form button[type=submit]")
        self.page.wait_for_load_state()
        assert "/auth/login" not in self.page.url, f"log-in as {email} failed: {self.page.inner_text('main')[:300]}"

    def check(self, step: str, allow_console: str | None = None) -> None:
        """The checks of every page (see the module docstring); screenshots at both widths."""
        page = self.page
        page.wait_for_load_state()
        self.steps += 1
        base = ARTIFACTS / f"{self.name}-{self.steps:02d}-{_slug(step)}"
        problems = [p for p in self.problems if not (allow_console and re.search(allow_console, p))]
        self.problems.clear()
        problems += [f"accessibility: {p}" for p in page.evaluate(A11Y_CHECK)]
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            overflow = page.evaluate(OVERFLOW_CHECK)
            if overflow:
                problems.append(f"{label} ({size['width']} px): page is {overflow['page']} px wide; "
                                f"overflowing: {', '.join(overflow['culprits'])}")
            page.screenshot(path=str(Path(f"{base}-{label}.png")), full_page=True)
        page.set_viewport_size(DESKTOP)
        assert not problems, f"step '{step}' at {page.url}:\n  " + "\n  ".join(problems)

    def screenshot_on_failure(self) -> None:
        try:
            self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-FAILED.png"), full_page=True)
        except Exception:  # the page may be gone; the failure itself is what matters
            pass

    def close(self) -> None:
        self.context.close()
