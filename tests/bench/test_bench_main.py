"""What `python -m bench` reports and when it fails (no suite is run here)."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import types

import pytest

import bench.__main__ as bench_main
from bench.results import Result


def test_a_lost_event_fails_the_run_even_when_no_timing_is_judged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    rows = [
        Result("freshness: median", "1 edit", 0.2, "s", baseline=0.2, goal="<= 900 s", met=True),
        Result("freshness: events lost", "1 edit", 1, "events", goal="0", met=False, required=True),
    ]
    suite = types.ModuleType("bench.fake_suite")
    suite.run = lambda quick: rows  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.fake_suite", suite)
    monkeypatch.setattr(bench_main, "SUITES", ["fake_suite"])
    monkeypatch.setattr(bench_main, "RESULTS_FILE", tmp_path / "results.json")
    monkeypatch.setattr(bench_main, "MARKDOWN_FILE", tmp_path / "results.md")
    assert bench_main.main(["--quick"]) == 1
    written = json.loads((tmp_path / "results.json").read_text())
    assert [row["name"] for row in written] == [row.name for row in rows]
    keys = {field.name for field in dataclasses.fields(Result)} | {"ratio"}
    assert all(set(row) == keys for row in written)
    assert written[0]["ratio"] == 1.0
    table = (tmp_path / "results.md").read_text().splitlines()
    assert table[0].endswith("(quick)")
    assert "| freshness: events lost | 1 edit | 1 events | goal 0 | - | **no** |" in table
    assert "| freshness: median | 1 edit | 0.2 s | 0.2 s · goal <= 900 s | 1 | yes |" in table


def test_only_unmet_required_rows_fail() -> None:
    lost = Result("full sync: profiles lost", "1,000 users", 0, "profiles", goal="0", required=True)
    assert bench_main.unmet_required([dataclasses.replace(lost, met=True)]) == []
    assert bench_main.unmet_required([dataclasses.replace(lost, met=False)]) == [
        "full sync: profiles lost: 0 profiles, goal 0"
    ]
    # Not judged at all is not a pass.
    assert len(bench_main.unmet_required([lost])) == 1
    slow = Result("search p99", "2,000 profiles", 30.0, "ms", goal="< 20 ms", met=False)
    assert bench_main.unmet_required([slow]) == []
