"""A webhook receiver on loopback that refuses batches until told to accept them.

receiver = FlakyReceiver().start()      # answers 503 to every batch
receiver.accept()                        # from now on 200
receiver.accepted_events                 # events in batches answered 200
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FlakyReceiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepting = False
        self.accepted_events = 0
        self.refused_batches = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    if receiver._accepting:
                        receiver.accepted_events += len(body.get("events", []))
                        status = 200
                    else:
                        receiver.refused_batches += 1
                        status = 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/profile-changes"

    def start(self) -> FlakyReceiver:
        self._thread.start()
        return self

    def accept(self) -> None:
        with self._lock:
            self._accepting = True

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
