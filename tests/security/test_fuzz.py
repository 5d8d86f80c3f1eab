"""Hypothesis fuzzing of every form and JSON endpoint the portal shows.

The forms are found by crawling every page as a role allowed to see it (so a new form is
fuzzed without listing it here); the JSON bodies come from the API's OpenAPI document.
Each example posts random and hostile values: huge strings, unicode, control characters,
negative and enormous money, dates in the past and far future, missing fields, repeated
fields (a list where one value is expected), SQL and HTML fragments.

Properties: never a 5xx; a refusal is a 4xx that names the field (an error under the field in
HTML, or {"errors": {field: message}} in JSON) and leaves every table as it was.
"""
from __future__ import annotations

import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Optional

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.security.access import ALLOWED, access_for, allowed_role, expected
from tests.security.figures import record
from tests.security.pages import Form, FormField, forms_in
from tests.security.test_access_matrix import CASES, url_for_case
from tests.security.world import ROLES, World, build_world, rebuild_world, row_counts

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                         suppress_health_check=list(HealthCheck))

HOSTILE = [
    "", " ", "\x00", "\r\n\r\n", "\u202eevil", "\ud7ff", "😀" * 40, "Ǆ̴̢̛" * 20, "ß" * 250,
    "' OR '1'='1", "1; DROP TABLE ticket; --", "\" OR \"\"=\"", "%27%20OR%201=1", "$(reboot)", "{{7*7}}", "${7*7}",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)", "../../etc/passwd",
    "-1", "-0.01", "0", "-99999999999999999999", "99999999999999999999999999", "1e308", "-1e308", "1e-308",
    "NaN", "nan", "sNaN", "Infinity", "-Infinity", "0x1F", "1,000,000", "12.345.678", "١٢٣", "½",
    "0001-01-01", "0001-01-01T00:00", "1899-12-31", "1970-01-01T00:00:00Z", "2026-02-30", "2026-13-01",
    "9999-12-31", "9999-12-31T23:59", "10000-01-01", "2026-11-24T25:61", "24:00", "23:59", "-05:00", "17:00",
    "true", "false", "null", "[]", "{}", "A" * 201, "A" * 5000,
]
# Half of a UTF-16 pair: JSON can escape one ("\\ud800"), a form body cannot carry one (Werkzeug
# decodes it with replacement, and the test client could not even encode it).
JSON_HOSTILE = HOSTILE + ["\ud800", "\udfff", "Printer \udbff down", "\ud800\x00"]


def _dates() -> st.SearchStrategy[str]:
    return st.one_of(
        st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)).map(
            lambda d: d.strftime("%Y-%m-%dT%H:%M")),
        st.times().map(lambda t: t.strftime("%H:%M")),
    )


def form_value(field: FormField) -> st.SearchStrategy[Any]:
    """A hostile or random value, sometimes the field's own valid value, sometimes several values."""
    own = [v for v in [field.value, *field.options] if v is not None]
    one = st.one_of(
        st.sampled_from(HOSTILE),
        st.text(max_size=300),
        st.builds(lambda piece, n: piece * n, st.text(min_size=1, max_size=3), st.integers(2_000, 100_000)),
        st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
        _dates(),
        st.sampled_from(own) if own else st.just(""),
    )
    return st.one_of(one, st.lists(one, min_size=2, max_size=3))


def _field_strategy(field: FormField) -> st.SearchStrategy[Any]:
    """Hidden fields (e.g. the ticket's version) mostly keep the value the page gave them."""
    if field.kind == "hidden":
        return st.one_of(st.just(field.value), st.just(field.value), st.just(field.value), form_value(field))
    return form_value(field)


def hidden_fields_tampered(form: Form, payload: MultiDict) -> bool:
    """True when a hidden field is missing or changed: no person typed it, so no field can be named."""
    return any(payload.getlist(f.name) != [f.value] for f in form.fields
               if f.kind == "hidden" and not f.name.endswith("csrf_token"))


