"""Text that can be stored: the rule every form and the JSON API apply to what people type."""
from __future__ import annotations

from typing import Any

NUL_MESSAGE = "Remove the invisible NUL character: it cannot be stored."


def has_nul(value: Any) -> bool:
    """PostgreSQL text cannot hold NUL while SQLite can; both databases refuse it the same way."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(item, str) and "\x00" in item for item in values)
