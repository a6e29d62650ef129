"""Snapshots: every profile of a shard as read by one run, in compressed
parts, with a manifest written last. A snapshot without a manifest does not
exist; `LATEST.json` names the newest snapshot whose run committed.

Layout under the store:

    snapshots/shard-<i>-of-<n>/<run_id>/part-00000.jsonl.gz   one record per line
    snapshots/shard-<i>-of-<n>/<run_id>/manifest.json         written after every part
    snapshots/shard-<i>-of-<n>/LATEST.json                    written at commit

A part line is `{"digest": <hex sha-256 of the canonical profile>, "profile":
{...lowerCamelCase fields...}}`. Both JSON documents are versioned envelopes:
`{"kind": ..., "schemaVersion": N, ...}`. A reader accepts every version up
to its own and refuses newer ones by name, so an older release never
misreads a newer snapshot. Version 1 (no `kind`, `failedUserIds` complete)
is still read.

Memory stays flat however large the shard: the writer holds one part's
compressed bytes at a time and the reader streams one part at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import json
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

from services.snapshot_differ.crashpoints import crash_point
from services.snapshot_differ.object_store import ObjectStore

__all__ = [
    "MANIFEST_KIND",
    "SCHEMA_VERSION",
    "SnapshotError",
    "SnapshotReader",
    "SnapshotWriter",
    "set_digest",
    "shard_prefix",
]

# Bumped when the part or manifest format changes; readers accept older versions.
SCHEMA_VERSION = 2
MANIFEST_KIND = "profilesync.snapshot.manifest"
LATEST_KIND = "profilesync.snapshot.latest"
# The manifest lists at most this many failed user ids (the count is always exact).
MAX_LISTED_FAILURES = 1000
_SET_DIGEST_MODULUS = 2**256


class SnapshotError(ValueError):
    """A snapshot is missing, corrupt, or written by a newer release."""


def shard_prefix(shard_index: int, shard_count: int) -> str:
    return f"snapshots/shard-{shard_index}-of-{shard_count}"


def _pair_hash(user_id: str, digest: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{user_id}\x00{digest}".encode()).digest(), "big")


def set_digest(pairs: Iterator[tuple[str, str]]) -> str:
    """Order-independent digest of (user id, profile digest) pairs: two
    snapshots with the same content have the same value, however they were read."""
    total = 0
    for user_id, digest in pairs:
        total = (total + _pair_hash(user_id, digest)) % _SET_DIGEST_MODULUS
    return f"{total:064x}"


def _check_envelope(document: dict[str, Any], kind: str, key: str) -> int:
    version = document.get("schemaVersion")
    if not isinstance(version, int) or version < 1:
        raise SnapshotError(f"{key} is not a snapshot document (no schemaVersion)")
    if version > SCHEMA_VERSION:
        raise SnapshotError(
            f"{key} has schemaVersion {version}, newer than this release reads "
            f"({SCHEMA_VERSION}): upgrade the differ"
        )
    if version >= 2 and document.get("kind") != kind:
        raise SnapshotError(f"{key} is a {document.get('kind')!r}, not a {kind!r}")
    return version


class SnapshotWriter:
    """writer = SnapshotWriter(store, prefix, run_id, part_size=5000)
    await writer.add(profile_dict, digest)      # repeatedly; parts stored as they fill
    manifest_key = await writer.finish(complete=True, extra={...})
    """

    def __init__(self, store: ObjectStore, prefix: str, run_id: str, part_size: int) -> None:
        self.store = store
        self.prefix = prefix
        self.run_id = run_id
        self.part_size = part_size
        self.count = 0
        self._parts: list[dict[str, Any]] = []
        self._set_digest = 0
        self._start_part()

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.run_id}"

    def _start_part(self) -> None:
        # wbits 31: gzip framing, readable by `gzip -d` and by any gzip library.
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        self._chunks: list[bytes] = []
        self._in_part = 0
        self._raw_bytes = 0

    async def add(self, profile: dict[str, Any], digest: str) -> None:
        line = json.dumps(
            {"digest": digest, "profile": profile}, ensure_ascii=False, sort_keys=True
        ).encode()
        self._chunks.append(self._compressor.compress(line + b"\n"))
        self._in_part += 1
        self._raw_bytes += len(line) + 1
        self.count += 1
        user_id = str(profile.get("id", ""))
        self._set_digest = (self._set_digest + _pair_hash(user_id, digest)) % _SET_DIGEST_MODULUS
        if self._in_part >= self.part_size:
            await self._store_part()

    async def _store_part(self) -> None:
        if not self._in_part:
            return
        self._chunks.append(self._compressor.flush())
        data = b"".join(self._chunks)
        key = f"{self.base}/part-{len(self._parts):05d}.jsonl.gz"
        # Off the event loop: an S3 upload must not stall the lock renewal.
        await asyncio.to_thread(self.store.put, key, data)
        self._parts.append(
            {
                "key": key,
                "count": self._in_part,
                "bytes": len(data),
                "uncompressedBytes": self._raw_bytes,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        self._start_part()
        crash_point("part-written")

    async def finish(self, *, complete: bool, extra: dict[str, Any]) -> str:
        """Stores the last part, then the manifest; returns the manifest's key."""
        await self._store_part()
        manifest = {
            "kind": MANIFEST_KIND,
            "schemaVersion": SCHEMA_VERSION,
            "runId": self.run_id,
            "createdAt": dt.datetime.now(dt.UTC).isoformat(),
            # False when some profiles could not be read (their last committed
            # version is carried over) or the enumeration ended early.
            "complete": complete,
            "profiles": self.count,
            "contentDigest": f"{self._set_digest:064x}",
            "parts": self._parts,
            **extra,
        }
        key = f"{self.base}/manifest.json"
        await asyncio.to_thread(self.store.put, key, json.dumps(manifest, indent=1).encode())
        return key