def form_payload(form: Form) -> st.SearchStrategy[MultiDict]:
    fields = [f for f in form.fields if not f.name.endswith("csrf_token") and f.kind not in ("submit", "file")]
    optional = {f.name: _field_strategy(f) for f in fields}
    extra = st.dictionaries(st.sampled_from(["id", "organisation_id", "role", "is_admin", "status", "price"]),
                            st.sampled_from(HOSTILE), max_size=2)

    def build(values: dict, extras: dict) -> MultiDict:
        data = MultiDict()
        for name, value in {**extras, **values}.items():
            for item in value if isinstance(value, list) else [value]:
                data.add(name, item)
        return data

    return st.builds(build, st.fixed_dictionaries({}, optional=optional), extra)


def json_value(schema: dict) -> st.SearchStrategy[Any]:
    scalar = st.one_of(
        st.sampled_from(JSON_HOSTILE), st.text(max_size=200), st.none(), st.booleans(),
        st.integers(min_value=-(10 ** 40), max_value=10 ** 40), st.floats(allow_nan=False),
        st.sampled_from(schema.get("enum", ["x"])),
    )
    return st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(st.text(max_size=10), scalar, max_size=2))


def json_payload(schema: dict) -> st.SearchStrategy[Any]:
    properties = schema.get("properties", {})
    body = st.fixed_dictionaries({}, optional={name: json_value(s) for name, s in properties.items()})
    return st.one_of(body, body, body, st.lists(st.integers(), max_size=2), st.text(max_size=20), st.none())


# --- discovering the forms ----------------------------------------------------------------------------------------


@dataclass
class Target:
    endpoint: str
    method: str
    role: str
    url_rule: str
    form: Optional[Form] = None        # an HTML form
    schema: Optional[dict] = None      # a JSON body


_DISCOVERED: dict[str, Target] = {}


def _discover(app: Flask, world: World) -> dict[str, Target]:
    """Crawl every GET page as every role allowed on it; keep the first form seen for each endpoint."""
    if _DISCOVERED:
        return _DISCOVERED
    adapter = app.url_map.bind("portal.test")
    for endpoint, method, rule in CASES:
        if method != "GET":
            continue
        access = access_for(endpoint, method)
        for role in ROLES:
            if expected(access, role, False) != ALLOWED:
                continue
            response = world.client_for(app, role).get(url_for_case(app, rule, world))
            if response.mimetype != "text/html":
                continue
            for form in forms_in(response.get_data(as_text=True)):
                path = (form.action or url_for_case(app, rule, world)).split("?")[0].replace("http://portal.test", "")
                verb = "POST" if form.method == "post" else "GET"
                try:
                    target_endpoint, _ = adapter.match(path, method=verb)
                except (NotFound, MethodNotAllowed):
                    continue
                key = f"{target_endpoint} {verb}"
                if key not in _DISCOVERED and path.startswith("/"):
                    target_rule = next(r for e, m, r in CASES if e == target_endpoint and m == verb)
                    _DISCOVERED[key] = Target(target_endpoint, verb, role, target_rule.rule, form=form)
    spec = world.client_for(app, "anonymous").get("/api/v1/openapi.json")
    if spec.status_code == 200:
        document = spec.get_json()
        schemas = document.get("components", {}).get("schemas", {})
        for path, operations in document.get("paths", {}).items():
            for verb, operation in operations.items():
                content = operation.get("requestBody", {}).get("content", {}).get("application/json")
                query = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
                if not content and not query:
                    continue
                base = document.get("servers", [{"url": ""}])[0]["url"]
                full = re.sub(r"\{[^}]+\}", "1", urllib.parse.urlsplit(base).path.rstrip("/") + path)
                try:
                    target_endpoint, _ = adapter.match(full, method=verb.upper())
                except (NotFound, MethodNotAllowed):
                    raise AssertionError(f"the OpenAPI document names {verb.upper()} {full}, which the app does not serve")
                role = allowed_role(access_for(target_endpoint, verb.upper()))
                rule = next(r for e, m, r in CASES if e == target_endpoint and m == verb.upper())
                key = f"{target_endpoint} {verb.upper()}"
                if content:
                    schema = content["schema"]
                    if "$ref" in schema:
                        schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
                    _DISCOVERED[key] = Target(target_endpoint, verb.upper(), role, rule.rule, schema=schema)
                else:  # query parameters of a read: fuzzed like a GET form
                    fields = [FormField(p["name"], "text", "", list(p.get("schema", {}).get("enum", []))) for p in query]
                    _DISCOVERED[key] = Target(target_endpoint, verb.upper(), role, rule.rule,
                                              form=Form(full, "get", fields))
    return _DISCOVERED


