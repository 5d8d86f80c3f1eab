"""Browser protections: CSRF on every state-changing route, security headers on every page,
templates that cannot run inline script, and user text always escaped.

Routes come from the app's URL map (see test_access_matrix.py), so new routes are covered.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.routing import Rule

from portal.extensions import db
from portal.models import Comment, Organisation, Ticket, User
from tests.security.access import Access, access_for, allowed_role
from tests.security.figures import record
from tests.security.pages import forms_in
from tests.security.test_access_matrix import CASES, url_for_case
from tests.security.world import ROLES, build_world, row_counts

TEMPLATES = Path(__file__).resolve().parents[2] / "portal" / "templates"
WRITE_CASES = [case for case in CASES if case[1] != "GET"]
GET_CASES = [case for case in CASES if case[1] == "GET"]
API = (Access.API_CLIENT, Access.API_CLIENT_ADMIN)


@pytest.fixture
def csrf_app(make_app, tmp_path) -> Flask:
    return make_app(WTF_CSRF_ENABLED=True, UPLOAD_FOLDER=str(tmp_path / "attachments"))


def _csrf_token(client) -> str:
    """A real token for this client's session (the reset-request page renders a form for anyone)."""
    html = client.get("/auth/reset").get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


CSRF_MESSAGE = re.compile(r"CSRF (session )?tokens? (is|are|do|has)", re.IGNORECASE)


def _is_csrf_refusal(response) -> bool:
    """Flask-WTF's refusal ("The CSRF token is missing.", "... is invalid.", "... has expired.")."""
    return response.status_code == 400 and bool(CSRF_MESSAGE.search(response.get_data(as_text=True)))


@pytest.mark.parametrize("endpoint,method,rule", WRITE_CASES, ids=[f"{m} {r.rule}" for _, m, r in WRITE_CASES])
def test_state_changing_route_refuses_a_request_without_csrf_token(csrf_app: Flask, endpoint, method, rule: Rule):
    """Without the token: 400 and nothing written. With it: the request gets past the CSRF check."""
    access = access_for(endpoint, method)
    assert access is not None, f"{endpoint} {method}: classify it in tests/security/access.py"
    with csrf_app.app_context():
        world = build_world()
    url = url_for_case(csrf_app, rule, world)
    client = world.client_for(csrf_app, allowed_role(access))
    token = _csrf_token(client)
    send = (lambda **kw: client.open(url, method=method, json={}, **kw)) if access in API else (
        lambda **kw: client.open(url, method=method, data=kw.pop("data", {}), **kw))

    with csrf_app.app_context():
        before = row_counts()
    refused = send()
    with csrf_app.app_context():
        after = row_counts()
    record("csrf: requests without token")

    if access is Access.SIGNED_WEBHOOK:
        # exempt from CSRF (Stripe cannot hold a session) but refused for want of a valid signature
        assert refused.status_code == 400 and not _is_csrf_refusal(refused)
        assert before == after
        return
    assert _is_csrf_refusal(refused), f"{method} {rule.rule}: {refused.status_code} without a CSRF token"
    assert before == after, f"{method} {rule.rule}: refused request changed rows"

    if access in API:
        accepted = client.open(url, method=method, json={}, headers={"X-CSRFToken": token})
        bearer = csrf_app.test_client().open(url, method=method, json={},
                                             headers={"Authorization": f"Bearer {world.api_secret_a}"})
        assert not _is_csrf_refusal(bearer), "Bearer-token requests need no CSRF token"
    else:
        accepted = client.open(url, method=method, data={"csrf_token": token})
    assert not _is_csrf_refusal(accepted), f"{method} {rule.rule}: refused even with a valid CSRF token"


def _header_problems(response) -> list[str]:
    problems = []
    csp = response.headers.get("Content-Security-Policy", "")
    directives = {part.strip().split(" ")[0]: part.strip() for part in csp.split(";") if part.strip()}
    script = directives.get("script-src", directives.get("default-src", ""))
    if not script or "'unsafe-inline'" in script or "'unsafe-eval'" in script or "*" in script.split():
        problems.append(f"script-src allows inline or foreign script: {script!r}")
    if directives.get("frame-ancestors") != "frame-ancestors 'none'":
        problems.append("frame-ancestors is not 'none'")
    if "object-src 'none'" not in csp:
        problems.append("object-src is not 'none'")
    if response.headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("X-Content-Type-Options is not nosniff")
    if response.headers.get("X-Frame-Options") not in ("DENY", "SAMEORIGIN"):
        problems.append("X-Frame-Options missing")
    if not response.headers.get("Referrer-Policy"):
        problems.append("Referrer-Policy missing")
    return problems


