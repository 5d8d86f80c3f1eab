"""API tokens: shown once, stored hashed, scoped to one organisation, revocable, last use recorded."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiToken, Role
from portal.services import api_tokens
from tests.conftest import login, make_organisation, make_user


def test_create_stores_only_the_hash_and_a_prefix(app, now):
    admin = make_user("a@acme.example", organisation=make_organisation("Acme"))
    issued = api_tokens.create(admin.organisation_id, "Monitoring", admin, now)
    stored = db.session.scalars(select(ApiToken)).one()
    assert issued.secret.startswith("nwp_") and len(issued.secret) > 40
    assert stored.token_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in (stored.token_hash, stored.prefix, stored.name)
    assert issued.secret.startswith(stored.prefix) and len(stored.prefix) == 12


def test_authenticate_records_last_use_and_revocation_stops_it(app, now):
    admin = make_user("a@acme.example", organisation=make_organisation("Acme"))
    issued = api_tokens.create(admin.organisation_id, "Monitoring", admin, now)
    token = api_tokens.authenticate(issued.secret, now + timedelta(minutes=5))
    assert token is not None and token.organisation_id == admin.organisation_id
    assert token.last_used_at == now + timedelta(minutes=5)
    assert api_tokens.authenticate(issued.secret[:-1] + "x", now) is None
    assert api_tokens.authenticate("", now) is None
    assert api_tokens.authenticate("not-a-token", now) is None
    api_tokens.revoke(admin.organisation_id, token.id, admin, now + timedelta(minutes=6))
    assert api_tokens.authenticate(issued.secret, now + timedelta(minutes=7)) is None


def test_only_the_organisations_admin_manages_tokens(app, now):
    acme = make_organisation("Acme")
    other = make_organisation("Other")
    admin = make_user("a@acme.example", organisation=acme)
    member = make_user("m@acme.example", role=Role.CLIENT_MEMBER, organisation=acme)
    stranger = make_user("s@other.example", organisation=other)
    with pytest.raises(api_tokens.ApiTokenError):
        api_tokens.create(acme.id, "x", member, now)
    with pytest.raises(api_tokens.ApiTokenError):
        api_tokens.create(acme.id, "x", stranger, now)
    issued = api_tokens.create(acme.id, "x", admin, now)
    assert api_tokens.revoke(other.id, issued.token.id, stranger, now) is None
    assert db.session.get(ApiToken, issued.token.id).revoked_at is None


@pytest.mark.parametrize("name, message", [("", "Give the token a name"), ("  ", "Give the token a name"),
                                           ("x" * 101, "at most 100")])
def test_bad_name_names_the_field_and_creates_nothing(app, now, name, message):
    admin = make_user("a@acme.example", organisation=make_organisation("Acme"))
    with pytest.raises(api_tokens.ApiTokenError) as error:
        api_tokens.create(admin.organisation_id, name, admin, now)
    assert error.value.field == "name" and message in error.value.message
    assert db.session.scalars(select(ApiToken)).first() is None


def test_account_page_shows_the_secret_once(client):
    admin = make_user("a@acme.example", organisation=make_organisation("Acme"))
    login(client, admin.email)
    created = client.post("/client/account", data={"name": "Nagios"})
    page = created.get_data(as_text=True)
    secret = db.session.scalars(select(ApiToken)).one()
    assert created.status_code == 200 and "shown only once" in page
    shown = page.split('id="new-token">')[1].split("<")[0]
    assert hashlib.sha256(shown.encode()).hexdigest() == secret.token_hash
    again = client.get("/client/account").get_data(as_text=True)
    assert shown not in again and secret.prefix in again


def test_the_same_form_sent_again_makes_no_second_token(client):
    """A double click without JavaScript, Back and send, or the browser's reload of the answer sent the
    form again, and each made another live token whose secret nobody ever saw."""
    admin = make_user("a@acme.example", organisation=make_organisation("Acme"))
    login(client, admin.email)
    form = client.get("/client/account").get_data(as_text=True)
    key = re.search(r'name="request_key" type="hidden" value="([^"]+)"', form).group(1)
    first = client.post("/client/account", data={"name": "Nagios", "request_key": key}).get_data(as_text=True)
    assert "shown only once" in first
    again = client.post("/client/account", data={"name": "Nagios", "request_key": key})
    page = again.get_data(as_text=True)
    token = db.session.scalars(select(ApiToken)).one()
    assert again.status_code == 200 and 'id="new-token"' not in page
    assert (f"This form was already sent: the token “Nagios” ({token.prefix}…) was created then, and its secret was "
            "shown on that answer only. If you did not copy it, revoke it and create another.") in page
    # The answer's own form is a new request; the old form with another name typed after Back is one too.
    fresh = re.search(r'name="request_key" type="hidden" value="([^"]+)"', first).group(1)
    assert fresh != key
    assert "shown only once" in client.post("/client/account", data={"name": "Zabbix", "request_key": key}).get_data(as_text=True)
    assert "shown only once" in client.post("/client/account", data={"name": "Nagios", "request_key": fresh}).get_data(as_text=True)
    assert len(db.session.scalars(select(ApiToken)).all()) == 3


def test_the_same_request_key_in_two_organisations_makes_a_token_in_each(app, now):
    acme_admin = make_user("a@acme.example", organisation=make_organisation("Acme"))
    other_admin = make_user("o@other.example", organisation=make_organisation("Other"))
    first = api_tokens.create(acme_admin.organisation_id, "Nagios", acme_admin, now, request_key="k")
    second = api_tokens.create(other_admin.organisation_id, "Nagios", other_admin, now, request_key="k")
    assert first.secret and second.secret and first.token.id != second.token.id


def test_account_page_bad_name_rerenders_with_field_named(client):
    admin = make_user("a@acme.example", organisation=make_organisation("Acme"))
    login(client, admin.email)
    response = client.post("/client/account", data={"name": ""})
    assert response.status_code == 400
    assert "Token name" in response.get_data(as_text=True) and "Give the token a name" in response.get_data(as_text=True)
    assert db.session.scalars(select(ApiToken)).first() is None


def test_revoke_from_the_account_page_and_privacy(client, now):
    acme = make_organisation("Acme")
    admin = make_user("a@acme.example", organisation=acme)
    other_admin = make_user("o@other.example", organisation=make_organisation("Other"))
    issued = api_tokens.create(acme.id, "Nagios", admin, now)
    login(client, other_admin.email)
    assert client.post(f"/client/account/api-tokens/{issued.token.id}/revoke").status_code == 404
    assert db.session.get(ApiToken, issued.token.id).revoked_at is None
    client.post("/auth/logout")
    login(client, admin.email)
    response = client.post(f"/client/account/api-tokens/{issued.token.id}/revoke")
    assert response.status_code == 200 and "revoked" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ApiToken, issued.token.id).revoked_at is not None


def test_members_and_staff_cannot_open_the_account_page(client):
    acme = make_organisation("Acme")
    make_user("m@acme.example", role=Role.CLIENT_MEMBER, organisation=acme)
    login(client, "m@acme.example")
    assert client.get("/client/account").status_code == 403
    assert client.post("/client/account", data={"name": "x"}).status_code == 403
    assert db.session.scalars(select(ApiToken)).first() is None
