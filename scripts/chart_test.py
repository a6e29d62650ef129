"""Prepares, checks and packages the Helm chart in charts/profile-sync.

    python scripts/chart_test.py            # prepare, then run the chart tests (make chart-test)
    python scripts/chart_test.py prepare    # only copy the gateway's files into the chart
    python scripts/chart_test.py package [--destination DIR]   # prepare, then helm package
    python scripts/chart_test.py readme     # rewrite the parameter table of the chart's README

The chart cannot read files outside its own directory, so `prepare` copies the descriptor set
`make protos` built (build/profilesync.pb) into charts/profile-sync/files/ and writes beside
it the REST routes of that set (files/rest-routes.json: for each backend service, the methods
with a `google.api.http` rule, as services/gateway/descriptors.py finds them). It also copies
what the embedded default's gateway answers itself or runs besides the gRPC routes: those
routes (files/gateway-routes.json: /healthz, /openapi.json, the console), the files they serve
(files/static/) and the request guard's Lua source (files/request-guard.lua). These files are
generated, not committed: package the chart only through `package`, or after `prepare`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "profile-sync"
DESCRIPTOR_SET = ROOT / "build" / "profilesync.pb"
CHART_DESCRIPTOR_SET = CHART / "files" / "profilesync.pb"
CHART_FILES = CHART / "files"
CHART_ROUTES = CHART_FILES / "rest-routes.json"
# Present when the embedded default's gateway has them (see gateway_files).
OPTIONAL_GATEWAY_FILES = ("request-guard.lua", "openapi.json")
# Where the gateway pod mounts the files it serves (its ConfigMap).
GATEWAY_FILES_MOUNT = "/etc/envoy"
CHART_README = CHART / "README.md"
TABLE_START = "<!-- parameters: written by `python scripts/chart_test.py readme` -->"
TABLE_END = "<!-- end of parameters -->"


def rest_routes(descriptor_set: pathlib.Path) -> dict[str, list[dict[str, object]]]:
    """Service -> its REST-mapped methods: gRPC path and whether the server streams."""
    sys.path.insert(0, str(ROOT))
    from services.gateway.descriptors import rest_methods
    from services.gateway.settings import BACKEND_SERVICES

    routes: dict[str, list[dict[str, object]]] = {name: [] for name in BACKEND_SERVICES}
    for method in rest_methods(descriptor_set, BACKEND_SERVICES):
        routes[method.service].append(
            {"path": method.grpc_path, "serverStreaming": method.server_streaming}
        )
    return routes


def embedded_gateway_config() -> dict[str, Any]:
    """The Envoy configuration `python -m services.gateway` renders with its defaults."""
    sys.path.insert(0, str(ROOT))
    from services.common.settings import EnvReader
    from services.gateway.envoy_config import render_config
    from services.gateway.settings import BACKEND_SERVICES, GatewaySettings

    environ = {name: "backend:1" for name in BACKEND_SERVICES.values()}
    environ["GATEWAY_DESCRIPTOR_SET"] = str(DESCRIPTOR_SET)
    # Default paths in the settings are relative to the repository.
    with contextlib.chdir(ROOT):
        config: dict[str, Any] = render_config(GatewaySettings.from_env(EnvReader(environ)))
    return config


def gateway_files(config: dict[str, Any]) -> dict[str, bytes]:
    """Chart file -> content: what the gateway serves or runs besides the gRPC routes.

    Taken from the embedded default's configuration, so the chart's gateway answers the same
    paths itself (health, the OpenAPI document, the console) from the same files, and runs the
    same request guard (a Lua filter), or none when the embedded default has none.
    """
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    files: dict[str, bytes] = {}
    for http_filter in manager["typed_config"]["http_filters"]:
        if http_filter["name"] == "envoy.filters.http.lua":
            source = http_filter["typed_config"]["default_source_code"]["inline_string"]
            files["request-guard.lua"] = source.encode()
    served: dict[str, pathlib.Path] = {}
    local_routes = []
    for route in manager["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]:
        answered_here = "direct_response" in route or "redirect" in route
        if not answered_here or route["match"] == {"prefix": "/"}:
            continue  # a backend's route, or the final catch-all the chart writes itself
        route = json.loads(json.dumps(route))
        body = route.get("direct_response", {}).get("body", {})
        if "filename" in body:
            source_path = pathlib.Path(body["filename"])
            # A ConfigMap key: the file's name, which must tell the files apart.
            key = source_path.name
            if served.setdefault(key, source_path) != source_path:
                raise SystemExit(f"two files the gateway serves are named {key}: rename one")
            body["filename"] = f"{GATEWAY_FILES_MOUNT}/{key}"
            files[f"static/{key}"] = source_path.read_bytes()
        local_routes.append(route)
    files["gateway-routes.json"] = (json.dumps(local_routes, indent=2) + "\n").encode()
    return files


def write_if_changed(path: pathlib.Path, content: bytes) -> None:
    # Rewritten only when it changes, and atomically: test runs in parallel read these files.
    if path.is_file() and path.read_bytes() == content:
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(content)
    temporary.replace(path)


def prepare() -> None:
    """Copies the descriptor set and writes its routes into the chart (idempotent)."""
    if not DESCRIPTOR_SET.is_file():
        raise SystemExit(f"{DESCRIPTOR_SET.relative_to(ROOT)} is missing: run `make protos` first")
    CHART_DESCRIPTOR_SET.parent.mkdir(exist_ok=True)
    write_if_changed(CHART_DESCRIPTOR_SET, DESCRIPTOR_SET.read_bytes())
    routes = json.dumps(rest_routes(DESCRIPTOR_SET), indent=2) + "\n"
    write_if_changed(CHART_ROUTES, routes.encode())
    extras = gateway_files(embedded_gateway_config())
    (CHART_FILES / "static").mkdir(exist_ok=True)
    stale = {p.relative_to(CHART_FILES).as_posix() for p in (CHART_FILES / "static").iterdir()}
    stale |= {name for name in OPTIONAL_GATEWAY_FILES if (CHART_FILES / name).exists()}
    for name, content in extras.items():
        write_if_changed(CHART_FILES / name, content)
        stale.discard(name)
    for name in stale:
        (CHART_FILES / name).unlink()


def package(destination: pathlib.Path) -> pathlib.Path:
    import helm_python as helm

    prepare()
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
    parser.add_argument("command", nargs="?", choices=["test", "prepare", "package", "readme"])
    parser.add_argument("--destination", type=pathlib.Path, default=ROOT / "build" / "chart")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare()
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
