"""Renders the Envoy configuration of the REST gateway.

One listener with Envoy's gRPC-JSON transcoder: a REST call is matched
against the `google.api.http` rules in the descriptor set, turned into a gRPC
call, and routed by its gRPC path to the cluster of the service that owns it.
Only methods with an HTTP rule are routed; internal RPCs (Publish,
ListProfiles) are not reachable through the gateway, not even over native
gRPC.
"""

from __future__ import annotations

import ipaddress
import pathlib
from typing import Any

from services.console.routes import add_console
from services.gateway.descriptors import RestMethod, rest_methods
from services.gateway.request_guard import request_guard_filter
from services.gateway.settings import Backend, GatewaySettings

__all__ = ["HEALTH_PATH", "OPENAPI_PATH", "render_config"]

_TYPES = "type.googleapis.com/envoy.extensions"
TRANSCODER = "envoy.filters.http.grpc_json_transcoder"

# Routes the gateway answers itself, without a backend and without a token.
HEALTH_PATH = "/healthz"
OPENAPI_PATH = "/openapi.json"

# Envoy refuses a direct-response body over 4 KiB unless the route table allows
# more; the OpenAPI document is far larger. The limit is the file's size with
# room to spare, so a regenerated document still fits until the next render.
DIRECT_RESPONSE_HEADROOM = 2

# Unary calls: long enough for a 60 s long-poll of ListChanges plus a margin,
# and for a batch read that waits out Graph throttling.
UNARY_TIMEOUT = "90s"

# Request fields: the original REST path (before transcoding) and the gRPC
# method it became. No request headers beyond these: Authorization never
# reaches the log.
ACCESS_LOG_FORMAT: dict[str, str] = {
    "time": "%START_TIME%",
    "service": "gateway",
    "requestId": "%REQ(X-REQUEST-ID)%",
    "method": "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "grpcMethod": "%REQ(:PATH)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "bytesReceived": "%BYTES_RECEIVED%",
    "bytesSent": "%BYTES_SENT%",
    "durationMs": "%DURATION%",
    "upstream": "%UPSTREAM_CLUSTER%",
    "client": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
    "userAgent": "%REQ(USER-AGENT)%",
}


def _socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def cluster_name(service: str) -> str:
    return service.rsplit(".", 1)[-1]


# What a caller over the gateway's limit of calls to one service should wait.
OVERFLOW_RETRY_AFTER_SECONDS = 5


def _cluster(backend: Backend, settings: GatewaySettings) -> dict[str, Any]:
    try:
        ipaddress.ip_address(backend.host)
        discovery = "STATIC"
    except ValueError:
        # A DNS name (a Kubernetes Service): re-resolved so new pod IPs are picked up.
        discovery = "STRICT_DNS"
    name = cluster_name(backend.service)
    return {
        "name": name,
        "type": discovery,
        "connect_timeout": "5s",
        "dns_lookup_family": "V4_PREFERRED",
        # Explicit, not Envoy's default of 1,024 calls: every open change
        # stream is one call in flight. Over it, callers get 429 (see the
        # local reply for the UO flag).
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": settings.max_backend_requests,
                    "max_pending_requests": settings.max_backend_requests,
                    "max_requests": settings.max_backend_requests,
                    "max_retries": 3,
                }
            ]
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _socket_address(backend.host, backend.port)}}
                    ]
                }
            ],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": f"{_TYPES}.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {
                    "http2_protocol_options": {
                        # Pings keep long-lived change streams from being cut by
                        # idle NAT/conntrack entries and detect dead backends.
                        "connection_keepalive": {"interval": "30s", "timeout": "10s"},
                    }
                },
            }
        },
    }


