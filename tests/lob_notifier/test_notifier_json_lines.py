"""The REST stream's JSON lines: the JSON protobuf's own printer gives for each message."""

from __future__ import annotations

import json

from google.protobuf import json_format
from notifier_events import make_event, rich_event

from profilesync.v1 import notifier_pb2
from services.lob_notifier.json_lines import EventLines, event_line


def reference(event: notifier_pb2.ChangeEvent) -> object:
    return json_format.MessageToDict(event, always_print_fields_with_no_presence=True)


def test_each_kind_of_event_is_one_line_of_the_reference_json() -> None:
    unknown_kind = make_event(3)
    unknown_kind.kind = 99  # from a newer publisher: printed as its number
    events = [
        rich_event(1),
        rich_event(2),
        make_event(3),
        unknown_kind,
        notifier_pb2.ChangeEvent(cursor="1-0", heartbeat=True),
        notifier_pb2.ChangeEvent(),
    ]
    for event in events:
        line = event_line(event)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert len(line.decode().splitlines()) == 1
        assert json.loads(line) == reference(event)


def test_lines_are_joined_in_order_and_an_event_is_encoded_once() -> None:
    lines = EventLines(keep=2)
    first, second = rich_event(1), make_event(2)
    first.cursor, second.cursor = "5-0", "6-0"
    body = lines.join([first, second])
    assert [json.loads(line)["eventId"] for line in body.splitlines()] == [
        "rich-00001",
        "event-00002",
    ]
    assert lines.line(first) is lines.line(first)  # kept, not encoded again
