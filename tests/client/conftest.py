"""Fixtures shared by the client ticket tests."""
from __future__ import annotations

import pytest

from tests.client.helpers import TUESDAY_10_NY, set_clock, two_organisations, with_technician
from tests.conftest import login


@pytest.fixture
def acme(client, monkeypatch):
    """Tuesday 10:00 in New York: Acme's admin logged in, a second organisation and a technician on shift."""
    set_clock(monkeypatch, TUESDAY_10_NY)
    orgs = two_organisations()
    with_technician()
    login(client, orgs[1].email)
    return orgs
