"""The Starlette application: Graph under /v1.0, Entra under /{tenant}, admin under /_emulator."""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devtools.graph_emulator import admin_http, identity_http
from devtools.graph_emulator.graph_http import error_response, graph_endpoint
from devtools.graph_emulator.logs import AccessLogMiddleware
from devtools.graph_emulator.state import EmulatorState

_GRAPH_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


async def _http_error(request: Request, exc: Exception) -> Response:
    # Unknown routes and wrong methods answer in Graph's error shape too.
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    request_id = str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id") or request_id
    if status == 404:
        code, message = "NotFound", f"No route matches '{request.url.path}'."
    elif status == 405:
        code, message = "MethodNotAllowed", f"Method '{request.method}' is not allowed here."
    else:
        code, message = "generalException", "An internal error occurred."
    return error_response(status, code, message, request_id, client_request_id)


def create_app(state: EmulatorState) -> Starlette:
    admin = admin_http.admin_endpoint
    routes = [
        Route("/v1.0/{rest:path}", graph_endpoint, methods=_GRAPH_METHODS),
        Route("/_emulator/health", admin(admin_http.health), methods=["GET"]),
        Route("/_emulator/config", admin(admin_http.get_config), methods=["GET"]),
        Route("/_emulator/config", admin(admin_http.put_config), methods=["PUT"]),
        Route("/_emulator/stats", admin(admin_http.get_stats), methods=["GET"]),
        Route("/_emulator/stats", admin(admin_http.reset_stats), methods=["DELETE"]),
        Route("/_emulator/token", admin(admin_http.mint_token), methods=["POST"]),
        Route("/_emulator/users", admin(admin_http.create_user), methods=["POST"]),
        Route("/_emulator/users/{id}", admin(admin_http.get_user), methods=["GET"]),
        Route("/_emulator/users/{id}", admin(admin_http.delete_user), methods=["DELETE"]),
        Route("/_emulator/users/{id}/edit", admin(admin_http.edit_user), methods=["POST"]),
        Route("/_emulator/groups", admin(admin_http.create_group), methods=["POST"]),
        Route(
            "/_emulator/users/{id}/sharepoint",
            admin(admin_http.set_user_sharepoint),
            methods=["POST"],
        ),
        Route("/common/userrealm/{username}", identity_http.user_realm, methods=["GET"]),
        Route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            identity_http.openid_configuration,
            methods=["GET"],
        ),
        Route("/{tenant}/discovery/v2.0/keys", identity_http.jwks, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", identity_http.token_endpoint, methods=["POST"]),
        Route("/{tenant}/oauth2/v2.0/token", identity_http.token_endpoint_get, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AccessLogMiddleware)],
        exception_handlers={HTTPException: _http_error, Exception: _http_error},
    )
    app.state.emulator = state
    return app
