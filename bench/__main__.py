"""Runs every benchmark suite, prints a table and writes bench/results.json
(and the same table in Markdown as bench/results.md).

    python -m bench [--quick] [--only NAME ...]

Each suite is a module in this package with `run(quick: bool) -> list[Result]`.
`--quick` (CI) runs small workloads to prove the suite works, not to time it.
The exit status is 1 when a suite fails or a required figure (nothing lost)
is not met; timings never decide it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pathlib
import platform
import sys
import time

from bench.results import Result

# Suite modules, in the order they run.
SUITES: list[str] = [
    "lob_load",
    "full_sync",
    "differ_compare",
    "search_latency",
    "graph_emulator_capacity",
    "notifier_throughput",
    "notifier_streams",
    "freshness",
    "rest_update",
    "lob_reads",
]

RESULTS_FILE = pathlib.Path(__file__).resolve().parent / "results.json"
# The same rows as a Markdown table, ready for the README's benchmark section.
MARKDOWN_FILE = RESULTS_FILE.with_suffix(".md")


def _format(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def print_table(results: list[Result]) -> None:
    header = ("name", "workload", "value", "unit", "baseline", "ratio", "goal", "met")
    rows = [
        (
            r.name,
            r.workload,
            _format(r.value),
            r.unit,
            _format(r.baseline),
            _format(r.ratio),
            r.goal or "-",
            {True: "yes", False: "NO", None: "-"}[r.met],
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


def markdown_table(results: list[Result], heading: str) -> str:
    lines = [
        heading,
        "",
        "| figure | workload | value | baseline or limit | ratio | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        limit = " · ".join(
            part
            for part in (
                f"{_format(r.baseline)} {r.unit}" if r.baseline is not None else "",
                f"goal {r.goal}" if r.goal else "",
            )
            if part
        )
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        lines.append(
            f"| {r.name} | {r.workload} | {_format(r.value)} {r.unit} | {limit or '-'} "
            f"| {_format(r.ratio)} | {met} |"
        )
    return "\n".join(lines) + "\n"


def unmet_required(results: list[Result]) -> list[str]:
    """Correctness figures (nothing lost) that were not met: each fails the run."""
    return [
        f"{r.name}: {_format(r.value)} {r.unit}, goal {r.goal}"
        for r in results
        if r.required and r.met is not True
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small workloads (CI)")
    parser.add_argument("--only", nargs="*", default=None, help="suite names to run")
    args = parser.parse_args(argv)
    results: list[Result] = []
    failures: list[str] = []
    for name in SUITES:
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        print(f"== {name} ...", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            results.extend(module.run(args.quick))
        except Exception as error:  # a broken suite is reported, the others still run
            failures.append(f"{name}: {type(error).__name__}: {error}")
            print(f"   failed: {error}", flush=True)
        print(f"   {time.perf_counter() - started:.1f}s", flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    date = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    heading = f"{date} on {machine}{' (quick)' if args.quick else ''}"
    print(f"\n{heading}\n")
    print_table(results)
    RESULTS_FILE.write_text(json.dumps([r.as_json() for r in results], indent=2) + "\n")
    MARKDOWN_FILE.write_text(markdown_table(results, heading))
    print(f"\nwritten {RESULTS_FILE} and {MARKDOWN_FILE.name}")
    failures += unmet_required(results)
    if failures:
        print("\n".join(["failed:", *failures]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
