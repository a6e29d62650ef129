"""Prepares, checks and packages the Helm chart in charts/profile-sync.

    python scripts/chart_test.py            # prepare, then run the chart tests (make chart-test)
    python scripts/chart_test.py prepare    # only copy the gateway's files into the chart
    python scripts/chart_test.py envoy      # rewrite the gateway's configuration (make chart-envoy)
    python scripts/chart_test.py package [--destination DIR]   # prepare, then helm package
    python scripts/chart_test.py readme     # rewrite the parameter table of the chart's README

The gateway's Envoy configuration (files/envoy.yaml) is written from
services/gateway/envoy_config.py by `envoy` (see chart_envoy.py) and committed: the chart
tests fail while it is not what `envoy` would write. The chart cannot read files outside its
own directory, so `prepare` copies beside it the descriptor set `make protos` built
(build/profilesync.pb) and the files the gateway serves itself (files/static/: the OpenAPI
document, the console's pages). These copies are not committed: package the chart only
through `package`, or after `prepare`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

# chart_envoy is beside this script, also when the chart tests load it as a module.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import chart_envoy

ROOT = chart_envoy.ROOT
CHART = chart_envoy.CHART
DESCRIPTOR_SET = chart_envoy.DESCRIPTOR_SET
CHART_FILES = CHART / "files"
CHART_DESCRIPTOR_SET = CHART_FILES / "profilesync.pb"
CHART_README = CHART / "README.md"
TABLE_START = "<!-- parameters: written by `python scripts/chart_test.py readme` -->"
TABLE_END = "<!-- end of parameters -->"


def write_if_changed(path: pathlib.Path, content: bytes) -> None:
    # Rewritten only when it changes, and atomically: test runs in parallel read these files.
    if path.is_file() and path.read_bytes() == content:
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(content)
    temporary.replace(path)


def prepare() -> None:
    """Copies the descriptor set and the files the gateway serves into the chart (idempotent)."""
    if not DESCRIPTOR_SET.is_file():
        raise SystemExit(f"{DESCRIPTOR_SET.relative_to(ROOT)} is missing: run `make protos` first")
    CHART_DESCRIPTOR_SET.parent.mkdir(exist_ok=True)
    write_if_changed(CHART_DESCRIPTOR_SET, DESCRIPTOR_SET.read_bytes())
    static = CHART_FILES / "static"
    static.mkdir(exist_ok=True)
    served = chart_envoy.embedded_served_files()
    for name, path in served.items():
        write_if_changed(static / name, path.read_bytes())
    for stale in static.iterdir():
        if stale.name not in served:
            stale.unlink()


def stale_envoy_config() -> str | None:
    """Why the committed files/envoy.yaml is not what `envoy` writes now; None when it is."""
    expected = chart_envoy.envoy_template()
    path = chart_envoy.GENERATED
    written = path.read_text() if path.is_file() else None
    if written == expected:
        return None
    state = "is missing" if written is None else "is not what services/gateway renders"
    return f"{path.relative_to(ROOT)} {state}: run {chart_envoy.REGENERATE} and commit it"


def package(destination: pathlib.Path) -> pathlib.Path:
    import helm_python as helm

    prepare()
    if (problem := stale_envoy_config()) is not None:
        raise SystemExit(problem)
    destination.mkdir(parents=True, exist_ok=True)
    return pathlib.Path(helm.package(CHART, destination=destination))


def parameter_table() -> str:
    """The `## @section` / `## @param` comments of values.yaml as Markdown tables."""
    import yaml

    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("## @section "):
            lines += ["", f"### {stripped.removeprefix('## @section ')}", ""]
            lines += ["| name | description | default |", "|---|---|---|"]
        elif stripped.startswith("## @param "):
            path, _, description = stripped.removeprefix("## @param ").partition(" ")
            default: object = values
            for part in path.split("."):
                default = default[part]  # type: ignore[index]
            shown = json.dumps(default, separators=(", ", ": ")).replace("|", "\\|")
            lines.append(f"| `{path}` | {description} | `{shown}` |")
    return "\n".join(lines).strip() + "\n"


def with_parameter_table(readme: str) -> str:
    """`readme` with the text between the table markers replaced by the current table."""
    before, start, rest = readme.partition(TABLE_START)
    _, end, after = rest.partition(TABLE_END)
    if not start or not end:
        raise SystemExit(f"{CHART_README}: the parameter table markers are missing")
    return f"{before}{TABLE_START}\n\n{parameter_table()}\n{TABLE_END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/chart_test.py", description=__doc__)
    parser.add_argument(
        "command", nargs="?", choices=["test", "prepare", "envoy", "package", "readme"]
    )
    parser.add_argument("--destination", type=pathlib.Path, default=ROOT / "build" / "chart")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare()
        return 0
    if args.command == "envoy":
        write_if_changed(chart_envoy.GENERATED, chart_envoy.envoy_template().encode())
        return 0
    if args.command == "readme":
        CHART_README.write_text(with_parameter_table(CHART_README.read_text()))
        return 0
    if args.command == "package":
        print(package(args.destination))
        return 0
    prepare()
    return subprocess.call([sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "chart")])


if __name__ == "__main__":
    sys.exit(main())
