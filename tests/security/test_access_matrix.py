"""The access-control matrix: every route of the app x every role, with the allowed outcome asserted.

Routes are read from the app's URL map, so a route added without an entry in
tests/security/access.py fails here. URL parameters are filled with organisation A's objects;
another organisation's admin must get 404 for them, as if they did not exist. A refused
request (log-in redirect, 401, 403, 404) must also leave every table as it was.
"""
from __future__ import annotations

import pytest
from flask import Flask
from werkzeug.routing import IntegerConverter, Rule

from portal import DATABASE_ID_MAX, create_app
from tests.conftest import base_config
from tests.security.access import (
    ALLOWED,
    FORBIDDEN,
    HIDDEN,
    LOGIN,
    REFUSED,
    ROUTES,
    UNAUTHORISED,
    Access,
    access_for,
    allowed_role,
    expected,
)
from tests.security.figures import record
from tests.security.world import (
    ORGANISATION_SCOPED,
    PARAMETERS,
    ROLES,
    World,
    build_world,
    parameter_value,
    rebuild_world,
    row_counts,
    snapshot,
)

# GET must change nothing (CSRF protection covers POST only). Known exceptions, with the reason:
GET_WRITES: set[str] = set()

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _route_app() -> Flask:
    """An app built only to read its URL map (it never opens the database)."""
    return create_app(base_config("sqlite://"))


def route_cases(app: Flask) -> list[tuple[str, str, Rule]]:
    cases = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        for method in METHODS:
            if method in (rule.methods or ()):
                cases.append((rule.endpoint, method, rule))
    return cases


CASES = route_cases(_route_app())


def test_every_route_has_an_access_rule():
    """A new route cannot be forgotten: it needs a decision in tests/security/access.py."""
    missing = sorted({f"{endpoint} {method}" for endpoint, method, _ in CASES if access_for(endpoint, method) is None})
    assert not missing, "routes without an access rule in tests/security/access.py: " + ", ".join(missing)
    endpoints = {endpoint for endpoint, _, _ in CASES}
    stale = sorted(key for key in ROUTES if key.split(" ")[0] not in endpoints)
    assert not stale, "access rules for routes that no longer exist: " + ", ".join(stale)


def test_every_url_parameter_has_a_value():
    names = {arg for _, _, rule in CASES for arg in rule.arguments}
    missing = sorted(names - PARAMETERS.keys())
    assert not missing, "URL parameters with no value in tests/security/world.py PARAMETERS: " + ", ".join(missing)


def outcome(response) -> str:
    """Classify a response into the matrix's outcomes."""
    status = response.status_code
    if status in (301, 302, 303, 307, 308):
        # Flask-Login sends the visitor to the log-in page with ?next=; other redirects there are outcomes
        return LOGIN if "/auth/login?next=" in response.headers.get("Location", "") else ALLOWED
    if status == 401:
        return UNAUTHORISED
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return HIDDEN
    if status in (200, 201, 202, 204, 304, 400, 409, 422):
        return ALLOWED
    return f"status {status}"


def send(client, method: str, url: str, access: Access):
    if access in (Access.API_CLIENT, Access.API_CLIENT_ADMIN) and method != "GET":
        return client.open(url, method=method, json={})
    return client.open(url, method=method, data={})


def url_for_case(app: Flask, rule: Rule, world: World) -> str:
    values = {name: parameter_value(rule.endpoint, name, world) for name in rule.arguments}
    return app.url_map.bind("portal.test").build(rule.endpoint, values, force_external=False)


@pytest.fixture
def matrix_app(make_app, tmp_path) -> Flask:
    """No app context is held: each request gets its own, as in production (no shared `g` or session)."""
    return make_app(UPLOAD_FOLDER=str(tmp_path / "attachments"))


@pytest.mark.parametrize("endpoint,method,rule", CASES, ids=[f"{m} {r.rule}" for _, m, r in CASES])
def test_route_answers_each_role_as_the_policy_says(matrix_app: Flask, endpoint: str, method: str, rule: Rule):
    access = access_for(endpoint, method)
    if access is None:
        pytest.fail(f"{endpoint} {method} has no access rule in tests/security/access.py")
    missing = [name for name in rule.arguments if name not in PARAMETERS]
    if missing:
        pytest.fail(f"no value for URL parameter(s) {missing} in tests/security/world.py")
    organisation_scoped = bool(set(rule.arguments) & ORGANISATION_SCOPED)
    with matrix_app.app_context():
        world = build_world()
    problems = []
    for role in ROLES:
        want = expected(access, role, organisation_scoped)
        url = url_for_case(matrix_app, rule, world)
        client = world.client_for(matrix_app, role)
        with matrix_app.app_context():
            before = row_counts()
            rows_before = snapshot() if method == "GET" else None
        response = send(client, method, url, access)
        got = outcome(response)
        body = response.get_data(as_text=True)
        response.close()  # a download streams a file: close it
        record("matrix: requests (route x method x role)")
        if response.status_code >= 500:
            problems.append(f"{role}: {response.status_code} server error")
            continue
        if got != want and not (want == REFUSED and response.status_code == 400):
            problems.append(f"{role}: expected {want}, got {got} ({response.status_code})")
            continue
        if rows_before is not None:
            with matrix_app.app_context():
                rows_after = snapshot()
            changed = [t for t in rows_before if rows_before[t] != rows_after[t]]
            if changed and endpoint not in GET_WRITES:
                problems.append(f"{role}: GET changed {changed} (a forged link could do it)")
            if changed:
                with matrix_app.app_context():
                    world = rebuild_world()
        if want != ALLOWED:
            with matrix_app.app_context():
                after = row_counts()
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            if changed:
                problems.append(f"{role}: refused request changed rows {changed}")
            if want == HIDDEN and world.ticket_a_title in body:
                problems.append(f"{role}: 404 page shows organisation A's ticket title")
        if method != "GET" and want == ALLOWED:
            with matrix_app.app_context():
                world = rebuild_world()  # the request may have changed or deleted the objects the next role needs
    record("matrix: routes (endpoint x method)")
    assert not problems, f"{method} {rule.rule} ({access.value}):\n  " + "\n  ".join(problems)


