"""The users page: a client admin removes and restores a colleague's access, changes roles and
cancels invitations. Every change is scoped to the admin's organisation and keeps one active admin."""
from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from portal import clock
from portal.extensions import db
from portal.models import Invitation, OutboxMessage, Role, Ticket, TicketStatus, User
from portal.services import accounts
from portal.services.notifications import client_recipients
from tests.conftest import PASSWORD, login, make_organisation, make_user
from tests.security.world import snapshot


def _people():
    """Acme with an admin (logged in by the tests) and a member; Other Co with its own admin and member."""
    acme = make_organisation("Acme")
    admin = make_user("admin@acme.example", organisation=acme, name="Ada Admin")
    member = make_user("bob@acme.example", role=Role.CLIENT_MEMBER, organisation=acme, name="Bob Member")
    other = make_organisation("Other Co")
    other_admin = make_user("admin@other.example", organisation=other, name="Otto Other")
    other_member = make_user("mia@other.example", role=Role.CLIENT_MEMBER, organisation=other, name="Mia Other")
    return acme, admin, member, other, other_admin, other_member


def _fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def _invite(admin: User, email: str) -> tuple[Invitation, str]:
    """An invitation sent the way the page sends it, and the path of its link."""
    sent = accounts.invite_colleague(admin, email, Role.CLIENT_MEMBER, clock.now())
    message = db.session.scalars(
        select(OutboxMessage.body).where(OutboxMessage.kind == "invitation").order_by(OutboxMessage.id.desc())
    ).first()
    return sent.invitation, re.search(r"http://portal\.test(\S+)", message).group(1)


def _flash(page: str) -> list[str]:
    return re.findall(r'<p class="flash flash-(\w+)" role="status">([^<]*)</p>', page)


# --- removing access ---------------------------------------------------------------------------------------------


@pytest.fixture
def unheld_app(make_app) -> Flask:
    """No app context held between requests, as in production: two people's clients must not share
    Flask-Login's user (kept on `g`), so each request gets its own context."""
    return make_app()


def test_removing_a_colleague_signs_them_out_at_once_and_their_tickets_stay(unheld_app):
    app = unheld_app
    with app.app_context():
        _, admin, member, *_ = _people()
        member_id, version = member.id, member.session_version
        ticket = Ticket(organisation_id=member.organisation_id, requester_id=member.id, title="Printer jammed",
                        status=TicketStatus.NEW, opened_at=clock.now(), updated_at=clock.now(), sla_best_effort=True)
        db.session.add(ticket)
        db.session.commit()
        ticket_id = ticket.id
    bob, client = app.test_client(), app.test_client()
    login(bob, "bob@acme.example")
    assert bob.get("/client/").status_code == 200

    login(client, "admin@acme.example")
    confirm = client.get(f"/client/users/{member_id}/remove")
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    assert "Remove access for Bob Member" in page and "bob@acme.example" in page
    with app.app_context():
        assert db.session.get(User, member_id).active  # the confirmation step writes nothing

    done = client.post(f"/client/users/{member_id}/remove", follow_redirects=True)
    page = done.get_data(as_text=True)
    assert done.status_code == 200
    assert ("success", "Bob Member (bob@acme.example) no longer has access: every session is signed out.") in _flash(page)
    assert "No longer has access" in page
    with app.app_context():
        member = db.session.get(User, member_id)
        assert member.active is False and member.session_version == version + 1

    # the open session ends on its next request, and the password no longer opens the account
    assert bob.get("/client/").status_code == 302
    login(bob, "bob@acme.example")
    assert bob.get("/client/").status_code == 302
    with app.app_context():
        # the ticket stays with the organisation; its emails now go to the admins
        ticket = db.session.get(Ticket, ticket_id)
        assert ticket.requester_id == member_id and ticket.organisation.name == "Acme"
        assert client_recipients(ticket) == ["admin@acme.example"]
        before = snapshot()["outbox_message"]
    # nor can the address get a reset link
    client.post("/auth/logout")
    client.post("/auth/reset", data={"email": "bob@acme.example"})
    with app.app_context():
        assert snapshot()["outbox_message"] == before


