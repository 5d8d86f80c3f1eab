"""Text that can be stored: the rule every form and the JSON API apply to what people type."""
from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Any, Optional

NUL_MESSAGE = "Remove the invisible NUL character: it cannot be stored."


def has_nul(value: Any) -> bool:
    """PostgreSQL text cannot hold NUL while SQLite can; both databases refuse it the same way."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(item, str) and "\x00" in item for item in values)


SURROGATE_MESSAGE = "Remove the invalid character (half of a UTF-16 pair, such as \\ud800): it cannot be stored."
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(value: Any) -> bool:
    """JSON may escape half of a UTF-16 pair ("\\ud800"); Python keeps it, but no UTF-8 database can
    store it (UnicodeEncodeError on save, a 500)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(item, str) and _SURROGATE.search(item) is not None for item in values)


def unstorable(value: Any) -> Optional[str]:
    """Why text cannot be stored (a NUL, a lone surrogate), in words for the person who sent it, or None."""
    if has_nul(value):
        return NUL_MESSAGE
    if has_lone_surrogate(value):
        return SURROGATE_MESSAGE
    return None


# Ids are Integer columns: PostgreSQL's integer stops at 2**31 - 1 (its driver raises past it, as
# SQLite's does past 2**63 - 1), so no row on any database the portal runs on has a larger id.
DATABASE_ID_MAX = 2**31 - 1
_ID_DIGITS = len(str(DATABASE_ID_MAX))


def whole_number(value: Any) -> Optional[int]:
    """A database id or version written in ASCII digits, or None.

    `str.isdigit` alone lets through "²" (int() then raises) and thousands of digits (int() raises
    past Python's limit): both answered 500 where a form or Stripe metadata named an id, as did an
    id past DATABASE_ID_MAX on PostgreSQL.
    """
    text = str(value).strip() if value is not None else ""
    if not text or len(text) > _ID_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= DATABASE_ID_MAX else None


_AMOUNT_AS_WRITTEN = re.compile(r"-?\$?\s*(\d{1,3}(,\d{3})+|\d+)(\.\d*)?|-?\$?\s*\.\d+")


def amount_as_written(value: Any) -> Optional[Decimal]:
    """An amount written as people write one (1250, 1,250.50, $1250, -1), or None.

    Decimal alone also reads "sNaN", which no range check can compare, and "1e3", which would
    save an amount nobody typed as such.
    """
    text = str(value).strip() if value is not None else ""
    if not _AMOUNT_AS_WRITTEN.fullmatch(text):
        return None
    return Decimal(re.sub(r"[$,\s]", "", text))


FILE_NAME_MAX = 255
_FILE_NAME_UNSAFE = re.compile(r'[<>:"|?*]')
_EXTENSION_MAX = 10


def uploaded_file_name(raw: Optional[str]) -> str:
    """The name a person gave their file, safe to store, show and offer as a download name.

    werkzeug's secure_filename keeps ASCII only, so "Снимок экрана.png" became "png" (no
    extension: refused as the wrong kind) and "スクリーンショット 2026-12-03.png" lost its
    words. Here the name keeps its script and loses only what is unsafe anywhere: folders,
    control and invisible formatting characters (a right-to-left override can disguise the
    extension), and characters Windows refuses in names.
    """
    text = unicodedata.normalize("NFC", raw or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(" " if c in "\t\n\r" or unicodedata.category(c) in ("Zl", "Zp")
                   else "" if unicodedata.category(c).startswith("C") else c for c in text)
    text = _FILE_NAME_UNSAFE.sub("_", " ".join(text.split()))
    stem, dot, kind = text.rpartition(".")
    kind = kind.strip()
    if not dot or not kind or len(kind) > _EXTENSION_MAX:
        stem, kind = text, ""
    extension = "." + kind if kind else ""
    stem = stem.strip(" .")[: FILE_NAME_MAX - len(extension)].rstrip(" .")
    return (stem or "attachment") + extension