# --- the properties ---------------------------------------------------------------------------------------------


FIELD_ERROR = re.compile(r'<p class="error" id="([\w-]+)-error">')


def _refusal_problem(response, target: Target) -> Optional[str]:
    """None when the refusal names the field; else what is wrong with it."""
    body = response.get_data(as_text=True)
    if target.schema is not None or response.mimetype == "application/json":
        try:
            errors = json.loads(body).get("errors")
        except (ValueError, AttributeError):
            return f"{response.status_code} without a JSON error body"
        if not errors or not isinstance(errors, dict):
            return f"{response.status_code} JSON without errors naming a field: {body[:200]}"
        return None
    if FIELD_ERROR.search(body) or 'class="flash flash-error"' in body:
        return None
    return f"{response.status_code} HTML refusal without a field error: {re.sub(r'<[^>]+>', ' ', body)[:300]!r}"


@pytest.fixture
def fuzz_app(make_app, tmp_path) -> Flask:
    return make_app(UPLOAD_FOLDER=str(tmp_path / "attachments"))


def _targets_at_collection() -> list[tuple[str, str]]:
    """Every POST route and every GET route (GET forms are found by the crawl)."""
    return sorted({(endpoint, method) for endpoint, method, _ in CASES if method in ("GET", "POST")})


@pytest.mark.parametrize("endpoint,method", _targets_at_collection(), ids=[f"{m} {e}" for e, m in _targets_at_collection()])
def test_hostile_input_gets_a_clear_refusal_and_changes_nothing(fuzz_app: Flask, endpoint: str, method: str):
    with fuzz_app.app_context():
        world = build_world()
    target = _discover(fuzz_app, world).get(f"{endpoint} {method}")
    if target is None:
        if method == "GET":
            pytest.skip("no GET form submits here (pages are covered by the matrix)")
        if endpoint == "billing.webhook":
            pytest.skip("Stripe's webhook takes a signed raw body (tests/billing, test_faults)")
        # no page of the world shows a form for it: fuzz it with stray fields only
        record(f"fuzz: POST route with no form on any page: {endpoint}")
        target = Target(endpoint, method, allowed_role(access_for(endpoint, method)), "", form=Form("", "post"))
    rule = next(r for e, m, r in CASES if e == endpoint and m == method)
    state = {"world": world, "tried": 0, "refused": 0, "accepted": 0}
    problems: list[str] = []

    strategy = json_payload(target.schema) if target.schema is not None else form_payload(target.form)

    @FUZZ_SETTINGS
    @given(payload=strategy)
    def attempt(payload) -> None:
        world = state["world"]
        url = url_for_case(fuzz_app, rule, world)
        client = world.client_for(fuzz_app, target.role)
        with fuzz_app.app_context():
            before = row_counts()
        if target.schema is not None:
            response = client.post(url, data=json.dumps(payload), content_type="application/json")
        elif method == "GET":
            response = client.get(url, query_string=payload)
        else:
            response = client.post(url, data=payload)
        state["tried"] += 1
        status = response.status_code
        assert status < 500, f"{status} for {payload!r}"
        if 400 <= status < 500:
            state["refused"] += 1
            with fuzz_app.app_context():
                after = row_counts()
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            assert not changed, f"refused ({status}) but rows changed {changed} for {payload!r}"
            unnamed_allowed = status in (401, 403, 404, 409, 413, 429) or (target.form is not None and (
                not target.form.fields or hidden_fields_tampered(target.form, payload)))
            if not unnamed_allowed:
                problem = _refusal_problem(response, target)
                assert problem is None, f"{problem} for {payload!r}"
        else:
            state["accepted"] += 1
            if method != "GET":
                with fuzz_app.app_context():
                    state["world"] = rebuild_world()

    try:
        attempt()
    finally:
        record("fuzz: inputs tried", state["tried"])
        record("fuzz: inputs refused with a 4xx", state["refused"])
        record("fuzz: inputs accepted", state["accepted"])
        record("fuzz: endpoints fuzzed")