def test_a_reset_link_asked_for_before_the_removal_stops_working(client):
    """Found removing a colleague who had just asked for a new password: their link still set one
    ("Your password is changed. Log in with the new one.") and logged it as done; after a restore,
    the password the removed person chose in the meantime was the one that worked."""
    _, admin, member, *_ = _people()
    client.post("/auth/reset", data={"email": "bob@acme.example"})
    link = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "password_reset")).one().body
    path = "/auth/reset/" + re.search(r"/auth/reset/(\S+)", link).group(1)
    before_hash = member.password_hash
    login(client, "admin@acme.example")
    client.post(f"/client/users/{member.id}/remove")
    client.post("/auth/logout")
    assert client.get(path).status_code == 302
    refused = client.post(path, data={"password": "a brand new passphrase 42", "confirm": "a brand new passphrase 42"})
    assert refused.status_code == 302 and refused.headers["Location"].endswith("/auth/reset")
    assert _fresh(member).password_hash == before_hash


def test_restoring_access_lets_them_log_in_again_but_old_sessions_stay_dead(unheld_app):
    app = unheld_app
    with app.app_context():
        member_id = _people()[2].id
    bob, client = app.test_client(), app.test_client()
    login(bob, "bob@acme.example")
    login(client, "admin@acme.example")
    client.post(f"/client/users/{member_id}/remove")
    page = client.get("/client/users").get_data(as_text=True)
    assert f'action="/client/users/{member_id}/restore"' in page

    done = client.post(f"/client/users/{member_id}/restore", follow_redirects=True)
    assert ("success", "Bob Member (bob@acme.example) has access again, as client member.") in _flash(done.get_data(as_text=True))
    with app.app_context():
        assert db.session.get(User, member_id).active is True
    assert bob.get("/client/").status_code == 302  # the session open before the removal stays signed out
    login(bob, "bob@acme.example")
    assert bob.get("/client/").status_code == 200


def test_an_admin_cannot_remove_themselves(client):
    _, admin, *_ = _people()
    make_user("second@acme.example", organisation=admin.organisation, name="Second Admin")
    login(client, "admin@acme.example")
    confirm = client.get(f"/client/users/{admin.id}/remove").get_data(as_text=True)
    assert "You cannot remove your own access" in confirm
    assert f'<form method="post" action="/client/users/{admin.id}/remove"' not in confirm
    before = snapshot()
    refused = client.post(f"/client/users/{admin.id}/remove")
    assert refused.status_code == 400
    assert ("error", "You cannot remove your own access: ask another admin to do it.") in _flash(refused.get_data(as_text=True))
    assert snapshot() == before


def test_removing_another_admin_keeps_the_remover_as_the_active_admin(client):
    _, admin, *_ = _people()
    second = make_user("second@acme.example", organisation=admin.organisation, name="Second Admin")
    login(client, "admin@acme.example")
    assert client.post(f"/client/users/{second.id}/remove").status_code == 302
    assert _fresh(second).active is False


# --- roles --------------------------------------------------------------------------------------------------------


def test_changing_a_colleague_between_member_and_admin(client):
    _, admin, member, *_ = _people()
    login(client, "admin@acme.example")
    done = client.post(f"/client/users/{member.id}/role", data={"role": Role.CLIENT_ADMIN}, follow_redirects=True)
    assert ("success", "Bob Member (bob@acme.example) is now client admin.") in _flash(done.get_data(as_text=True))
    assert _fresh(member).role == Role.CLIENT_ADMIN
    back = client.post(f"/client/users/{member.id}/role", data={"role": Role.CLIENT_MEMBER}, follow_redirects=True)
    assert ("success", "Bob Member (bob@acme.example) is now client member.") in _flash(back.get_data(as_text=True))
    assert _fresh(member).role == Role.CLIENT_MEMBER