API_CASES = [case for case in CASES if access_for(case[0], case[1]) in (Access.API_CLIENT, Access.API_CLIENT_ADMIN)]


@pytest.mark.parametrize("endpoint,method,rule", API_CASES, ids=[f"{m} {r.rule}" for _, m, r in API_CASES])
def test_api_tokens_open_only_their_own_organisation(matrix_app: Flask, endpoint: str, method: str, rule: Rule):
    """Bearer tokens: own organisation allowed; another organisation's token gets 404; revoked or forged get 401."""
    from portal.extensions import db
    from portal.models import User
    from portal.services import api_tokens
    from tests.security.world import NOW

    with matrix_app.app_context():
        world = build_world()
        other_admin = db.session.get(User, world.user_ids["other_admin"])
        other_secret = api_tokens.create(world.org_b, "Bolt monitoring", other_admin, NOW).secret
        revoked = api_tokens.create(world.org_a, "Old script", db.session.get(User, world.user_ids["client_admin"]), NOW)
        api_tokens.revoke(world.org_a, revoked.token.id, db.session.get(User, world.user_ids["client_admin"]), NOW)
    organisation_scoped = bool(set(rule.arguments) & ORGANISATION_SCOPED)
    url = url_for_case(matrix_app, rule, world)
    client = matrix_app.test_client()

    def call(secret: str):
        headers = {"Authorization": f"Bearer {secret}"}
        if method == "GET":
            return client.open(url, method=method, headers=headers)
        return client.open(url, method=method, headers=headers, json={})

    checks = {
        "own token": (call(world.api_secret_a), ALLOWED),
        "other organisation's token": (call(other_secret), HIDDEN if organisation_scoped else ALLOWED),
        "revoked token": (call(revoked.secret), UNAUTHORISED),
        "forged token": (call("nwp_" + "x" * 43), UNAUTHORISED),
    }
    problems = [f"{name}: expected {want}, got {outcome(r)} ({r.status_code})"
                for name, (r, want) in checks.items() if outcome(r) != want]
    other = checks["other organisation's token"][0]
    if world.ticket_a_title in other.get_data(as_text=True):
        problems.append("another organisation's token sees organisation A's ticket")
    record("matrix: requests (route x method x role)", len(checks))
    assert not problems, f"{method} {rule.rule}:\n  " + "\n  ".join(problems)


INT_CASES = [case for case in CASES
             if any(isinstance(converter, IntegerConverter) for converter in case[2]._converters.values())]


@pytest.mark.parametrize("endpoint,method,rule", INT_CASES, ids=[f"{m} {r.rule}" for _, m, r in INT_CASES])
def test_an_id_past_the_largest_the_database_stores_answers_404(matrix_app: Flask, endpoint: str, method: str, rule: Rule):
    """A number no row can have is no address: 404 (JSON under /api/), never the database's OverflowError.

    Asked by a role the route lets in, so the answer comes from the route and not from the log-in gate.
    """
    access = access_for(endpoint, method)
    role = allowed_role(access)
    with matrix_app.app_context():
        world = build_world()
        before = row_counts()
    client = world.client_for(matrix_app, role)
    int_names = [name for name, converter in rule._converters.items() if isinstance(converter, IntegerConverter)]
    problems = []
    for number in (DATABASE_ID_MAX + 1, 2**63, 2**64, 10**30, DATABASE_ID_MAX):
        for name in int_names:
            values = {n: parameter_value(endpoint, n, world) for n in rule.arguments}
            values[name] = number
            url = matrix_app.url_map.bind("portal.test").build(endpoint, values, force_external=False)
            response = send(client, method, url, access)
            response.close()
            if response.status_code != 404:
                problems.append(f"{url}: {response.status_code}")
            elif url.startswith("/api/") and response.mimetype != "application/json":
                problems.append(f"{url}: 404 as {response.mimetype}, not the API's JSON")
            record("routing: ids past the database's largest tried")
    with matrix_app.app_context():
        assert row_counts() == before
    assert not problems, f"{method} {rule.rule} as {role}:\n  " + "\n  ".join(problems)
