"""Security tests record what they checked (routes x roles, inputs tried, faults injected).

The figures are printed at the end of the run and kept in pytest's cache under
"security/counts" (read them with `pytest --cache-show 'security/*'`).
"""
from __future__ import annotations

import pytest

from tests.security.figures import COUNTS


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not COUNTS:
        return
    terminalreporter.section("security figures")
    for name in sorted(COUNTS):
        terminalreporter.write_line(f"{name}: {COUNTS[name]}")
    if getattr(config, "cache", None) is not None:
        config.cache.set("security/counts", dict(sorted(COUNTS.items())))