def test_a_promoted_member_can_manage_users_at_once_and_a_demoted_admin_cannot(unheld_app):
    app = unheld_app
    with app.app_context():
        member_id = _people()[2].id
    bob, client = app.test_client(), app.test_client()
    login(bob, "bob@acme.example")
    assert bob.get("/client/users").status_code == 403
    login(client, "admin@acme.example")
    client.post(f"/client/users/{member_id}/role", data={"role": Role.CLIENT_ADMIN})
    assert bob.get("/client/users").status_code == 200
    client.post(f"/client/users/{member_id}/role", data={"role": Role.CLIENT_MEMBER})
    assert bob.get("/client/users").status_code == 403


def test_the_last_active_admin_cannot_step_down(client):
    _, admin, member, *_ = _people()
    login(client, "admin@acme.example")
    before = snapshot()
    refused = client.post(f"/client/users/{admin.id}/role", data={"role": Role.CLIENT_MEMBER})
    assert refused.status_code == 400
    message = ("error", "Acme must keep at least one active admin: make someone else admin first.")
    assert message in _flash(refused.get_data(as_text=True))
    assert snapshot() == before


def test_a_removed_admin_does_not_count_as_the_one_left(client):
    _, admin, *_ = _people()
    second = make_user("second@acme.example", organisation=admin.organisation, name="Second Admin")
    login(client, "admin@acme.example")
    client.post(f"/client/users/{second.id}/remove")
    before = snapshot()
    refused = client.post(f"/client/users/{admin.id}/role", data={"role": Role.CLIENT_MEMBER})
    assert refused.status_code == 400 and snapshot() == before


def test_an_admin_may_step_down_while_another_admin_remains(client):
    _, admin, *_ = _people()
    make_user("second@acme.example", organisation=admin.organisation, name="Second Admin")
    login(client, "admin@acme.example")
    done = client.post(f"/client/users/{admin.id}/role", data={"role": Role.CLIENT_MEMBER})
    assert done.status_code == 302 and done.headers["Location"].endswith("/client/")  # the users page is no longer theirs
    assert _fresh(admin).role == Role.CLIENT_MEMBER
    assert client.get("/client/users").status_code == 403


def test_a_role_that_is_not_member_or_admin_is_refused_and_changes_nothing(client):
    _, admin, member, *_ = _people()
    login(client, "admin@acme.example")
    before = snapshot()
    for role in ("owner", "technician", "", "client_admin\x00"):
        refused = client.post(f"/client/users/{member.id}/role", data={"role": role})
        assert refused.status_code == 400, role
        flashes = _flash(refused.get_data(as_text=True))
        assert any(kind == "error" for kind, _ in flashes), role
    assert ("error", "Choose member or admin.") in _flash(
        client.post(f"/client/users/{member.id}/role", data={"role": "owner"}).get_data(as_text=True))
    assert snapshot() == before


def test_a_removed_colleague_has_their_access_restored_before_a_role_change(client):
    _, admin, member, *_ = _people()
    login(client, "admin@acme.example")
    client.post(f"/client/users/{member.id}/remove")
    before = snapshot()
    refused = client.post(f"/client/users/{member.id}/role", data={"role": Role.CLIENT_ADMIN})
    assert refused.status_code == 400
    assert ("error", "Bob Member (bob@acme.example) no longer has access: restore it first.") in _flash(
        refused.get_data(as_text=True))
    assert snapshot() == before


# --- invitations ----------------------------------------------------------------------------------------------


