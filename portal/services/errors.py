"""The one shape of a refusal that services raise and views show."""
from __future__ import annotations

from typing import Optional


class Refusal(Exception):
    """A request refused in words fit for the person who made it; nothing was changed.

    `field` names the input at fault, so a view can put the message under it (None: the whole request).
    """

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
