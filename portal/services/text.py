"""Text that can be stored: the rule every form and the JSON API apply to what people type."""
from __future__ import annotations

from typing import Any, Optional

NUL_MESSAGE = "Remove the invisible NUL character: it cannot be stored."


def has_nul(value: Any) -> bool:
    """PostgreSQL text cannot hold NUL while SQLite can; both databases refuse it the same way."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(item, str) and "\x00" in item for item in values)


_ID_DIGITS = 18  # a database id or version: fits a 64-bit integer, far below Python's digit limit


def whole_number(value: Any) -> Optional[int]:
    """A non-negative whole number written in ASCII digits, or None.

    `str.isdigit` alone lets through "²" (int() then raises) and thousands of digits (int() raises
    past Python's limit): both answered 500 where a form or Stripe metadata named an id.
    """
    text = str(value).strip() if value is not None else ""
    if not text or len(text) > _ID_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