def _route(method: RestMethod, settings: GatewaySettings) -> dict[str, Any]:
    action: dict[str, Any] = {"cluster": cluster_name(method.service)}
    if method.server_streaming:
        # A change stream lives as long as the client reads it: no overall
        # deadline, and a long idle allowance between events.
        action["timeout"] = "0s"
        action["idle_timeout"] = f"{settings.stream_idle_timeout_seconds}s"
    else:
        action["timeout"] = UNARY_TIMEOUT
    return {"match": {"path": method.grpc_path}, "route": action}


def _not_found(message: str) -> dict[str, Any]:
    return {"status": 404, "body": {"inline_string": message}}


# The transcoder would refuse a path no RPC claims; routes the gateway answers
# itself turn it off.
_WITHOUT_TRANSCODER = {
    TRANSCODER: {
        "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
        "disabled": True,
    }
}


def _openapi_route(openapi_file: pathlib.Path) -> dict[str, Any]:
    return {
        # GET and HEAD only: anything else falls through to the 404 below.
        "match": {
            "path": OPENAPI_PATH,
            "headers": [{"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}],
        },
        # Read once when Envoy loads its configuration.
        "direct_response": {"status": 200, "body": {"filename": str(openapi_file)}},
        "response_headers_to_add": [
            {"header": {"key": "content-type", "value": "application/json"}},
            {"header": {"key": "cache-control", "value": "public, max-age=300"}},
        ],
        "typed_per_filter_config": _WITHOUT_TRANSCODER,
    }


def _route_config(settings: GatewaySettings) -> dict[str, Any]:
    methods = rest_methods(settings.descriptor_set, (b.service for b in settings.backends))
    routes: list[dict[str, Any]] = [
        {
            # Liveness of the gateway itself.
            "match": {"path": HEALTH_PATH},
            "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}},
            "response_headers_to_add": [{"header": {"key": "content-type", "value": "text/plain"}}],
            "typed_per_filter_config": _WITHOUT_TRANSCODER,
        },
    ]
    if settings.openapi_file is not None:
        routes.append(_openapi_route(settings.openapi_file))
    routes += [
        *(_route(method, settings) for method in methods),
        {"match": {"prefix": "/"}, "direct_response": _not_found("no such route")},
    ]
    config: dict[str, Any] = {
        "name": "rest",
        "virtual_hosts": [{"name": "profilesync", "domains": ["*"], "routes": routes}],
    }
    if settings.openapi_file is not None:
        size = settings.openapi_file.stat().st_size
        config["max_direct_response_body_size_bytes"] = max(4096, size * DIRECT_RESPONSE_HEADROOM)
    return config


def _transcoder(settings: GatewaySettings) -> dict[str, Any]:
    return {
        "name": TRANSCODER,
        "typed_config": {
            "@type": f"{_TYPES}.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
            "proto_descriptor": str(settings.descriptor_set),
            "services": [b.service for b in settings.backends],
            # Errors come back as a JSON google.rpc.Status ({"code", "message"}).
            "convert_grpc_status": True,
            "print_options": {
                "always_print_primitive_fields": True,
                "stream_newline_delimited": True,
            },
            "request_validation_options": {
                "reject_unknown_method": True,
                "reject_unknown_query_parameters": True,
                "reject_binding_body_field_collisions": True,
            },
            "max_request_body_size": settings.max_request_bytes,
            # A page of 1,000 change events with before/after profiles runs to
            # a few MB of JSON; the default (the connection buffer) cuts it.
            "max_response_body_size": MAX_RESPONSE_BYTES,
            # Browsers and HTTP libraries send a space in a query string as
            # "+" (form encoding); a search for "two words" must see the space.
            "query_param_unescape_plus": True,
        },
    }


# Largest unary REST answer the transcoder builds (the backends' gRPC limit).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


# gRPC status codes for the HTTP statuses Envoy answers itself, so its own
# errors read like the transcoded ones: {"code": <gRPC code>, "message": ...}.
LOCAL_REPLY_CODES: dict[int, int] = {
    400: 3,  # INVALID_ARGUMENT: malformed JSON, unknown query parameter
    404: 5,  # NOT_FOUND: no RPC for this method and path
    413: 3,  # INVALID_ARGUMENT: body larger than the limit
    429: 8,  # RESOURCE_EXHAUSTED
    431: 3,  # INVALID_ARGUMENT: headers too large
    503: 14,  # UNAVAILABLE: backend down or unreachable
    504: 4,  # DEADLINE_EXCEEDED
}
UNKNOWN_CODE = 2


def _error_body(code: int) -> dict[str, Any]:
    return {
        "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"},
        "content_type": "application/json",
    }


def _status_filter(op: str, status: int) -> dict[str, Any]:
    return {
        "status_code_filter": {
            "comparison": {"op": op, "value": {"default_value": status, "runtime_key": "unused"}}
        }
    }


# Methods some RPC may be bound to; Envoy refuses others (QUERY without a body
# type, say) before routing, with an empty message.
HTTP_METHODS = "GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|CONNECT"


def _json_error(code: int, message: str) -> dict[str, Any]:
    return {
        "json_format": {"code": code, "message": message},
        "content_type": "application/json",
    }


def _named_refusal_mappers(settings: GatewaySettings) -> list[dict[str, Any]]:
    """Messages for refusals Envoy makes with an empty body or a bare reason phrase:
    a request its HTTP codec could not parse (no headers at all), a method it does
    not route, a body over the size limit."""
    no_path = {"name": ":path", "present_match": True, "invert_match": True}
    odd_method = {
        "name": ":method",
        "string_match": {"safe_regex": {"regex": HTTP_METHODS}},
        "invert_match": True,
    }
    too_large = (
        f"the request body is larger than {settings.max_request_bytes} bytes, "
        "the most this gateway accepts"
    )
    return [
        *(
            {
                "filter": {
                    "and_filter": {
                        "filters": [
                            _status_filter("EQ", 400),
                            {"header_filter": {"header": header}},
                        ]
                    }
                },
                "body_format_override": _json_error(LOCAL_REPLY_CODES[400], message),
            }
            for header, message in (
                (no_path, "malformed HTTP request (%RESPONSE_CODE_DETAILS%)"),
                (odd_method, "HTTP method %REQ(:METHOD)% is not supported"),
            )
        ),
        {
            "filter": _status_filter("EQ", 413),
            "body_format_override": _json_error(LOCAL_REPLY_CODES[413], too_large),
        },
    ]


def _overflow_mapper() -> dict[str, Any]:
    """A backend's circuit breaker is full (flag UO): 429 with Retry-After, not 503."""
    return {
        "filter": {"response_flag_filter": {"flags": ["UO"]}},
        "status_code": 429,
        "headers_to_add": [
            {
                "header": {"key": "retry-after", "value": str(OVERFLOW_RETRY_AFTER_SECONDS)},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
        "body_format_override": _json_error(
            LOCAL_REPLY_CODES[429],
            "the gateway is at its limit of calls in flight to this service "
            "(GATEWAY_MAX_BACKEND_REQUESTS); retry later",
        ),
    }


def _local_reply_config(settings: GatewaySettings) -> dict[str, Any]:
    # Only errors are rewritten: /healthz and other direct 2xx answers keep their body.
    mappers = [_overflow_mapper()]
    mappers += _named_refusal_mappers(settings) if settings.request_guard else []
    mappers += [
        {"filter": _status_filter("EQ", status), "body_format_override": _error_body(code)}
        for status, code in LOCAL_REPLY_CODES.items()
    ]
    mappers.append(
        {"filter": _status_filter("GE", 400), "body_format_override": _error_body(UNKNOWN_CODE)}
    )
    return {"mappers": mappers}


def _http_connection_manager(settings: GatewaySettings) -> dict[str, Any]:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": f"{_TYPES}.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "rest",
            "codec_type": "AUTO",
            # Slow clients may not hold connections open by trickling headers.
            "request_headers_timeout": "10s",
            "http2_protocol_options": {
                "max_concurrent_streams": settings.max_streams_per_connection
            },
            "use_remote_address": True,
            # The id in the access log is handed back, so a caller can quote it.
            # Ids sent by external clients are replaced, not trusted.
            "generate_request_id": True,
            "always_set_request_id_in_response": True,
            "access_log": [
                {
                    "name": "envoy.access_loggers.stdout",
                    "typed_config": {
                        "@type": f"{_TYPES}.access_loggers.stream.v3.StdoutAccessLog",
                        "log_format": {"json_format": ACCESS_LOG_FORMAT},
                    },
                }
            ],
            "local_reply_config": _local_reply_config(settings),
            "route_config": _route_config(settings),
            "http_filters": [
                {
                    # Refuses an oversized body with 413 before anything buffers or
                    # transcodes it (the transcoder itself streams bodies through).
                    "name": "envoy.filters.http.buffer",
                    "typed_config": {
                        "@type": f"{_TYPES}.filters.http.buffer.v3.Buffer",
                        "max_request_bytes": settings.max_request_bytes,
                    },
                },
                *([request_guard_filter()] if settings.request_guard else []),
                _transcoder(settings),
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": f"{_TYPES}.filters.http.router.v3.Router"},
                },
            ],
        },
    }


