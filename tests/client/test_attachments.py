"""Attachments: type checked by content, size limit, random storage names outside static,
served as downloads to their organisation only."""
from __future__ import annotations

import codecs
import io
import os
import zlib
import struct
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Attachment
from tests.client.helpers import TUESDAY_10_NY, file_ticket, log_in_as, set_clock, two_organisations, with_technician
from tests.conftest import login



LIMIT = 64 * 1024


def png_bytes() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")


@pytest.fixture
def setup(make_app, tmp_path, monkeypatch):
    app = make_app(UPLOAD_FOLDER=str(tmp_path / "uploads"), ATTACHMENT_MAX_BYTES=LIMIT)
    set_clock(monkeypatch, TUESDAY_10_NY)
    with app.app_context():
        orgs = two_organisations()
        with_technician()
        client = app.test_client()
        login(client, orgs[1].email)
        ticket_id, _ = file_ticket(client)
        yield app, client, ticket_id, orgs, tmp_path / "uploads"


def upload(client, ticket_id: int, content: bytes, name: str):
    return client.post(f"/client/tickets/{ticket_id}/attachments",
                       data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data")


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(Attachment))


def test_a_real_png_is_stored_under_a_random_name_and_downloaded_as_attachment(setup):
    app, client, ticket_id, _, folder = setup
    response = upload(client, ticket_id, png_bytes(), "screen shot.png")
    assert response.status_code == 303
    stored = db.session.scalars(select(Attachment)).one()
    assert stored.filename == "screen shot.png" and stored.storage_name != stored.filename
    assert os.listdir(folder) == [stored.storage_name]
    assert not str(folder).startswith(app.static_folder)
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "screen shot.png" in page
    download = client.get(f"/client/tickets/{ticket_id}/attachments/{stored.id}")
    assert download.status_code == 200 and download.data == png_bytes()
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("content, name", [
    (b"<html><script>alert(1)</script></html>", "photo.png"),
    (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64, "invoice.pdf"),
    (png_bytes(), "notes.txt"),
    (b"\x00\x01binary\x00stuff", "server.log"),
    (b"#!/bin/sh\nrm -rf /\n", "run.sh"),
    (b"<svg onload=alert(1)>", "logo.svg"),
])
def test_a_file_whose_content_is_not_allowed_is_refused_naming_the_field(setup, content, name):
    _, client, ticket_id, _, folder = setup
    response = upload(client, ticket_id, content, name)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Attach a file" in body.split('class="error"')[1]
    assert count() == 0
    assert not folder.exists() or os.listdir(folder) == []


@pytest.mark.parametrize("name", ["Снимок экрана.png", "截图.png", "スクリーンショット 2026-12-03.png"])
def test_a_png_named_in_any_script_is_accepted_and_keeps_its_name(setup, name):
    _, client, ticket_id, _, _ = setup
    response = upload(client, ticket_id, png_bytes(), name)
    assert response.status_code == 303
    stored = db.session.scalars(select(Attachment)).one()
    assert stored.filename == name and stored.content_type == "image/png"
    assert name in client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    download = client.get(f"/client/tickets/{ticket_id}/attachments/{stored.id}")
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "filename*=UTF-8''" + quote(name, safe="") in disposition
    assert disposition.isascii() and "\n" not in disposition


def test_a_name_in_another_script_is_still_judged_by_its_content(setup):
    _, client, ticket_id, _, _ = setup
    response = upload(client, ticket_id, b"<html><script>alert(1)</script></html>", "Снимок.png")
    assert response.status_code == 400 and "not a real PNG file" in response.get_data(as_text=True)
    assert count() == 0


def test_a_name_of_only_path_and_control_characters_is_stored_as_attachment(setup):
    _, client, ticket_id, _, _ = setup
    assert upload(client, ticket_id, png_bytes(), "\u202e.png").status_code == 303
    assert db.session.scalars(select(Attachment)).one().filename == "attachment.png"


def test_plain_text_log_is_accepted(setup):
    _, client, ticket_id, _, _ = setup
    assert upload(client, ticket_id, "switch log: port 3 down — ünïcode\n".encode(), "switch.log").status_code == 303
    stored = db.session.scalars(select(Attachment)).one()
    assert stored.content_type != "text/html"
    download = client.get(f"/client/tickets/{ticket_id}/attachments/{stored.id}")
    assert download.headers["Content-Disposition"].startswith("attachment")


EVENT_LOG = "Level\tDate and Time\tSource\nError\t03/12/2026 04:31:02\tDisk — ünïcode 📀\n" * 400


