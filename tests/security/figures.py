"""The run's security figures: routes x roles checked, inputs tried, faults injected."""
from __future__ import annotations

from collections import Counter

COUNTS: Counter = Counter()


def record(name: str, amount: int = 1) -> None:
    """Add to one of the run's security figures (printed at the end of the run)."""
    COUNTS[name] += amount
