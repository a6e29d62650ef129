"""The gateway routes that serve the console under /console/.

    bootstrap = render_config(gateway_settings)          # Envoy's configuration
    add_console(bootstrap, ConsoleSettings())            # adds the console to it

Envoy answers every file itself (`direct_response` reading the file when it
loads its configuration), so the console needs no web server of its own and
works the same on the embedded default and in a cluster. On the embedded
default one more route, /console/dev-token, passes a token request on to the
Graph emulator, so the sign-in page can offer "get a token from the emulator"
without the browser talking to the emulator (another origin, another CA). It
takes only JSON from the console's own origin and Host: a page on another site,
or one reaching the gateway through a rebound DNS name, gets a 4xx naming why.
"""

from __future__ import annotations

import importlib.resources
import json
import pathlib
import re
from typing import Any

from services.console.settings import ConsoleSettings, EmulatorTokens

__all__ = [
    "CONFIG_PATH",
    "CONSOLE_PATH",
    "CONTENT_TYPES",
    "DEV_TOKEN_PATH",
    "EMULATOR_CLUSTER",
    "add_console",
    "console_authorities",
    "console_clusters",
    "console_files",
    "console_routes",
    "direct_response_limit",
]

CONSOLE_PATH = "/console/"
CONFIG_PATH = "/console/config.json"
DEV_TOKEN_PATH = "/console/dev-token"  # noqa: S105 - a route, not a secret
EMULATOR_CLUSTER = "console_emulator"
EMULATOR_TOKEN_PATH = "/_emulator/token"  # noqa: S105 - a route, not a secret

# What the browser needs to use each file; module scripts must be JavaScript.
CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}

# Envoy keeps every served file in memory: the console stays a handful of small files.
MAX_FILES = 64
MAX_FILE_BYTES = 1024 * 1024
# Envoy's default limit on a direct-response body; larger files need the route table to allow them.
ENVOY_DEFAULT_BODY_LIMIT = 4096

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

_TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
# The transcoder refuses a path no RPC claims; the console's routes turn it off.
_WITHOUT_TRANSCODER = {
    _TRANSCODER: {
        "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
        "disabled": True,
    }
}

# The pages load only their own scripts and styles and call only the gateway
# they came from; nothing may frame them (clickjacking of the approve button).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_COMMON_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # Envoy reads the files once at start; a new release must still reach browsers.
    "cache-control": "no-cache",
}


def _headers(content_type: str) -> list[dict[str, Any]]:
    return [
        {
            "header": {"key": key, "value": value},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
        }
        for key, value in {"content-type": content_type, **_COMMON_HEADERS}.items()
    ]


def _method(regex: str) -> dict[str, Any]:
    return {"name": ":method", "string_match": {"safe_regex": {"regex": regex}}}


def console_files(root: pathlib.Path) -> list[tuple[str, pathlib.Path]]:
    """(path under /console/, file) for every file in `root`, in a stable order.

    Raises ValueError naming a file the gateway cannot serve (unknown type,
    unsafe name, too large) or a folder with too many files.
    """
    files: list[tuple[str, pathlib.Path]] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_dir() or any(part.startswith(".") for part in relative.parts):
            continue
        if not all(_SAFE_NAME.fullmatch(part) for part in relative.parts):
            raise ValueError(f"console file {relative}: names may use only letters, digits, . _ -")
        if path.suffix not in CONTENT_TYPES:
            raise ValueError(f"console file {relative}: no content type for {path.suffix!r} files")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"console file {relative}: larger than {MAX_FILE_BYTES} bytes")
        files.append((relative.as_posix(), path))
    if len(files) > MAX_FILES:
        raise ValueError(f"console folder {root}: {len(files)} files, at most {MAX_FILES}")
    if not any(name == "index.html" for name, _ in files):
        raise ValueError(f"console folder {root}: no index.html")
    return files


def _file_route(url_path: str, path: pathlib.Path) -> dict[str, Any]:
    return {
        "match": {"path": url_path, "headers": [_method("GET|HEAD")]},
        "direct_response": {"status": 200, "body": {"filename": str(path)}},
        "response_headers_to_add": _headers(CONTENT_TYPES[path.suffix]),
        "typed_per_filter_config": _WITHOUT_TRANSCODER,
    }


def _client_config(settings: ConsoleSettings) -> dict[str, Any]:
    """What the pages learn from the gateway at load: only what differs per installation."""
    config: dict[str, Any] = {}
    if settings.emulator is not None:
        config["emulatorTokenUrl"] = DEV_TOKEN_PATH
    return config


