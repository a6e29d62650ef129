"""Change events as the REST stream's lines: JSON, one object per line, as the
gateway's transcoder writes a ChangeEvent (camelCase names, fields without
presence printed even when empty, enums by name).

    lines = EventLines()
    body = lines.join(events)   # b'{"eventId":"e-1",...}\n{"eventId":"e-2",...}\n'

Each event is encoded once, however many streams carry it: the newest
encodings are kept (by cursor and event id), so the streams that follow the
log's head share them. A heartbeat (no event id) is encoded every time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from google.protobuf import json_format

from profilesync.v1 import notifier_pb2

__all__ = ["CONTENT_TYPE", "EventLines", "event_line"]

CONTENT_TYPE = "application/json"
# Encodings kept: the shared reader's memory holds at most twice its 4,000
# entries, and streams at the head read from it.
KEEP_LINES = 10_000


# Characters JSON allows raw in a string that line readers split on (Python's
# str.splitlines, JavaScript): escaped, so one event stays one line.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def event_line(event: notifier_pb2.ChangeEvent) -> bytes:
    """One event as a JSON line, as the gateway prints the ChangeEvent message."""
    shown = json_format.MessageToDict(event, always_print_fields_with_no_presence=True)
    text = json.dumps(shown, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKS).encode() + b"\n"


class EventLines:
    """JSON lines of change events, each encoded once while it is recent."""

    def __init__(self, keep: int = KEEP_LINES) -> None:
        self._keep = keep
        self._lines: dict[tuple[str, str], bytes] = {}

    def join(self, events: Sequence[notifier_pb2.ChangeEvent]) -> bytes:
        return b"".join(self.line(event) for event in events)

    def line(self, event: notifier_pb2.ChangeEvent) -> bytes:
        if event.heartbeat or not event.event_id:
            return event_line(event)
        key = (event.cursor, event.event_id)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = event_line(event)
            if len(self._lines) > self._keep:
                # The oldest encoding first (dicts keep insertion order).
                del self._lines[next(iter(self._lines))]
        return line