def test_cancelling_an_invitation_stops_its_link_at_once(client):
    _, admin, *_ = _people()
    invitation, link = _invite(admin, "carol@acme.example")
    login(client, "admin@acme.example")
    page = client.get("/client/users").get_data(as_text=True)
    assert f'action="/client/invitations/{invitation.id}/cancel"' in page
    done = client.post(f"/client/invitations/{invitation.id}/cancel", follow_redirects=True)
    page = done.get_data(as_text=True)
    assert ("success", "The invitation to carol@acme.example is cancelled: its link no longer works.") in _flash(page)
    assert "not yet accepted" not in page
    client.post("/auth/logout")
    assert "Join Acme" not in client.get(link, follow_redirects=True).get_data(as_text=True)
    client.post(link, data={"full_name": "Carol", "password": PASSWORD, "confirm": PASSWORD})
    assert accounts.find_user("carol@acme.example") is None


def test_removing_an_admin_ends_the_invitations_they_sent_and_no_one_elses(client):
    """A link a departing admin handed out must not let someone in after them."""
    _, admin, *_ = _people()
    leaving = make_user("leo@acme.example", organisation=admin.organisation, name="Leo Leaving")
    _, theirs = _invite(leaving, "friend@elsewhere.example")
    _, also_theirs = _invite(leaving, "carol@acme.example")
    kept, ours = _invite(admin, "dan@acme.example")
    login(client, "admin@acme.example")
    assert "Invitations they sent that nobody has accepted yet stop working too" in client.get(
        f"/client/users/{leaving.id}/remove").get_data(as_text=True)
    page = client.post(f"/client/users/{leaving.id}/remove", follow_redirects=True).get_data(as_text=True)
    assert ("info", "The invitations Leo Leaving (leo@acme.example) had sent to carol@acme.example, "
                    "friend@elsewhere.example no longer "
                    "work: invite again if they should still join.") in _flash(page)
    assert ("cancelled the invitation Leo Leaving (leo@acme.example) had sent to friend@elsewhere.example, "
            "with their access.") in page
    pending = page.split("Invitations not yet accepted")[1].split("</ul>")[0]
    assert "dan@acme.example" in pending and "friend@elsewhere.example" not in pending
    client.post("/auth/logout")
    for link in (theirs, also_theirs):
        client.post(link, data={"full_name": "Someone", "password": PASSWORD, "confirm": PASSWORD})
    assert accounts.find_user("friend@elsewhere.example") is None and accounts.find_user("carol@acme.example") is None
    assert "Join Acme" in client.get(ours, follow_redirects=True).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Invitation, kept.id).expires_at > clock.now()


def test_an_accepted_invitation_cannot_be_cancelled(client):
    _, admin, *_ = _people()
    invitation, link = _invite(admin, "carol@acme.example")
    client.post(link, data={"full_name": "Carol", "password": PASSWORD, "confirm": PASSWORD})
    client.post("/auth/logout")
    login(client, "admin@acme.example")
    before = snapshot()
    refused = client.post(f"/client/invitations/{invitation.id}/cancel")
    assert refused.status_code == 400
    assert ("error", "carol@acme.example already accepted this invitation: remove their access instead.") in _flash(
        refused.get_data(as_text=True))
    assert snapshot() == before


def test_inviting_a_removed_colleague_again_points_to_restoring_them(client):
    _, admin, member, *_ = _people()
    login(client, "admin@acme.example")
    client.post(f"/client/users/{member.id}/remove")
    refused = client.post("/client/users", data={"email": "bob@acme.example", "role": Role.CLIENT_MEMBER})
    assert refused.status_code == 400
    assert "no longer has access: restore it in the list above" in refused.get_data(as_text=True)


# --- who may do it ----------------------------------------------------------------------------------------------


def _all_actions(user_id: int, invitation_id: int) -> list[tuple[str, dict]]:
    return [
        (f"/client/users/{user_id}/remove", {}),
        (f"/client/users/{user_id}/restore", {}),
        (f"/client/users/{user_id}/role", {"role": Role.CLIENT_ADMIN}),
        (f"/client/invitations/{invitation_id}/cancel", {}),
    ]