# Names a browser on the developer's machine reaches the gateway by. A page served
# from any other name (a DNS-rebinding attacker's) is refused a token.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARD_HOSTS = {"0.0.0.0", "::", "[::]", ""}  # noqa: S104 - compared, not bound
_JSON_TYPE = r"(?i)application/json\s*(;.*)?"
_ORIGIN_CHECK = "envoy.filters.http.lua"
_ORIGIN_REFUSAL = (
    "the dev-token route answers only the console's own page: the Origin header "
    "must be this gateway's origin (scheme, name and port of the Host)"
)
# Route matching cannot compare two headers; same_origin.lua does, on the token
# route only. Its refusal is the one the routes give, defined ahead of the source
# (a JSON string is a valid Lua string literal for this ASCII text).
_SAME_ORIGIN_LUA = (
    f"local REFUSAL = {json.dumps(_ORIGIN_REFUSAL)}\n"
    + (importlib.resources.files("services.console") / "same_origin.lua").read_text()
)


def _exact_or_regex(name: str, pattern: str) -> dict[str, Any]:
    return {"name": name, "string_match": {"safe_regex": {"regex": pattern}}}


def console_authorities(host: str, port: int) -> list[str]:
    """Regexes of the Host values (`name:port`) the console's own page sends.

    `port` 0 (a free port chosen when Envoy starts) allows any port; the name must
    still be a loopback name or the address the gateway listens on.
    """
    names = list(LOOPBACK_NAMES)
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if bracketed not in _WILDCARD_HOSTS and bracketed not in names:
        names.append(bracketed)
    port_pattern = str(port) if port else "[0-9]{1,5}"
    return [f"{re.escape(name)}:{port_pattern}" for name in names]


def _refusal(status: int, message: str, headers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "match": {"path": DEV_TOKEN_PATH, "headers": [_method("POST"), *headers]},
        "direct_response": {"status": status, "body": {"inline_string": message}},
        "typed_per_filter_config": _WITHOUT_TRANSCODER,
    }


def _dev_token_routes(emulator: EmulatorTokens, host: str, port: int) -> list[dict[str, Any]]:
    """The token route, then a refusal naming the reason for every request it does not take.

    Only the console's own page may ask: the Host must be the gateway's own name
    (a DNS-rebinding page sends its own name), the Origin that same origin (another
    site's page cannot post here), and the body JSON (a cross-site form or a
    `text/plain` fetch without a preflight cannot send it).
    """
    authorities = console_authorities(host, port)
    any_authority = "|".join(f"(?:{authority})" for authority in authorities)
    forwards = [
        {
            # POST only, and only the token route: the rest of the emulator's admin
            # API (deleting users, changing quotas) is not reachable this way.
            "match": {
                "path": DEV_TOKEN_PATH,
                "headers": [
                    _method("POST"),
                    _exact_or_regex(":authority", authority),
                    # The page's origin is the scheme and the same name and port.
                    _exact_or_regex("origin", f"https?://{authority}"),
                    _exact_or_regex("content-type", _JSON_TYPE),
                ],
            },
            "route": {
                "cluster": EMULATOR_CLUSTER,
                "prefix_rewrite": EMULATOR_TOKEN_PATH,
                # The emulator names its token issuer after the Host it is called by;
                # it must be the authority the services trust.
                "host_rewrite_literal": emulator.authority,
                "timeout": "15s",
            },
            "request_headers_to_remove": ["authorization", "cookie", "origin"],
            "typed_per_filter_config": {
                **_WITHOUT_TRANSCODER,
                # On for this route only (it is off by default in the filter chain).
                _ORIGIN_CHECK: {
                    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                    "config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3."
                        "LuaPerRoute",
                        "name": "same-origin",
                    },
                },
            },
        }
        for authority in authorities
    ]
    names = ", ".join(LOOPBACK_NAMES)
    return [
        *forwards,
        _refusal(
            403,
            "the dev-token route answers only requests addressed to this gateway by its "
            f"own name ({names}); another Host header is refused (DNS rebinding)",
            [{**_exact_or_regex(":authority", any_authority), "invert_match": True}],
        ),
        _refusal(
            415,
            "the dev-token route accepts only Content-Type: application/json",
            [{**_exact_or_regex("content-type", _JSON_TYPE), "invert_match": True}],
        ),
        _refusal(403, _ORIGIN_REFUSAL, []),
    ]


def _origin_check_filter() -> dict[str, Any]:
    """The Lua filter the token route turns on; every other route skips it."""
    return {
        "name": _ORIGIN_CHECK,
        "disabled": True,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "source_codes": {"same-origin": {"inline_string": _SAME_ORIGIN_LUA}},
        },
    }