@pytest.mark.parametrize("content", [
    EVENT_LOG.encode("utf-16"),  # byte order mark, little-endian: Event Viewer's and Windows PowerShell's text
    codecs.BOM_UTF16_BE + EVENT_LOG.encode("utf-16-be"),
])
def test_a_utf16_text_file_with_its_byte_order_mark_is_accepted(setup, content):
    """Windows writes "Unicode" text as UTF-16: a client's exported event log was refused as
    "not plain text" (its zero bytes are half of each character, not NULs)."""
    _, client, ticket_id, _, _ = setup
    response = upload(client, ticket_id, content, "System events.txt")
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    stored = db.session.scalars(select(Attachment)).one()
    download = client.get(f"/client/tickets/{ticket_id}/attachments/{stored.id}")
    assert download.data == content and download.headers["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize("content", [
    "a NUL\x00 in UTF-16".encode("utf-16"),
    codecs.BOM_UTF16_LE + b"\x00\xd8\x00\xd8" + "text".encode("utf-16-le"),  # lone surrogates: not text
])
def test_utf16_that_is_not_text_is_still_refused(setup, content):
    _, client, ticket_id, _, _ = setup
    response = upload(client, ticket_id, content, "events.log")
    assert response.status_code == 400 and "not plain text" in response.get_data(as_text=True)
    assert count() == 0


CLIENT_LIST = "Name;Stadt;Umsatz\r\nMüller GmbH;Köln;1.250 €\r\nJosé Ñúñez;São Paulo;980 €\r\n" * 50


@pytest.mark.parametrize("content, name", [
    (CLIENT_LIST.encode("cp1252"), "Kunden Müller.csv"),  # Excel's "CSV (Comma delimited)" on Windows
    ("2026-12-03 08:00:01 Fehler: Drucker nicht erreichbar — Zeitüberschreitung\r\n".encode("cp1252") * 20,
     "drucker.log"),
])
def test_text_in_the_windows_code_page_is_accepted(setup, content, name):
    """Found filing a ticket: Excel's CSV export and older programs' logs are not UTF-8, and a client
    list with "Müller" in it was refused as "not plain text"."""
    _, client, ticket_id, _, _ = setup
    response = upload(client, ticket_id, content, name)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    stored = db.session.scalars(select(Attachment)).one()
    assert client.get(f"/client/tickets/{ticket_id}/attachments/{stored.id}").data == content


def test_a_program_named_as_text_is_still_refused_without_nul_bytes(setup):
    _, client, ticket_id, _, folder = setup
    program = bytes(range(1, 256)) * 4  # every byte but NUL: control bytes no text holds
    response = upload(client, ticket_id, program, "readme.txt")
    assert response.status_code == 400 and "not plain text" in response.get_data(as_text=True)
    assert count() == 0


def test_a_file_of_exactly_the_stated_limit_is_accepted(setup):
    _, client, ticket_id, _, _ = setup
    page = client.get(f"/client/tickets/{ticket_id}").get_data(as_text=True)
    assert "at most 0.1 MB" in page
    assert upload(client, ticket_id, b"a" * LIMIT, "big.txt").status_code == 303
    assert db.session.scalars(select(Attachment)).one().size == LIMIT


def test_a_file_just_over_the_limit_is_refused_on_the_ticket_page_and_nothing_is_stored(setup):
    _, client, ticket_id, _, folder = setup
    response = upload(client, ticket_id, b"a" * (LIMIT + 1), "big.txt")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Files can be at most 0.1 MB" in body.split('class="error"')[1]
    assert f'action="/client/tickets/{ticket_id}/attachments"' in body
    assert count() == 0 and (not folder.exists() or os.listdir(folder) == [])


def test_a_request_far_over_the_limit_is_413_with_a_way_back_to_the_ticket(setup):
    _, client, ticket_id, _, _ = setup
    response = upload(client, ticket_id, b"a" * (4 * LIMIT), "huge.txt")
    assert response.status_code == 413
    body = response.get_data(as_text=True)
    assert "at most 0.1 MB" in body
    assert f'href="/client/tickets/{ticket_id}"' in body and "Back to the ticket" in body
    assert count() == 0


def test_the_request_cap_leaves_room_for_the_form_around_the_largest_file(make_app):
    app = make_app(ATTACHMENT_MAX_BYTES=10 * 1024 * 1024)
    assert app.config["MAX_CONTENT_LENGTH"] > 10 * 1024 * 1024


def test_no_file_names_the_field(setup):
    _, client, ticket_id, _, _ = setup
    response = client.post(f"/client/tickets/{ticket_id}/attachments", data={}, content_type="multipart/form-data")
    assert response.status_code == 400 and "Choose a file" in response.get_data(as_text=True)


def test_another_organisation_cannot_see_or_add_files(setup):
    _, client, ticket_id, orgs, _ = setup
    upload(client, ticket_id, png_bytes(), "screen.png")
    stored = db.session.scalars(select(Attachment)).one()
    log_in_as(client, orgs[3])
    assert client.get(f"/client/tickets/{ticket_id}/attachments/{stored.id}").status_code == 404
    assert upload(client, ticket_id, png_bytes(), "mine.png").status_code == 404
    assert count() == 1


def test_an_attachment_id_of_another_ticket_is_404(setup):
    _, client, ticket_id, _, _ = setup
    upload(client, ticket_id, png_bytes(), "screen.png")
    stored = db.session.scalars(select(Attachment)).one()
    other_ticket, _ = file_ticket(client, title="Second problem")
    assert client.get(f"/client/tickets/{other_ticket}/attachments/{stored.id}").status_code == 404
