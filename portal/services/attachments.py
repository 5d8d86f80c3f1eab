"""What an uploaded file really is, judged by its content, before it is stored.

Why by content: a file name or the browser's Content-Type is whatever the uploader says. An
HTML page renamed 'screenshot.png' or a program renamed 'invoice.pdf' must be refused, so the
first bytes are read with the `filetype` package (magic numbers) and must agree with the name's
extension; text files must really be text (UTF-8 without NUL bytes, UTF-16 with its byte order
mark, or a Windows/Latin code page without control bytes). Files are then always served as downloads with `nosniff`, never rendered by the browser.
"""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from typing import Optional

import filetype
from werkzeug.datastructures import FileStorage

from .text import uploaded_file_name
from .tickets import TicketError

HEAD_BYTES = 8192
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Outlook .msg (compound file)

# extension -> MIME types that its content may be detected as
BINARY_KINDS: dict[str, frozenset[str]] = {
    ".png": frozenset({"image/png", "image/apng"}),
    ".jpg": frozenset({"image/jpeg"}),
    ".jpeg": frozenset({"image/jpeg"}),
    ".gif": frozenset({"image/gif"}),
    ".webp": frozenset({"image/webp"}),
    ".heic": frozenset({"image/heic"}),
    ".pdf": frozenset({"application/pdf"}),
    ".zip": frozenset({"application/zip"}),
    ".docx": frozenset({"application/vnd.openxmlformats-officedocument.wordprocessingml.document"}),
    ".xlsx": frozenset({"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}),
    ".pptx": frozenset({"application/vnd.openxmlformats-officedocument.presentationml.presentation"}),
    ".odt": frozenset({"application/vnd.oasis.opendocument.text"}),
    ".ods": frozenset({"application/vnd.oasis.opendocument.spreadsheet"}),
}
TEXT_EXTENSIONS = frozenset({".txt", ".log", ".csv", ".json", ".xml", ".eml"})
ALLOWED_WORDS = "a picture (PNG, JPEG, GIF, WebP, HEIC), a PDF, a text or log file, an office document, an Outlook message or a zip file"


@dataclass(frozen=True)
class InspectedFile:
    extension: str
    content_type: str


def _head(file_storage: FileStorage) -> bytes:
    stream = file_storage.stream
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    return head


UTF16_BOMS = {codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be"}


def _is_text(head: bytes) -> bool:
    """UTF-8 without NUL, UTF-16 that says so with its byte order mark, or a Windows/Latin code page.

    Why UTF-16: Windows writes it for "Unicode" text, Event Viewer's exports and Windows
    PowerShell's `>`, so a client's event log was refused as "not plain text"; its zero bytes
    are half of each character, not NULs, and a NUL character is still refused.
    """
    encoding = UTF16_BOMS.get(head[:2])
    if encoding is not None:
        body = head[2:]
        text = body[: len(body) // 2 * 2].decode(encoding, errors="replace")
        # A pair cut at the end of the sample is still text: only the last character may be broken.
        return "\x00" not in text and "\ufffd" not in text[:-1]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the end of the sample is still text.
        if error.start >= len(head) - 3:
            return True
        return _is_single_byte_text(head)
    return True


# Control bytes a text file may hold: tab, line breaks, form feed, ESC (colours in logs), DOS's end-of-file mark.
TEXT_CONTROLS = frozenset(b"\t\n\r\f\x1a\x1b")


def _is_single_byte_text(head: bytes) -> bool:
    """Text in a Windows or Latin code page: every byte printable or a line-break kind of control.

    Why: Excel's "CSV (Comma delimited)" and many older programs' logs are written in the
    Windows code page, not UTF-8, so a client list with "Müller" or "São Paulo" in it was
    refused as "not plain text". A program's bytes are full of other control bytes.
    """
    return not any(byte < 0x20 and byte not in TEXT_CONTROLS or byte == 0x7F for byte in head)


def inspect(file_storage: Optional[FileStorage]) -> InspectedFile:
    """The file's real type, or TicketError('file') saying what is accepted; nothing is stored here."""
    if file_storage is None or not file_storage.filename:
        raise TicketError("file", "Choose a file to attach.")
    extension = os.path.splitext(uploaded_file_name(file_storage.filename))[1].lower()
    head = _head(file_storage)
    if not head:
        raise TicketError("file", "That file is empty.")
    if extension in BINARY_KINDS:
        kind = filetype.guess(head)
        if kind is None or kind.mime not in BINARY_KINDS[extension]:
            raise TicketError("file", f"The file's content is not a real {extension[1:].upper()} file. "
                                      f"Attach {ALLOWED_WORDS}.")
        return InspectedFile(extension, kind.mime)
    if extension == ".msg":
        if not head.startswith(OLE_MAGIC):
            raise TicketError("file", "The file's content is not an Outlook message.")
        return InspectedFile(extension, "application/vnd.ms-outlook")
    if extension in TEXT_EXTENSIONS:
        if filetype.guess(head) is not None or not _is_text(head):
            raise TicketError("file", f"The file's content is not plain text. Attach {ALLOWED_WORDS}.")
        return InspectedFile(extension, "text/plain")
    raise TicketError("file", f"That kind of file is not accepted. Attach {ALLOWED_WORDS}.")
