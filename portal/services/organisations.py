"""An organisation's own settings that its client admins change: for now its time zone.

The zone is the organisation's clock everywhere: its emails are written in it, the deadline its
people type on the ticket form is read in it, and its people's pages show times in it
(`templating.shown_zone_name`)."""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import available_timezones

from ..extensions import db
from ..models import Organisation, Role, User
from . import account_log
from .account_log import named
from .errors import Refusal

# The zones most of the firm's clients are in, offered first in the list.
COMMON_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)


class OrganisationError(Refusal):
    """A refused change to the organisation's settings; nothing was changed."""


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def known_zone(name: object) -> bool:
    """An IANA zone name the clock library can read ("America/Los_Angeles"), spelled exactly."""
    return isinstance(name, str) and name in _zones()


def zone_choices() -> list[str]:
    """The common US zones first, then every other known zone, sorted."""
    common = [zone for zone in COMMON_ZONES if known_zone(zone)]
    return common + sorted(_zones() - set(common))


def set_timezone(organisation_id: int, zone: str, actor: User, now: datetime) -> bool:
    """Set the organisation's time zone; False when it already was that zone (nothing written).

    Only a client admin of that organisation may; an unknown zone is refused."""
    if actor.role != Role.CLIENT_ADMIN or actor.organisation_id != organisation_id:
        raise OrganisationError("Only an admin of this organisation can change its time zone.")
    zone = (zone or "").strip()
    if not known_zone(zone):
        raise OrganisationError("Choose a time zone from the list (for example America/Los_Angeles).", "timezone")
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None:
        raise OrganisationError("No such organisation.")
    if organisation.timezone == zone:
        return False
    before = organisation.timezone
    organisation.timezone = zone
    account_log.record(organisation_id, "timezone_changed",
                       f"{named(actor)} changed the organisation's time zone from {before} to {zone}.",
                       now, actor=actor)
    db.session.commit()
    from . import queue

    queue.recompute(now)  # the saved "why this place" names the client's deadlines in its zone
    return True