ADMIN_CLUSTER = "envoy_admin"


def _metrics_listener(port: int) -> dict[str, Any]:
    """Envoy's statistics for Prometheus, without exposing the rest of the admin interface."""
    routes = [
        {
            "match": {
                "path": "/metrics",
                "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
            },
            "route": {"cluster": ADMIN_CLUSTER, "prefix_rewrite": "/stats/prometheus"},
        },
        {"match": {"prefix": "/"}, "direct_response": {"status": 404}},
    ]
    manager = {
        "@type": f"{_TYPES}.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "metrics",
        "codec_type": "AUTO",
        "request_headers_timeout": "10s",
        "route_config": {
            "name": "metrics",
            "virtual_hosts": [{"name": "metrics", "domains": ["*"], "routes": routes}],
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": f"{_TYPES}.filters.http.router.v3.Router"},
            }
        ],
    }
    return {
        "name": "metrics",
        # Scraped from other pods.
        "address": _socket_address("0.0.0.0", port),  # noqa: S104
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _admin_cluster(settings: GatewaySettings) -> dict[str, Any]:
    """Envoy's own admin interface, which the metrics listener reads its statistics from."""
    return {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": _socket_address(settings.admin_host, settings.admin_port)
                            }
                        }
                    ]
                }
            ],
        },
    }


def render_config(settings: GatewaySettings) -> dict[str, Any]:
    """The Envoy bootstrap for `settings`, ready to be written as JSON."""
    bootstrap: dict[str, Any] = {
        "admin": {"address": _socket_address(settings.admin_host, settings.admin_port)},
        "static_resources": {
            "listeners": [
                {
                    "name": "rest",
                    "address": _socket_address(settings.host, settings.port),
                    "filter_chains": [{"filters": [_http_connection_manager(settings)]}],
                }
            ],
            "clusters": [_cluster(backend, settings) for backend in settings.backends],
        },
        # Connections beyond the limit are not accepted (they wait in the
        # kernel's backlog or are refused) instead of exhausting Envoy's memory.
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": f"{_TYPES}.resource_monitors.downstream_connections.v3."
                        "DownstreamConnectionsConfig",
                        "max_active_downstream_connections": settings.max_connections,
                    },
                }
            ]
        },
    }
    if settings.metrics_port is not None:
        resources = bootstrap["static_resources"]
        resources["listeners"].append(_metrics_listener(settings.metrics_port))
        resources["clusters"].append(_admin_cluster(settings))
    # The console's pages go ahead of the transcoder's routes (services/console).
    return add_console(bootstrap, settings.console)
