"""The users page's account activity: every change to who can log in or call the API is written with
the change, names who did it, is shown newest first to the organisation's admins and the firm's
staff, and never to another organisation."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AccountEvent, ApiToken, OutboxMessage, Role
from tests.client.test_users import _invite, _people
from tests.conftest import PASSWORD, login, make_user


def _activity(page: str) -> list[str]:
    section = re.search(r'<section id="account-activity">(.*?)</section>', page, re.S)
    assert section, "the page has an account activity section"
    return [re.sub(r"\s+", " ", item).strip()
            for item in re.findall(r"<li><time>[^<]*</time>(.*?)</li>", section.group(1), re.S)]


def _events() -> int:
    return db.session.scalar(select(func.count()).select_from(AccountEvent))


def test_each_change_to_who_can_log_in_is_listed_newest_first_with_who_made_it(client):
    _, admin, member, *_ = _people()
    _, link = _invite(admin, "carol@acme.example")
    client.post(link, data={"full_name": "Carol New", "password": PASSWORD, "confirm": PASSWORD})
    client.post("/auth/logout")
    login(client, "admin@acme.example")
    client.post("/client/users", data={"email": "dan@acme.example", "role": Role.CLIENT_ADMIN})
    client.post("/client/users", data={"email": "dan@acme.example", "role": Role.CLIENT_ADMIN})
    pending = re.search(r'action="/client/invitations/(\d+)/cancel"', client.get("/client/users").get_data(as_text=True))
    client.post(f"/client/invitations/{pending.group(1)}/cancel")
    client.post(f"/client/users/{member.id}/role", data={"role": Role.CLIENT_ADMIN})
    client.post(f"/client/users/{member.id}/remove")
    client.post(f"/client/users/{member.id}/restore")
    client.post("/client/account", data={"name": "Nagios"})
    token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "Nagios"))
    client.post(f"/client/account/api-tokens/{token_id}/revoke")

    ada, bob = "Ada Admin (admin@acme.example)", "Bob Member (bob@acme.example)"
    assert _activity(client.get("/client/users").get_data(as_text=True)) == [
        f"{ada} revoked the API token “Nagios”.",
        f"{ada} created the API token “Nagios”.",
        f"{ada} restored the access of {bob}, as client admin.",
        f"{ada} removed the access of {bob}; every session was signed out.",
        f"{ada} made {bob} client admin.",
        f"{ada} cancelled the invitation to dan@acme.example.",
        f"{ada} invited dan@acme.example as client admin (the earlier link no longer works).",
        f"{ada} invited dan@acme.example as client admin.",
        "Carol New (carol@acme.example) accepted the invitation and joined as client member.",
        f"{ada} invited carol@acme.example as client member.",
    ]


def test_a_colleagues_own_session_sign_out_and_password_reset_are_listed(client):
    _people()
    login(client, "bob@acme.example")
    client.post("/auth/sessions/end-all")
    client.post("/auth/reset", data={"email": "bob@acme.example"})
    body = db.session.scalars(select(OutboxMessage.body).where(OutboxMessage.recipient == "bob@acme.example")
                              .order_by(OutboxMessage.id.desc())).first()
    reset_path = re.search(r"http://portal\.test(\S+)", body).group(1)
    client.post(reset_path, data={"password": "another-pass-2026", "confirm": "another-pass-2026"})
    login(client, "admin@acme.example")
    assert _activity(client.get("/client/users").get_data(as_text=True)) == [
        "Bob Member (bob@acme.example) set a new password with a reset link; every session was signed out.",
        "Bob Member (bob@acme.example) signed out every session.",
    ]


def test_a_refused_or_repeated_change_writes_nothing(client):
    _, admin, member, *_ = _people()
    login(client, "admin@acme.example")
    assert client.post(f"/client/users/{admin.id}/role", data={"role": Role.CLIENT_MEMBER}).status_code == 400
    assert client.post(f"/client/users/{admin.id}/remove").status_code == 400
    assert _events() == 0
    client.post(f"/client/users/{member.id}/remove")
    client.post(f"/client/users/{member.id}/remove")
    client.post(f"/client/users/{member.id}/restore")
    client.post(f"/client/users/{member.id}/restore")
    assert _events() == 2
    assert "No change to who can log in yet." not in client.get("/client/users").get_data(as_text=True)


def test_another_organisation_never_sees_the_activity_and_the_firm_does(client):
    acme, admin, member, other, other_admin, _ = _people()
    login(client, "admin@acme.example")
    client.post(f"/client/users/{member.id}/remove")
    client.post("/auth/logout")

    login(client, "admin@other.example")
    page = client.get("/client/users").get_data(as_text=True)
    assert _activity(page) == [] and "No change to who can log in yet." in page and "Bob" not in page
    client.post("/auth/logout")

    make_user("d@firm.example", role=Role.DISPATCHER)
    login(client, "d@firm.example")
    page = client.get(f"/staff/organisations/{acme.id}").get_data(as_text=True)
    assert _activity(page) == ["Ada Admin (admin@acme.example) removed the access of Bob Member (bob@acme.example); "
                               "every session was signed out."]
    assert "no longer has access" in page
    assert _activity(client.get(f"/staff/organisations/{other.id}").get_data(as_text=True)) == []
