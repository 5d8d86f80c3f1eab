"""The one place the portal reads the clock; services and the domain receive `now`."""
from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)
