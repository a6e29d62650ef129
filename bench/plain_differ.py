"""The differ a competent engineer would write first: the compare benchmark's baseline.

    python -m bench.plain_differ --store DIR --extender HOST:PORT --notifier HOST:PORT

One run, as `python -m services.snapshot_differ run` does it, without Redis:
load an id -> digest map from the previous committed snapshot (in process),
stream the new profiles from the extender, digest each and look it up,
write the new snapshot, publish the changes (the same events, in batches of
500), take the before side of updates and deletions from a second pass over
the previous snapshot (only when something changed), then commit by naming
the new snapshot the latest. Prints one JSON line: the run's seconds, the
seconds spent waiting for the extender, and its counts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import time
import uuid
from typing import Any

import grpc

from profilesync.v1 import extender_pb2, extender_pb2_grpc, notifier_pb2, notifier_pb2_grpc
from services.common.profile_messages import profile_to_dict
from services.common.profiles import digest
from services.snapshot_differ.changes import build_event
from services.snapshot_differ.object_store import LocalDirectoryStore
from services.snapshot_differ.snapshot import SnapshotReader, SnapshotWriter, shard_prefix

PART_SIZE = 5000  # the differ's default SNAPSHOT_PART_SIZE
PUBLISH_BATCH = 500  # the differ's default PUBLISH_BATCH


class _Publisher:
    def __init__(self, stub: notifier_pb2_grpc.LobNotifierStub) -> None:
        self._stub = stub
        self._pending: list[notifier_pb2.ChangeEvent] = []
        self.published = 0
        # Where LOB apps follow changes from after this run (recorded at its commit).
        self.last_cursor = "0-0"

    async def add(self, event: notifier_pb2.ChangeEvent) -> None:
        self._pending.append(event)
        if len(self._pending) >= PUBLISH_BATCH:
            await self.flush()

    async def flush(self) -> None:
        if self._pending:
            response = await self._stub.Publish(notifier_pb2.PublishRequest(events=self._pending))
            self.last_cursor = response.last_cursor or self.last_cursor
            self.published += len(self._pending)
            self._pending = []


async def plain_run(store_dir: str, extender: str, notifier: str) -> dict[str, Any]:
    started = time.perf_counter()
    waited = 0.0
    run_id = uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC)
    reader = SnapshotReader(LocalDirectoryStore(store_dir), shard_prefix(0, 1))
    previous_key = reader.latest_manifest_key()
    generation = reader.manifest(previous_key)["runId"] if previous_key else ""
    previous: dict[str, str] = (
        {str(profile["id"]): d for profile, d in reader.records(previous_key)}
        if previous_key
        else {}
    )
    writer = SnapshotWriter(reader.store, reader.prefix, run_id, PART_SIZE)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
    updated: dict[str, tuple[dict[str, Any], str]] = {}
    async with (
        grpc.aio.insecure_channel(extender) as extender_channel,
        grpc.aio.insecure_channel(notifier) as notifier_channel,
    ):
        publisher = _Publisher(notifier_pb2_grpc.LobNotifierStub(notifier_channel))
        stream = (
            extender_pb2_grpc.ProfileExtenderStub(extender_channel)
            .ListProfiles(extender_pb2.ListProfilesRequest(shard_index=0, shard_count=1))
            .__aiter__()
        )
        while True:
            asked = time.perf_counter()
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                break
            finally:
                waited += time.perf_counter() - asked
            if item.WhichOneof("item") != "profile":
                continue
            profile = profile_to_dict(item.profile)
            after = digest(profile)
            await writer.add(profile, after)
            before = previous.pop(str(profile["id"]), None)
            if before is None:
                counts["created"] += 1
                await publisher.add(_event(run_id, None, profile, "", after, now, generation))
            elif before != after:
                counts["updated"] += 1
                updated[str(profile["id"])] = (profile, after)
            else:
                counts["unchanged"] += 1
        # The before side of updates and deletions: one more pass over the old snapshot.
        if previous_key and (updated or previous):
            for old, old_digest in reader.records(previous_key):
                user_id = str(old["id"])
                if user_id in updated:
                    profile, after = updated[user_id]
                    event = _event(run_id, old, profile, old_digest, after, now, generation)
                elif user_id in previous:
                    counts["deleted"] += 1
                    event = _event(run_id, old, None, old_digest, "", now, generation)
                else:
                    continue
                await publisher.add(event)
        await publisher.flush()
    manifest = await writer.finish(complete=True, extra={})
    reader.mark_latest(manifest, publisher.last_cursor)  # the commit
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "waited": waited, "counts": counts, "events": publisher.published}


def _event(
    run_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    before_digest: str,
    after_digest: str,
    now: dt.datetime,
    generation: str,
) -> notifier_pb2.ChangeEvent:
    user_id = str((after or before or {})["id"])
    return build_event(
        run_id=run_id,
        user_id=user_id,
        before=before,
        after=after,
        before_digest=before_digest,
        after_digest=after_digest,
        origin=notifier_pb2.SHAREPOINT,
        detect_time=now,
        before_generation=generation,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_differ", description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--extender", required=True)
    parser.add_argument("--notifier", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(plain_run(args.store, args.extender, args.notifier))))


if __name__ == "__main__":
    main()