class _HashingReader:
    """Passes bytes through while hashing them, so a streamed part can be
    checked against its manifest without holding it whole."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha256.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 16):
            pass


class SnapshotReader:
    """Reads snapshots back, streaming part by part.

    reader = SnapshotReader(store, shard_prefix(0, 1))
    key = reader.latest_manifest_key()
    for profile, digest in reader.records(key): ...
    """

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def latest(self) -> dict[str, Any] | None:
        """LATEST.json: `manifest` (the newest committed snapshot) and
        `changesCursor` (the change log's cursor after its run's events)."""
        key = f"{self.prefix}/LATEST.json"
        raw = self.store.get(key)
        if raw is None:
            return None
        document: dict[str, Any] = json.loads(raw)
        _check_envelope(document, LATEST_KIND, key)
        return document

    def latest_manifest_key(self) -> str | None:
        latest = self.latest()
        return None if latest is None else str(latest["manifest"])

    def mark_latest(self, manifest_key: str, changes_cursor: str) -> None:
        payload = {
            "kind": LATEST_KIND,
            "schemaVersion": SCHEMA_VERSION,
            "manifest": manifest_key,
            "changesCursor": changes_cursor,
        }
        self.store.put(f"{self.prefix}/LATEST.json", json.dumps(payload).encode())

    def manifest(self, manifest_key: str) -> dict[str, Any]:
        raw = self.store.get(manifest_key)
        if raw is None:
            raise SnapshotError(f"snapshot manifest {manifest_key} is missing")
        try:
            document: dict[str, Any] = json.loads(raw)
        except json.JSONDecodeError as error:
            raise SnapshotError(f"snapshot manifest {manifest_key} is not JSON: {error}") from None
        _check_envelope(document, MANIFEST_KIND, manifest_key)
        return document

    def records(self, manifest_key: str) -> Iterator[tuple[dict[str, Any], str]]:
        """(profile, digest) pairs of a snapshot, streamed part by part.

        A missing or corrupt part raises SnapshotError; since the checksum
        covers the whole part, that can come after some of its records were
        yielded, so a caller commits nothing until the iteration has ended.
        """
        for part in self.manifest(manifest_key)["parts"]:
            yield from self.part_records(part)

    def part_records(self, part: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
        """(profile, digest) pairs of one part, as the manifest lists it."""
        raw = self.store.open(part["key"])
        if raw is None:
            raise SnapshotError(f"snapshot part {part['key']} is missing")
        with raw:
            hashing = _HashingReader(raw)
            try:
                with gzip.GzipFile(fileobj=hashing, mode="rb") as lines:  # type: ignore[call-overload]
                    for line in lines:
                        if line.strip():
                            record = json.loads(line)
                            yield record["profile"], record["digest"]
            except (OSError, EOFError, json.JSONDecodeError, KeyError) as error:
                raise SnapshotError(f"snapshot part {part['key']} is corrupt: {error}") from None
            hashing.drain()
            if hashing.sha256.hexdigest() != part["sha256"]:
                raise SnapshotError(f"snapshot part {part['key']} is corrupt (checksum)")

    async def batches(
        self, manifest_key: str, size: int
    ) -> AsyncIterator[list[tuple[dict[str, Any], str]]]:
        """`records` in lists of `size`, read off the event loop."""
        iterator = self.records(manifest_key)

        def take() -> list[tuple[dict[str, Any], str]]:
            batch = []
            for record in iterator:
                batch.append(record)
                if len(batch) >= size:
                    break
            return batch

        while batch := await asyncio.to_thread(take):
            yield batch
