"""Serves fakeredis over TCP when no redis-server is installed (embedded default only)."""

from __future__ import annotations

import argparse
import signal
import sys
import types

from fakeredis import TcpFakeServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = TcpFakeServer(("127.0.0.1", args.port), server_type="redis")

    def stop(_signum: int, _frame: types.FrameType | None) -> None:
        server.shutdown()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
