"""Staff read the client's comments and files on the ticket page and reply on its timeline."""
import io

from werkzeug.datastructures import FileStorage

from portal.extensions import db
from portal.models import Comment, Role, TicketEvent
from portal.services import tickets
from tests.client.helpers import set_clock
from tests.client.test_attachments import png_bytes
from tests.conftest import login, make_organisation, make_plan, make_user
from tests.staff.helpers import make_technician, staff
from tests.staff.test_actions import TUESDAY_10_NY, open_ticket


def switch_to(client, email: str) -> None:
    client.post("/auth/logout")
    login(client, email)


def setup_ticket(monkeypatch):
    set_clock(monkeypatch, TUESDAY_10_NY)
    acme = make_organisation("Acme", make_plan("priority"))
    alice = make_user("alice@acme.example", organisation=acme, name="Alice Acme")
    make_technician()
    ticket = open_ticket(acme, "VPN drops every hour")
    tickets.add_comment(ticket.id, alice, "It happened again at 9:55.", TUESDAY_10_NY)
    return acme, alice, ticket


def test_staff_see_comments_and_reply(client, monkeypatch):
    acme, alice, ticket = setup_ticket(monkeypatch)
    staff(client, Role.TECHNICIAN, "viewer@firm.example", name="Vic Viewer")
    page = client.get(f"/staff/tickets/{ticket.id}").get_data(as_text=True)
    assert "It happened again at 9:55." in page and "Alice Acme" in page
    response = client.post(f"/staff/tickets/{ticket.id}/comments", data={"body": "Looking at the VPN logs now."})
    assert response.status_code == 303
    reply = db.session.scalars(db.select(Comment).order_by(Comment.id.desc())).first()
    assert reply.body == "Looking at the VPN logs now." and reply.author.email == "viewer@firm.example"
    assert db.session.scalars(db.select(TicketEvent).where(TicketEvent.kind == "comment",
                                                            TicketEvent.actor_id == reply.author_id)).one().public
    switch_to(client, "alice@acme.example")
    assert "Looking at the VPN logs now." in client.get(f"/client/tickets/{ticket.id}").get_data(as_text=True)


def test_empty_reply_is_refused_and_clients_cannot_use_the_staff_route(client, monkeypatch):
    acme, alice, ticket = setup_ticket(monkeypatch)
    staff(client, Role.DISPATCHER)
    response = client.post(f"/staff/tickets/{ticket.id}/comments", data={"body": ""})
    assert response.status_code == 400 and "Write something first." in response.get_data(as_text=True)
    switch_to(client, "alice@acme.example")
    assert client.post(f"/staff/tickets/{ticket.id}/comments", data={"body": "hi"}).status_code == 403
    assert db.session.scalar(db.select(db.func.count()).select_from(Comment)) == 1


def test_staff_download_the_clients_file(make_app, tmp_path, monkeypatch):
    app = make_app(UPLOAD_FOLDER=str(tmp_path / "uploads"))
    with app.app_context():
        acme, alice, ticket = setup_ticket(monkeypatch)
        stored = tickets.add_attachment(ticket.id, alice, FileStorage(io.BytesIO(png_bytes()), "screen.png",
                                                                      content_type="image/png"), TUESDAY_10_NY)
        client = app.test_client()
        staff(client, Role.DISPATCHER)
        page = client.get(f"/staff/tickets/{ticket.id}").get_data(as_text=True)
        assert "screen.png" in page
        response = client.get(f"/staff/tickets/{ticket.id}/attachments/{stored.id}")
        assert response.status_code == 200 and response.data == png_bytes()
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert client.get(f"/staff/tickets/{ticket.id + 1}/attachments/{stored.id}").status_code == 404
        switch_to(client, "alice@acme.example")
        assert client.get(f"/staff/tickets/{ticket.id}/attachments/{stored.id}").status_code == 403


def test_the_description_and_comments_keep_their_line_breaks_for_staff(client, monkeypatch):
    acme, alice, ticket = setup_ticket(monkeypatch)
    db.session.get(type(ticket), ticket.id).description = "Since 9:00.\nOnly on Wi-Fi."
    db.session.commit()
    tickets.add_comment(ticket.id, alice, "Rebooted.\nNo change.", TUESDAY_10_NY)
    staff(client, Role.DISPATCHER)
    page = client.get(f"/staff/tickets/{ticket.id}").get_data(as_text=True)
    assert '<p class="as-typed">Since 9:00.\nOnly on Wi-Fi.</p>' in page
    assert '<p class="as-typed">Rebooted.\nNo change.</p>' in page
