"""Writes the Helm chart's Envoy configuration from the embedded gateway's.

    python scripts/chart_test.py envoy     # make chart-envoy: rewrite files/envoy.yaml

services/gateway/envoy_config.py is the one source of the gateway's Envoy configuration. The
chart's (charts/profile-sync/files/envoy.yaml, committed, so `helm template` needs no Python)
is what it renders for the chart's settings, written as a template the chart renders with `tpl`:

- a setting a chart value sets (a port, a limit, a backend's address) is rendered with a marker
  value, which the text then swaps for the Helm expression of that value (`_chart_settings`);
- a part a chart value turns off (the request guard, the console, the differ's routes, the
  metrics listener) is what the configuration loses when that setting is off: it is wrapped
  in `{{- if <value> }}` (TOGGLES);
- the descriptor set and the files the gateway serves are at the paths the gateway pod mounts
  them from its ConfigMap (MOUNT);
- a Lua filter's source is read from its file by the chart (`.Files.Get`): the chart's
  files/<name>.lua is a link to the .lua file the gateway loads (LUA_FILES), so the source is
  written once.

The chart tests fail when the committed file is not what this module writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import pathlib
import re
import sys
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "profile-sync"
GENERATED = CHART / "files" / "envoy.yaml"
DESCRIPTOR_SET = ROOT / "build" / "profilesync.pb"
# Where the gateway pod mounts its ConfigMap: the descriptor set and the files it serves.
MOUNT = "/etc/envoy"
REGENERATE = "python scripts/chart_test.py envoy (make chart-envoy)"

DIFFER = "profilesync.v1.SnapshotDiffer"
# Backend service -> its chart component and the value of its gRPC port.
BACKENDS = {
    "profilesync.v1.ProfileExtender": ("extender", ".Values.extender.port"),
    DIFFER: ("differ", ".Values.differ.server.port"),
    "profilesync.v1.LobNotifier": ("notifier", ".Values.notifier.port"),
}

# The Lua filters' sources: the chart's file (a link to the gateway's) -> the module that loads it.
LUA_FILES = {"request-guard.lua": ("services.gateway.request_guard", "LUA_SOURCE")}

# A limit that only allows (never requires): where turning a part off would lower it, the
# chart keeps the value for everything on.
UPPER_BOUNDS = {"max_direct_response_body_size_bytes"}

HEADER = (
    "{{- /* The gateway's Envoy configuration, written by "
    f"{REGENERATE}\nfrom services/gateway/envoy_config.py: edit that, not this file. "
    "Rendered with tpl by templates/_envoy.tpl. */ -}}\n"
)

Path = tuple[str | int, ...]


class GenerationError(RuntimeError):
    """The rendered configurations do not fit the template's model; names where."""


@dataclasses.dataclass(frozen=True)
class Toggle:
    """A chart value that turns a part of the configuration off."""

    condition: str
    off: Callable[[Any], Any]  # GatewaySettings -> the same with that part off


TOGGLES = (
    Toggle("$.Values.gateway.requestGuard", lambda s: dataclasses.replace(s, request_guard=False)),
    Toggle("$.Values.gateway.openapi", lambda s: dataclasses.replace(s, openapi_file=None)),
    Toggle("$.Values.gateway.console", lambda s: dataclasses.replace(s, console=None)),
    Toggle(
        "$.Values.differ.server.enabled",
        lambda s: dataclasses.replace(
            s, backends=tuple(b for b in s.backends if b.service != DIFFER)
        ),
    ),
    Toggle("$.Values.metrics.enabled", lambda s: dataclasses.replace(s, metrics_port=None)),
)


