"""Fixtures for the search tests."""

from __future__ import annotations

from typing import Any

import pytest
from search_fixtures import tenant_profiles


@pytest.fixture(scope="session")
def tenant() -> list[dict[str, Any]]:
    """A generated tenant plus edge-case profiles."""
    return tenant_profiles()
