"""Every profile of the last committed sync, page by page: a LOB app's bootstrap.

    listing = SyncedListing(store, shard_count=1)
    page = await listing.page(page_size=1000, page_token="")
    ... page.profiles, page.next_page_token, page.changes_cursor

A listing reads the committed snapshots (one per shard, named by each
shard's LATEST.json when the listing starts), never the live baseline, so
all its pages show one committed state however many syncs commit meanwhile.
The page token names those snapshots and the position reached; it carries
no profile data. Snapshots are immutable until retention removes them
(SNAPSHOT_RETENTION); a token whose snapshot is gone is refused with
FAILED_PRECONDITION, telling the caller to start again.

`changes_cursor` is the change log's cursor after the listed runs' events
(recorded at their commit): following changes after it gives every change
the listing does not show, and none it does. With several shards, it is the
oldest of the shards' cursors, so a change another shard had already listed
can come once more (it carries the same `version`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from profilesync.v1 import differ_pb2, profile_pb2
from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.profile_messages import profile_from_dict
from services.snapshot_differ.object_store import ObjectStore
from services.snapshot_differ.snapshot import SnapshotError, SnapshotReader, shard_prefix

__all__ = ["DEFAULT_PAGE_SIZE", "SyncedListing"]

DEFAULT_PAGE_SIZE: Final = 500
_TOKEN_VERSION: Final = 1
# Parsed parts kept, so a listing read page by page decompresses each part once.
_CACHED_PARTS: Final = 8
_MANIFEST_KEY = re.compile(r"snapshots/shard-\d+-of-\d+/[0-9A-Za-z_.-]+/manifest\.json")
_CURSOR = re.compile(r"\d+-\d+")
_RESTART = "start the listing again without a pageToken"


@dataclass
class _Position:
    manifests: list[str]  # one committed snapshot per shard that has one
    cursor: str
    total: int
    snapshot: int = 0  # index into manifests
    part: int = 0
    offset: int = 0  # records of the part already listed


def _cursor_key(cursor: str) -> tuple[int, int]:
    ms, _, seq = cursor.partition("-")
    return int(ms), int(seq or 0)


def _encode(position: _Position) -> str:
    payload = [
        _TOKEN_VERSION,
        position.manifests,
        position.cursor,
        position.total,
        position.snapshot,
        position.part,
        position.offset,
    ]
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> _Position:
    invalid = InvalidArgument(
        "pageToken: is not valid; pass the nextPageToken of the previous page unchanged, "
        f"or {_RESTART}"
    )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, manifests, cursor, total, snapshot, part, offset = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise invalid from None
    if (
        version != _TOKEN_VERSION
        or not isinstance(manifests, list)
        or not all(isinstance(m, str) and _MANIFEST_KEY.fullmatch(m) for m in manifests)
        or not isinstance(cursor, str)
        or not _CURSOR.fullmatch(cursor)
        or not all(isinstance(n, int) and n >= 0 for n in (total, snapshot, part, offset))
        or snapshot >= len(manifests)
    ):
        raise invalid
    return _Position(manifests, cursor, total, snapshot, part, offset)


class SyncedListing:
    def __init__(self, store: ObjectStore, shard_count: int) -> None:
        self._store = store
        self._shard_count = shard_count
        self._reader = SnapshotReader(store, "snapshots")
        self._parts: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()

    async def page(self, page_size: int, page_token: str) -> differ_pb2.ListSyncedProfilesResponse:
        size = page_size or DEFAULT_PAGE_SIZE
        position = _decode(page_token) if page_token else await self._start()
        profiles: list[profile_pb2.Profile] = []
        while len(profiles) < size and position.snapshot < len(position.manifests):
            parts = (await self._manifest(position.manifests[position.snapshot]))["parts"]
            if position.part >= len(parts):
                position.snapshot, position.part, position.offset = position.snapshot + 1, 0, 0
                continue
            records = await self._part(parts[position.part])
            taken = records[position.offset : position.offset + size - len(profiles)]
            profiles.extend(_message(profile) for profile in taken)
            position.offset += len(taken)
            if position.offset >= len(records):
                position.part, position.offset = position.part + 1, 0
        more = position.snapshot < len(position.manifests)
        return differ_pb2.ListSyncedProfilesResponse(
            profiles=profiles,
            next_page_token=_encode(position) if more else "",
            changes_cursor=position.cursor,
            total_size=position.total,
        )

    async def _start(self) -> _Position:
        """The newest committed snapshot of every shard, read now."""
        manifests, cursors, total = [], [], 0
        for index in range(self._shard_count):
            reader = SnapshotReader(self._store, shard_prefix(index, self._shard_count))
            latest = await asyncio.to_thread(reader.latest)
            if latest is None:
                continue
            manifest_key = str(latest["manifest"])
            manifests.append(manifest_key)
            cursors.append(str(latest.get("changesCursor") or "0-0"))
            total += int((await self._manifest(manifest_key)).get("profiles", 0))
        # No committed sync yet: nothing to list, and every change is to come.
        cursor = min(cursors, key=_cursor_key) if cursors else "0-0"
        return _Position(manifests, cursor, total)

    async def _manifest(self, key: str) -> dict[str, Any]:
        try:
            return await asyncio.to_thread(self._reader.manifest, key)
        except SnapshotError as error:
            raise FailedPrecondition(
                f"the sync this listing reads is no longer kept ({error}); {_RESTART}"
            ) from None

    async def _part(self, part: dict[str, Any]) -> list[dict[str, Any]]:
        key = str(part["key"])
        cached = self._parts.get(key)
        if cached is not None:
            self._parts.move_to_end(key)
            return cached
        try:
            records = await asyncio.to_thread(
                lambda: [profile for profile, _ in self._reader.part_records(part)]
            )
        except SnapshotError as error:
            raise FailedPrecondition(
                f"the sync this listing reads is no longer kept ({error}); {_RESTART}"
            ) from None
        self._parts[key] = records
        while len(self._parts) > _CACHED_PARTS:
            self._parts.popitem(last=False)
        return records


def _message(profile: dict[str, Any]) -> profile_pb2.Profile:
    """A listed profile: its content was read from Graph at its fetchTime."""
    message = profile_from_dict(profile)
    if message.HasField("fetch_time"):
        message.synced_at.CopyFrom(message.fetch_time)
    return message