def test_members_cannot_manage_colleagues(client):
    _, admin, member, *_ = _people()
    invitation, _ = _invite(admin, "carol@acme.example")
    login(client, "bob@acme.example")
    before = snapshot()
    assert client.get(f"/client/users/{admin.id}/remove").status_code == 403
    for url, data in _all_actions(admin.id, invitation.id):
        assert client.post(url, data=data).status_code == 403, url
    assert snapshot() == before


def test_another_organisations_people_and_invitations_answer_404_and_change_nothing(client):
    _, admin, member, other, other_admin, other_member = _people()
    foreign_invitation, _ = _invite(other_admin, "newbie@other.example")
    staff = make_user("tech@firm.example", role=Role.TECHNICIAN, name="Tess Tech")
    login(client, "admin@acme.example")
    before = snapshot()
    for person in (other_admin, other_member, staff):
        assert client.get(f"/client/users/{person.id}/remove").status_code == 404
        for url, data in _all_actions(person.id, foreign_invitation.id):
            assert client.post(url, data=data).status_code == 404, url
    assert client.post("/client/users/999999/remove").status_code == 404
    assert client.post("/client/invitations/999999/cancel").status_code == 404
    assert snapshot() == before
    page = client.get("/client/users").get_data(as_text=True)
    assert "mia@other.example" not in page and "newbie@other.example" not in page


# --- double submits --------------------------------------------------------------------------------------------


def test_double_submits_are_harmless(client):
    _, admin, member, *_ = _people()
    invitation, _ = _invite(admin, "carol@acme.example")
    login(client, "admin@acme.example")

    client.post(f"/client/users/{member.id}/remove")
    version = _fresh(member).session_version
    before = snapshot()
    again = client.post(f"/client/users/{member.id}/remove", follow_redirects=True)
    assert again.status_code == 200
    assert ("info", "Bob Member (bob@acme.example) already had no access.") in _flash(again.get_data(as_text=True))
    assert snapshot() == before and _fresh(member).session_version == version

    client.post(f"/client/users/{member.id}/restore")
    before = snapshot()
    again = client.post(f"/client/users/{member.id}/restore", follow_redirects=True)
    assert ("info", "Bob Member (bob@acme.example) already has access.") in _flash(again.get_data(as_text=True))
    assert snapshot() == before

    client.post(f"/client/users/{member.id}/role", data={"role": Role.CLIENT_ADMIN})
    before = snapshot()
    again = client.post(f"/client/users/{member.id}/role", data={"role": Role.CLIENT_ADMIN}, follow_redirects=True)
    assert ("info", "Bob Member (bob@acme.example) is already client admin.") in _flash(again.get_data(as_text=True))
    assert snapshot() == before

    client.post(f"/client/invitations/{invitation.id}/cancel")
    before = snapshot()
    again = client.post(f"/client/invitations/{invitation.id}/cancel", follow_redirects=True)
    assert ("info", "The invitation to carol@acme.example was already cancelled or had expired.") in _flash(
        again.get_data(as_text=True))
    assert snapshot() == before


def test_a_member_refused_an_admin_page_is_told_who_the_admins_are(client):
    """Found as a member opening the users and billing addresses: the refusal read only "Your account
    cannot open this page." and led to the home page."""
    _people()
    login(client, "bob@acme.example")
    for path in ("/client/users", "/billing/", "/client/account"):
        refused = client.get(path)
        page = refused.get_data(as_text=True)
        assert refused.status_code == 403, path
        assert "For admins only" in page and "Ask Ada Admin (admin@acme.example)" in page, path
        assert 'href="/client/"' in page and "Back to your tickets" in page, path
    assert client.post("/client/users", data={"email": "x@acme.example", "role": "client_member"}).status_code == 403
    assert db.session.scalars(select(Invitation)).all() == []
    # a page only the firm's staff open is refused in the usual words
    assert "Your account cannot open this page." in client.get("/billing/staff/contracts").get_data(as_text=True)
