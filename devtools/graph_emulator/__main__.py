"""Command line: ``python -m devtools.graph_emulator [options]``.

    python -m devtools.graph_emulator --users 1000 --seed 7 --port 0 --quota 600

Starts the emulator over HTTPS and, with ``--ready-file``, writes a JSON file once it
listens: ``{"url", "caFile", "tenantId", "clientId", "authority", "graphUrl", "pid", ...}``.
SIGTERM or SIGINT stop it with exit code 0; bad options exit with 2. The options are listed
in docs/graph-emulator.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from devtools.graph_emulator.accounts import MIX_NAMES, TenantMix
from devtools.graph_emulator.app import create_app
from devtools.graph_emulator.defaults import (
    DEFAULT_APP_ROLES,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_GRAPH_APP_ROLES,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_SEED,
    DEFAULT_STATE_DIR,
    DEFAULT_TENANT_ID,
    DEFAULT_USER_PASSWORD,
    DEFAULT_USERS,
    GRAPH_RESOURCE,
)
from devtools.graph_emulator.logs import configure_logging
from devtools.graph_emulator.server import check_tls, listen_socket, run_server
from devtools.graph_emulator.settings import (
    DEFAULT_WRITE_QUOTA_PER_150S,
    MAX_QUOTA,
    ConfigError,
    EmulatorConfig,
    updated_config,
)
from devtools.graph_emulator.signing_key import load_or_create_signing_key
from devtools.graph_emulator.state import EmulatorState
from devtools.graph_emulator.tls import ensure_tls_files

MAX_USERS = 2_000_000


def _guid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a GUID: {text!r}") from exc


def _integer_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], refused by name otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


_user_count = _integer_between(0, MAX_USERS)
_port = _integer_between(0, 65535)
_quota = _integer_between(0, MAX_QUOTA)


def _tenant_mix(text: str) -> TenantMix:
    try:
        return TenantMix.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


_ROLE = re.compile(r"[A-Za-z0-9_.\-]+")


def _roles(text: str) -> tuple[str, ...]:
    """Comma-separated app role values; an empty string grants none."""
    roles = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    for role in roles:
        if not _ROLE.fullmatch(role):
            raise argparse.ArgumentTypeError(
                f"not an app role value: {role!r} (letters, digits, '.', '_' and '-')"
            )
    return roles


#: Command-line options that set a field of ``PUT /_emulator/config``.
_CONFIG_OPTIONS = {
    "profileLatencyMedianMs": "--profile-latency-median-ms",
    "profileLatencyP99Ms": "--profile-latency-p99-ms",
}


def config_changes(args: argparse.Namespace) -> dict[str, int]:
    """The runtime settings given on the command line, as ``PUT /_emulator/config`` names them."""
    return {
        field: getattr(args, option[2:].replace("-", "_"))
        for field, option in _CONFIG_OPTIONS.items()
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.graph_emulator",
        description="Microsoft Graph v1.0 and Entra ID token endpoint emulator (HTTPS).",
    )
    parser.add_argument(
        "--users",
        type=_user_count,
        default=DEFAULT_USERS,
        help=f"users in the generated tenant (default {DEFAULT_USERS})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the generated tenant (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--tenant-mix",
        type=_tenant_mix,
        default=TenantMix.realistic(),
        help="kinds of account in the tenant: 'realistic' (default: a few percent guests, "
        "shared mailboxes, rooms, equipment, unlicensed members, members without a personal "
        "site and disabled members), 'none' (every user a licensed member with a profile), or "
        "shares such as 'guests=0.05,rooms=0.01' (names: " + ", ".join(MIX_NAMES) + ")",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"default {DEFAULT_PORT}; 0 picks a free port",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(DEFAULT_STATE_DIR),
        help="where the CA, server certificate and signing key are kept "
        f"(default {DEFAULT_STATE_DIR})",
    )
    parser.add_argument("--tenant-id", type=_guid, default=DEFAULT_TENANT_ID)
    parser.add_argument("--client-id", type=_guid, default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument(
        "--quota",
        type=_quota,
        default=None,
        help="resource units per app per 10 s (default: 3500, 5000 or 8000 by tenant size, "
        "as Graph does)",
    )
    parser.add_argument(
        "--write-quota",
        type=_quota,
        default=DEFAULT_WRITE_QUOTA_PER_150S,
        help=f"writes per app per 150 s (default {DEFAULT_WRITE_QUOTA_PER_150S})",
    )
    parser.add_argument(
        "--profile-latency-median-ms",
        type=int,
        default=0,
        help="median latency of each profile read (SharePoint-backed $select), in ms "
        "(default 0: none)",
    )
    parser.add_argument(
        "--profile-latency-p99-ms",
        type=int,
        default=0,
        help="99th percentile of that latency, in ms (at least the median)",
    )
    parser.add_argument(
        "--app-roles",
        type=_roles,
        default=DEFAULT_APP_ROLES,
        help="comma-separated app roles of the app's own client-credentials tokens "
        f"(default {','.join(DEFAULT_APP_ROLES)})",
    )
    parser.add_argument(
        "--graph-app-roles",
        type=_roles,
        default=DEFAULT_GRAPH_APP_ROLES,
        help="comma-separated Microsoft Graph application permissions granted to the app "
        f"(default {','.join(DEFAULT_GRAPH_APP_ROLES)}; add GroupMember.Read.All to read "
        "group members)",
    )
    parser.add_argument(
        "--user-password",
        default=DEFAULT_USER_PASSWORD,
        help="password of every emulated user for the resource-owner password grant "
        "(default: DEFAULT_USER_PASSWORD in defaults.py)",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="write connection details here (JSON) once listening",
    )
    args = parser.parse_args(argv)
    if not args.client_secret:
        parser.error("--client-secret must not be empty")
    if not args.user_password:
        parser.error("--user-password must not be empty")
    try:
        # The same checks as PUT /_emulator/config, so both refuse the same values.
        updated_config(EmulatorConfig(quota_per_10s=0), config_changes(args))
    except ConfigError as err:
        parser.error(f"{_CONFIG_OPTIONS.get(err.field, err.field)}: {err}")
    return args


def _exit_cleanly(signum: int, frame: object) -> None:
    # Until the server loop installs its own handlers (tenant generation can take a few
    # seconds for large tenants), a stop request still ends the process with status 0.
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    log = configure_logging()
    state_dir: Path = args.state_dir.resolve()
    files = ensure_tls_files(state_dir)
    check_tls(files)
    started = time.perf_counter()
    state = EmulatorState.build(
        users=args.users,
        seed=args.seed,
        tenant_id=args.tenant_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
        signing_key=load_or_create_signing_key(state_dir),
        quota_per_10s=args.quota,
        write_quota_per_150s=args.write_quota,
        app_roles=args.app_roles,
        user_password=args.user_password,
        mix=args.tenant_mix,
        graph_app_roles=args.graph_app_roles,
    )
    state.set_config(updated_config(state.config, config_changes(args)))
    log.info(
        "tenant generated",
        extra={
            "users": len(state.store),
            "seed": args.seed,
            "tenantMix": state.mix.to_json(),
            "tenantId": state.tenant_id,
            "clientId": state.client_id,
            "quotaPer10s": state.config.quota_per_10s,
            "writeQuotaPer150s": state.config.write_quota_per_150s,
            **config_changes(args),
            "appRoles": list(state.self_app_roles),
            "seconds": round(time.perf_counter() - started, 2),
        },
    )
    try:
        sock = listen_socket(args.host, args.port)
    except OSError as exc:
        log.error("cannot listen", extra={"host": args.host, "port": args.port, "error": str(exc)})
        return 2
    port = sock.getsockname()[1]
    # A wildcard bind is still reached through loopback by local clients.
    url_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host  # noqa: S104
    if ":" in url_host:
        url_host = f"[{url_host}]"
    url = f"https://{url_host}:{port}"
    payload = {
        "url": url,
        "caFile": str(files.ca_file),
        "tenantId": state.tenant_id,
        "clientId": state.client_id,
        "authority": f"{url}/{state.tenant_id}",
        "graphUrl": f"{url}/v1.0",
        "graphScope": f"{GRAPH_RESOURCE}/.default",
        "pid": os.getpid(),
        "tenantMix": state.mix.to_json(),
    }
    ready = args.ready_file.resolve() if args.ready_file is not None else None
    asyncio.run(run_server(create_app(state), sock, files, ready, payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