def console_routes(
    settings: ConsoleSettings, host: str = "127.0.0.1", port: int = 0
) -> list[dict[str, Any]]:
    """The routes of the console, to go before the transcoder's routes; `host` and
    `port` are where the gateway listens (0: a port chosen at start)."""
    routes: list[dict[str, Any]] = [
        {
            "match": {"path": CONSOLE_PATH.rstrip("/")},
            "redirect": {"path_redirect": CONSOLE_PATH},
            "typed_per_filter_config": _WITHOUT_TRANSCODER,
        },
    ]
    for name, path in console_files(settings.root):
        if name == "index.html":
            routes.append(_file_route(CONSOLE_PATH, path))
        routes.append(_file_route(CONSOLE_PATH + name, path))
    routes.append(
        {
            "match": {"path": CONFIG_PATH, "headers": [_method("GET|HEAD")]},
            "direct_response": {
                "status": 200,
                "body": {"inline_string": json.dumps(_client_config(settings))},
            },
            "response_headers_to_add": _headers(CONTENT_TYPES[".json"]),
            "typed_per_filter_config": _WITHOUT_TRANSCODER,
        }
    )
    if settings.emulator is not None:
        routes.extend(_dev_token_routes(settings.emulator, host, port))
    routes.append(
        {
            # Anything else under /console/ is a clear 404, not the transcoder's refusal.
            "match": {"prefix": CONSOLE_PATH},
            "direct_response": {
                "status": 404,
                "body": {"inline_string": "no such console page or file"},
            },
            "typed_per_filter_config": _WITHOUT_TRANSCODER,
        }
    )
    return routes


def console_clusters(settings: ConsoleSettings) -> list[dict[str, Any]]:
    """The emulator's cluster when the sign-in may get tokens from it; none otherwise."""
    emulator = settings.emulator
    if emulator is None:
        return []
    cluster: dict[str, Any] = {
        "name": EMULATOR_CLUSTER,
        "type": "STATIC" if emulator.is_ip else "STRICT_DNS",
        "connect_timeout": "5s",
        "dns_lookup_family": "V4_PREFERRED",
        "load_assignment": {
            "cluster_name": EMULATOR_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": emulator.host,
                                        "port_value": emulator.port,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if emulator.tls and emulator.ca_file is not None:
        tls_context: dict[str, Any] = {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
            "UpstreamTlsContext",
            "common_tls_context": {
                "validation_context": {
                    "trusted_ca": {"filename": str(emulator.ca_file)},
                    # Envoy checks only the chain unless told which name to expect.
                    "match_typed_subject_alt_names": [
                        {
                            "san_type": "IP_ADDRESS" if emulator.is_ip else "DNS",
                            "matcher": {"exact": emulator.host},
                        }
                    ],
                }
            },
        }
        if not emulator.is_ip:
            tls_context["sni"] = emulator.host
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": tls_context,
        }
    return [cluster]


def direct_response_limit(settings: ConsoleSettings) -> int:
    """The body size the route table must allow for the largest console file (twice it,
    so an edited file still fits until the next restart)."""
    largest = max(path.stat().st_size for _, path in console_files(settings.root))
    return max(ENVOY_DEFAULT_BODY_LIMIT, largest * 2)


def _rest_listener(bootstrap: dict[str, Any]) -> dict[str, Any]:
    for listener in bootstrap["static_resources"]["listeners"]:
        if listener["name"] == "rest":
            found: dict[str, Any] = listener
            return found
    raise ValueError("the gateway configuration has no 'rest' listener to add the console to")


def _rest_connection_manager(bootstrap: dict[str, Any]) -> dict[str, Any]:
    for chain in _rest_listener(bootstrap)["filter_chains"]:
        for network_filter in chain["filters"]:
            if network_filter["name"] == "envoy.filters.network.http_connection_manager":
                manager: dict[str, Any] = network_filter["typed_config"]
                return manager
    raise ValueError("the gateway's 'rest' listener has no HTTP connection manager")


def add_console(bootstrap: dict[str, Any], settings: ConsoleSettings | None) -> dict[str, Any]:
    """Adds the console to a rendered gateway bootstrap (in place) and returns it;
    `None` leaves the bootstrap as it is."""
    if settings is None:
        return bootstrap
    manager = _rest_connection_manager(bootstrap)
    route_config: dict[str, Any] = manager["route_config"]
    listening = _rest_listener(bootstrap)["address"]["socket_address"]
    # Ahead of everything else: the console's paths are its own, and the
    # transcoder's routes end with a catch-all.
    route_config["virtual_hosts"][0]["routes"][0:0] = console_routes(
        settings, str(listening["address"]), int(listening["port_value"])
    )
    route_config["max_direct_response_body_size_bytes"] = max(
        route_config.get("max_direct_response_body_size_bytes", ENVOY_DEFAULT_BODY_LIMIT),
        direct_response_limit(settings),
    )
    bootstrap["static_resources"]["clusters"].extend(console_clusters(settings))
    if settings.emulator is not None:
        # Before the router, which is always last.
        manager["http_filters"].insert(len(manager["http_filters"]) - 1, _origin_check_filter())
    return bootstrap
