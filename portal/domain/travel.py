"""Travel time from where a technician is to the client's site, with its spread.

Great-circle distance times a detour factor (roads are not straight) divided by an average
speed, plus a fixed overhead (parking, signing in at reception). Traffic makes the drive
uncertain, so the estimate is a median and a 90% bound: p90 = median x `p90_factor`. When
either end is unknown the estimate falls back to `unknown_minutes`. A technician already at
the site (the next job is at the same client) travels for nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from portal.domain.effort import EffortEstimate

EARTH_RADIUS_KM = 6371.0088
SAME_SITE_KM = 0.05


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        if not (isinstance(self.latitude, (int, float)) and -90.0 <= self.latitude <= 90.0):
            raise ValueError("latitude must be between -90 and 90")
        if not (isinstance(self.longitude, (int, float)) and -180.0 <= self.longitude <= 180.0):
            raise ValueError("longitude must be between -180 and 180")


def distance_km(a: Location, b: Location) -> float:
    """Great-circle (haversine) distance in kilometres."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class TravelModel:
    """Settings of the travel estimate; defaults suit a metropolitan area."""

    speed_kmh: float = 35
    overhead_minutes: float = 10
    detour_factor: float = 1.3
    p90_factor: float = 1.5
    unknown_minutes: float = 30

    def __post_init__(self) -> None:
        checks = {
            "speed_kmh": self.speed_kmh > 0,
            "overhead_minutes": self.overhead_minutes >= 0,
            "detour_factor": self.detour_factor >= 1,
            "p90_factor": self.p90_factor >= 1,
            "unknown_minutes": self.unknown_minutes >= 0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
                raise ValueError(f"{name} has an impossible value: {value!r}")

    def minutes(self, origin: Optional[Location], site: Optional[Location]) -> float:
        """Median minutes of the drive (the cheap path the dispatcher calls in its inner loop)."""
        if origin is None or site is None:
            return self.unknown_minutes
        km = distance_km(origin, site)
        if km < SAME_SITE_KM:
            return 0.0
        return self.overhead_minutes + km * self.detour_factor / self.speed_kmh * 60.0

    def estimate(self, origin: Optional[Location], site: Optional[Location]) -> EffortEstimate:
        """Median and p90 minutes to get from `origin` to `site`."""
        median = self.minutes(origin, site)
        return EffortEstimate(median, median * self.p90_factor)