def embedded_settings() -> Any:
    """The settings `python -m services.gateway` starts with by default (GatewaySettings)."""
    sys.path.insert(0, str(ROOT))
    from services.common.settings import EnvReader
    from services.gateway.settings import BACKEND_SERVICES, GatewaySettings

    environ = {name: "backend:1" for name in BACKEND_SERVICES.values()}
    environ["GATEWAY_DESCRIPTOR_SET"] = str(DESCRIPTOR_SET)
    # Default paths in the settings are relative to the repository.
    with contextlib.chdir(ROOT):
        return GatewaySettings.from_env(EnvReader(environ))


def _chart_settings() -> tuple[Any, dict[str, str]]:
    """The embedded default's settings with every chart value a marker, and marker -> the
    Helm expression that replaces it."""
    from services.gateway.settings import Backend

    expressions: dict[str, str] = {}
    numbers = itertools.count(987_650_001)

    def number(value: str) -> int:
        marker = next(numbers)
        expressions[str(marker)] = f"int $.Values.{value}"
        return marker

    def host(component: str) -> str:
        marker = f"{component}-backend.marker.invalid"
        expressions[marker] = (
            f'include "profile-sync.gatewayBackendHost" (dict "root" $ "component" "{component}")'
        )
        return marker

    backends = tuple(
        Backend(service, host(component), number(port.removeprefix(".Values.")))
        for service, (component, port) in BACKENDS.items()
    )
    settings = dataclasses.replace(
        embedded_settings(),
        backends=backends,
        host="0.0.0.0",  # noqa: S104 - every interface of the pod
        port=number("gateway.port"),
        admin_host="127.0.0.1",  # the admin interface can change and stop Envoy
        admin_port=number("gateway.adminPort"),
        max_request_bytes=number("gateway.maxRequestBytes"),
        stream_idle_timeout_seconds=number("gateway.streamIdleTimeoutSeconds"),
        max_connections=number("gateway.maxConnections"),
        max_backend_requests=number("gateway.maxBackendRequests"),
        max_streams_per_connection=number("gateway.maxStreamsPerConnection"),
        metrics_port=number("metrics.port"),
    )
    return settings, expressions


def http_manager(config: dict[str, Any]) -> dict[str, Any]:
    """The REST listener's HTTP connection manager."""
    listener = config["static_resources"]["listeners"][0]
    manager: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return manager


def served_files(config: dict[str, Any]) -> dict[str, pathlib.Path]:
    """ConfigMap key (the file's name) -> file, for every file the gateway serves itself."""
    served: dict[str, pathlib.Path] = {}
    for route in http_manager(config)["route_config"]["virtual_hosts"][0]["routes"]:
        body = route.get("direct_response", {}).get("body", {})
        if "filename" in body:
            path = pathlib.Path(body["filename"])
            if served.setdefault(path.name, path) != path:
                raise GenerationError(f"two files the gateway serves are named {path.name}")
    return served


