"""Fixtures shared by the client ticket tests."""
from __future__ import annotations

import pytest

from tests.client.helpers import acme_admin_logged_in


@pytest.fixture
def acme(client, monkeypatch):
    return acme_admin_logged_in(client, monkeypatch)
