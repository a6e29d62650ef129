"""`python -m devtools.devstack dev|demo`: the embedded default.

`dev` runs the whole stack on the ports the README lists (`--free-ports`: on
free ones), until Ctrl-C or SIGTERM; `demo` runs the narrated round trip and stops.
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import signal
import sys
import urllib.parse
from types import FrameType

from devtools.devstack.demo import run_demo
from devtools.devstack.stack import FIXED_PORTS, Stack, StackOptions


def _without_password(url: str) -> str:
    """An external REDIS_URL may carry a password; the banner shows the rest."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    netloc = f"{user}***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def banner(stack: Stack) -> list[str]:
    """What `make dev` prints once the stack is up: where everything is, console first."""
    return [
        f"web console      {stack.gateway_url}/console/",
        f"REST gateway     {stack.gateway_url}",
        f"extender gRPC    {stack.extender_addr}",
        f"differ gRPC      {stack.differ_addr}",
        f"notifier gRPC    {stack.notifier_addr}",
        f"Graph emulator   {stack.emulator_url}  (CA {stack.ca_file})",
        f"Redis            {_without_password(stack.redis_url)}",
        f"state            {stack.state_dir}  (rm -rf it, stopped, to start clean)",
        f"logs             {stack.state_dir / 'logs'}",
        "",
        "A token for the REST API:",
        f"  curl -s --cacert {stack.ca_file} -X POST {stack.emulator_url}/_emulator/token"
        " -H 'content-type: application/json' -d '{\"roles\":[\"Profiles.Read\"]}'",
    ]


class _StopRequested(Exception):
    """SIGTERM or SIGINT: stop the stack, wherever its start has got to."""


def _stop_requested(signum: int, frame: FrameType | None) -> None:
    # Raised in the main thread, even in the middle of Stack.start(): a stack told to
    # stop while it starts stops what it has started instead of starting the rest
    # first. Further signals are ignored while it stops; a SIGKILL still takes every
    # child with it (devtools/processes.py).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise _StopRequested(signal.Signals(signum).name)


def run_dev(users: int, state_dir: pathlib.Path, ports: dict[str, int]) -> int:
    signal.signal(signal.SIGTERM, _stop_requested)
    signal.signal(signal.SIGINT, _stop_requested)
    with (
        contextlib.suppress(_StopRequested),
        Stack(
            StackOptions(state_dir=state_dir, users=users, ports=ports, tenant_mix="realistic")
        ) as stack,
    ):
        print("\n".join(banner(stack)))
        print("Ctrl-C stops everything.", flush=True)
        try:
            while True:
                signal.pause()
        finally:
            print("stopping ...", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.devstack", description=__doc__)
    parser.add_argument("command", choices=["dev", "demo"])
    parser.add_argument("--users", type=int, default=50, help="users in the generated tenant")
    parser.add_argument("--state-dir", type=pathlib.Path, default=pathlib.Path(".state/dev"))
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="dev: every service on a free port instead of the README's (the banner says where)",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(args.users)
    ports = {} if args.free_ports else dict(FIXED_PORTS)
    return run_dev(args.users, args.state_dir.resolve(), ports)


if __name__ == "__main__":
    sys.exit(main())