def _mounted(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with the descriptor set and the served files where the pod mounts them."""
    config = json.loads(json.dumps(config))  # a copy, tuples as lists
    for http_filter in http_manager(config)["http_filters"]:
        if http_filter["name"] == "envoy.filters.http.grpc_json_transcoder":
            http_filter["typed_config"]["proto_descriptor"] = f"{MOUNT}/profilesync.pb"
    for route in http_manager(config)["route_config"]["virtual_hosts"][0]["routes"]:
        body = route.get("direct_response", {}).get("body", {})
        if "filename" in body:
            body["filename"] = f"{MOUNT}/{pathlib.Path(body['filename']).name}"
    return config


def _lua_markers() -> dict[str, str]:
    """Lua source -> the marker that stands for it (the chart's file name)."""
    import importlib

    markers = {}
    for file, (module, name) in LUA_FILES.items():
        source = getattr(importlib.import_module(module), name)
        chart_file = CHART / "files" / file
        if not chart_file.is_file() or chart_file.read_text() != source:
            raise GenerationError(f"{chart_file.relative_to(ROOT)} must link to {module}'s source")
        markers[source] = f"lua-file:{file}"
    return markers


def _with_lua_files(node: Any, markers: dict[str, str]) -> None:
    """Replaces, in place, every inline Lua source with the marker of its file."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "inline_string" and "envoy_on_request" in str(value):
                if value not in markers:
                    raise GenerationError(
                        "a Lua source with no file in the chart: add it to LUA_FILES"
                    )
                node[key] = markers[value]
            else:
                _with_lua_files(value, markers)
    elif isinstance(node, list):
        for item in node:
            _with_lua_files(item, markers)


def _render(settings: Any) -> dict[str, Any]:
    from services.gateway.envoy_config import render_config

    with contextlib.chdir(ROOT):
        config = _mounted(render_config(settings))
    _with_lua_files(config, _lua_markers())
    return config


# -- what a toggle removes ------------------------------------------------------------------


def _aligned(base: list[Any], variant: list[Any]) -> list[tuple[int, int]]:
    """Index pairs of the longest common subsequence of equal items."""
    rows, cols = len(base), len(variant)
    longest = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            longest[i][j] = (
                longest[i + 1][j + 1] + 1
                if base[i] == variant[j]
                else max(longest[i + 1][j], longest[i][j + 1])
            )
    pairs, i, j = [], 0, 0
    while i < rows and j < cols:
        if base[i] == variant[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif longest[i + 1][j] >= longest[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _removed(base: Any, variant: Any, path: Path, found: list[Path]) -> None:
    """Adds to `found` the parts of `base` that `variant` lacks; any other difference (a
    value that changes, a part only the variant has) cannot be a toggle and is refused."""
    if isinstance(base, dict) and isinstance(variant, dict):
        if extra := sorted(set(variant) - set(base)):
            raise GenerationError(f"{_shown(path)}: only present when a part is off: {extra}")
        for key, value in base.items():
            if key not in variant:
                found.append((*path, key))
            else:
                _removed(value, variant[key], (*path, key), found)
    elif isinstance(base, list) and isinstance(variant, list):
        ends = [(-1, -1), *_aligned(base, variant), (len(base), len(variant))]
        for (i0, j0), (i1, j1) in itertools.pairwise(ends):
            gone, kept = range(i0 + 1, i1), range(j0 + 1, j1)
            if not kept:
                found.extend((*path, i) for i in gone)
            elif len(gone) == len(kept):
                for i, j in zip(gone, kept, strict=True):
                    _removed(base[i], variant[j], (*path, i), found)
            else:
                raise GenerationError(f"{_shown(path)}[{i0 + 1}:{i1}]: items change, not go")
    elif base != variant and path[-1] not in UPPER_BOUNDS:
        raise GenerationError(f"{_shown(path)}: {base!r} becomes {variant!r}")


def removed_parts(base: Any, variant: Any) -> list[Path]:
    """The paths of the parts of `base` that `variant` lacks (GenerationError on any other
    difference)."""
    found: list[Path] = []
    _removed(base, variant, (), found)
    return found


def _shown(path: Path) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def _conditions(settings: Any, base: dict[str, Any]) -> dict[Path, list[str]]:
    """Path of a part of `base` -> the chart values that must be on for it to be there."""
    conditions: dict[Path, list[str]] = {}
    for toggle in TOGGLES:
        try:
            found = removed_parts(base, _render(toggle.off(settings)))
        except GenerationError as error:
            raise GenerationError(f"turning {toggle.condition} off: {error}") from error
        for path in found:
            conditions.setdefault(path, []).append(toggle.condition)
    return conditions


# -- the YAML text --------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict | list) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    # JSON's string escapes are YAML's double-quoted ones.
    return json.dumps(value, ensure_ascii=False)


def _block(value: Any) -> bool:
    """A multi-line text (Lua source) written as a YAML literal block, as it reads."""
    return (
        isinstance(value, str)
        and "\n" in value.rstrip("\n")
        and value.endswith("\n")
        and not value.endswith("\n\n")
        and not value[0].isspace()
        and "\t" not in value
        and "\r" not in value
    )


def _wrapped(entries: list[tuple[tuple[str, ...], list[str]]], pad: str) -> list[str]:
    """The entries' lines, each run of entries under the same conditions in one `if`."""
    lines: list[str] = []
    for conditions, run in itertools.groupby(entries, key=lambda entry: entry[0]):
        inner = [line for _, entry in run for line in entry]
        if not conditions:
            lines += inner
            continue
        test = conditions[0] if len(conditions) == 1 else f"and {' '.join(conditions)}"
        lines += [f"{pad}{{{{- if {test} }}}}", *inner, f"{pad}{{{{- end }}}}"]
    return lines


def _lines(node: Any, path: Path, indent: int, conditions: dict[Path, list[str]]) -> list[str]:
    pad = " " * indent
    entries: list[tuple[tuple[str, ...], list[str]]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            name = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)
            if _block(value):
                entry = [f"{pad}{name}: |"]
                entry += [f"{pad}  {line}" if line else "" for line in value[:-1].split("\n")]
            elif isinstance(value, dict | list) and value:
                entry = [f"{pad}{name}:", *_lines(value, (*path, key), indent + 2, conditions)]
            else:
                entry = [f"{pad}{name}: {_scalar(value)}"]
            entries.append((tuple(conditions.get((*path, key), ())), entry))
        return _wrapped(entries, pad)
    for index, value in enumerate(node):
        if isinstance(value, dict | list) and value:
            inner = _lines(value, (*path, index), indent + 2, conditions)
            if inner[0].startswith(f"{pad}  ") and not inner[0].lstrip().startswith("{{"):
                entry = [f"{pad}- {inner[0][indent + 2 :]}", *inner[1:]]
            else:
                entry = [f"{pad}-", *inner]
        else:
            entry = [f"{pad}- {_scalar(value)}"]
        entries.append((tuple(conditions.get((*path, index), ())), entry))
    return _wrapped(entries, pad)


def _with_expressions(text: str, expressions: dict[str, str]) -> str:
    for marker, expression in expressions.items():
        pattern = rf"(?<!\d){re.escape(marker)}(?!\d)" if marker.isdigit() else re.escape(marker)
        text, count = re.subn(pattern, lambda _, e=expression: f"{{{{ {e} }}}}", text)
        if not count:
            raise GenerationError(f"the setting for {expression} reaches no part of the config")
    return text


def _check(text: str, expressions: dict[str, str], base: dict[str, Any]) -> None:
    """The text, with every part on and the markers back, must read as `base`."""
    import yaml

    body = text.removeprefix(HEADER)
    for marker, expression in expressions.items():
        body = body.replace(f"{{{{ {expression} }}}}", marker)
    kept = [
        line for line in body.splitlines() if not re.fullmatch(r"\s*\{\{- (if .*|end) }}", line)
    ]
    if yaml.safe_load("\n".join(kept)) != base:
        raise GenerationError("the written template does not read back as the configuration")


def envoy_template() -> str:
    """The text of files/envoy.yaml."""
    settings, expressions = _chart_settings()
    for file in LUA_FILES:
        # The file's text as a JSON string (a YAML double-quoted one), for the marker's.
        expressions[json.dumps(f"lua-file:{file}")] = f'$.Files.Get "files/{file}" | toJson'
    base = _render(settings)
    if "{{" in json.dumps(base, ensure_ascii=False):
        raise GenerationError("the configuration holds '{{', which Helm would read as a template")
    text = "\n".join(_lines(base, (), 0, _conditions(settings, base))) + "\n"
    text = HEADER + _with_expressions(text, expressions)
    _check(text, expressions, base)
    return text


def embedded_served_files() -> dict[str, pathlib.Path]:
    """The files the chart's gateway serves: the embedded default's, with every part on."""
    from services.gateway.envoy_config import render_config

    with contextlib.chdir(ROOT):
        return served_files(render_config(embedded_settings()))
