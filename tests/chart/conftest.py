"""The chart tests render charts/profile-sync offline (helm-python-sdk); see chart_harness.py."""

from __future__ import annotations

import pytest
from chart_harness import prepare_chart_files


@pytest.fixture(scope="session", autouse=True)
def _chart_files() -> None:
    # The gateway's descriptor set and routes are copied into the chart before any render,
    # as `make chart-test` does, so a stale copy can never be what is tested.
    prepare_chart_files()