def test_every_page_sends_the_security_headers(make_app, tmp_path):
    """Every GET route, as a role allowed to open it, plus the error pages."""
    app = make_app(UPLOAD_FOLDER=str(tmp_path / "attachments"))
    with app.app_context():
        world = build_world()
    problems = []
    for endpoint, method, rule in GET_CASES:
        access = access_for(endpoint, method)
        client = world.client_for(app, allowed_role(access))
        response = client.get(url_for_case(app, rule, world))
        problems += [f"GET {rule.rule}: {p}" for p in _header_problems(response)]
        if "Strict-Transport-Security" in response.headers:
            problems.append(f"GET {rule.rule}: HSTS sent in development (plain http)")
        record("headers: responses checked")
    client = app.test_client()
    for url in ("/no-such-page", "/staff/"):  # 404 page, log-in redirect
        problems += [f"GET {url}: {p}" for p in _header_problems(client.get(url))]
        record("headers: responses checked")
    assert not problems, "\n".join(problems)


def test_templates_hold_no_inline_script_or_handlers():
    """The CSP forbids inline script, so none may be written (it would silently not run)."""
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        for match in re.finditer(r"<script\b([^>]*)>", text):
            if "src=" not in match.group(1):
                problems.append(f"{path.relative_to(TEMPLATES)}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", text):
            problems.append(f"{path.relative_to(TEMPLATES)}: inline event handler attribute")
        if "javascript:" in text.lower():
            problems.append(f"{path.relative_to(TEMPLATES)}: javascript: URL")
        if re.search(r"\|\s*safe\b", text) or "autoescape false" in text:
            problems.append(f"{path.relative_to(TEMPLATES)}: output marked safe (user text could render as HTML)")
    assert not problems, "\n".join(problems)


def test_scripts_never_insert_text_as_html():
    """Live updates put server text into the page with textContent, never as markup."""
    scripts = sorted((TEMPLATES.parent / "static").rglob("*.js"))
    problems = [f"{path.name}: {m.group(0)}" for path in scripts
                for m in re.finditer(r"\.innerHTML\s*=|\.outerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(",
                                     path.read_text())]
    assert not problems, "\n".join(problems)


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_user_text_is_shown_escaped_on_every_page(make_app, tmp_path):
    """HTML typed by a client (ticket title, comment, names) never reaches any page as markup."""
    app = make_app(UPLOAD_FOLDER=str(tmp_path / "attachments"))
    with app.app_context():
        world = build_world()
        db.session.get(Ticket, world.ticket_a).title = "Printer " + HOSTILE
        db.session.get(Ticket, world.ticket_a).description = "Desc " + HOSTILE
        db.session.get(Comment, world.comment_a).body = "Comment " + HOSTILE
        db.session.get(Organisation, world.org_a).name = "Acme " + HOSTILE
        db.session.get(User, world.user_ids["client_member"]).full_name = "Mia " + HOSTILE
        db.session.commit()
    problems, escaped_seen = [], 0
    for endpoint, method, rule in GET_CASES:
        access = access_for(endpoint, method)
        for role in ROLES:
            client = world.client_for(app, role)
            response = client.get(url_for_case(app, rule, world))
            body = response.get_data(as_text=True)
            record("escaping: pages checked")
            if response.mimetype != "text/html":
                continue  # JSON carries the text as data (application/json, nosniff), never as markup
            if "<script>alert(" in body or "<img src=x onerror" in body:
                problems.append(f"GET {rule.rule} as {role}: user text rendered as HTML")
            if "&lt;script&gt;alert(" in body:
                escaped_seen += 1
    assert not problems, "\n".join(problems)
    assert escaped_seen >= 3, "the hostile text was not shown escaped on the ticket, dashboard and staff pages"


@pytest.mark.parametrize("endpoint,method,rule", GET_CASES, ids=[f"{m} {r.rule}" for _, m, r in GET_CASES])
def test_every_post_form_on_every_page_carries_a_csrf_token(csrf_app: Flask, endpoint, method, rule: Rule):
    access = access_for(endpoint, method)
    with csrf_app.app_context():
        world = build_world()
    client = world.client_for(csrf_app, allowed_role(access))
    response = client.get(url_for_case(csrf_app, rule, world))
    if response.mimetype != "text/html":
        return
    missing = [f.action or "(this page)" for f in forms_in(response.get_data(as_text=True))
               if f.method == "post" and not f.has_csrf_token]
    record("csrf: pages with forms checked")
    assert not missing, f"GET {rule.rule}: POST forms without a CSRF token: {missing}"
