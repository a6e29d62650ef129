"""Snapshots: every profile of a shard as read by one run, in compressed
parts, with a manifest written last. A snapshot without a manifest does not
exist; `LATEST.json` names the newest snapshot whose run committed.

Layout under the store:

    snapshots/<shard>/<run_id>/part-00000.jsonl.gz   one profile (JSON) per line
    snapshots/<shard>/<run_id>/manifest.json         written after every part
    snapshots/<shard>/LATEST.json                    {"manifest": key}, after commit
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from services.snapshot_differ.object_store import ObjectStore

__all__ = ["SCHEMA_VERSION", "SnapshotReader", "SnapshotWriter", "shard_prefix"]

# Bumped when the part or manifest format changes; readers accept older versions.
SCHEMA_VERSION = 1


def shard_prefix(shard_index: int, shard_count: int) -> str:
    return f"snapshots/shard-{shard_index}-of-{shard_count}"


@dataclass
class SnapshotWriter:
    """writer = SnapshotWriter(store, prefix, run_id, part_size=5000)
    writer.add(profile_dict, digest)      # repeatedly; parts flushed as they fill
    manifest_key = writer.finish(complete=True, extra={...})
    """

    store: ObjectStore
    prefix: str
    run_id: str
    part_size: int
    _buffer: list[bytes] = field(default_factory=list)
    _parts: list[dict[str, Any]] = field(default_factory=list)
    _count: int = 0

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.run_id}"

    def add(self, profile: dict[str, Any], digest: str) -> None:
        record = {"digest": digest, "profile": profile}
        self._buffer.append(json.dumps(record, ensure_ascii=False, sort_keys=True).encode())
        self._count += 1
        if len(self._buffer) >= self.part_size:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        key = f"{self.base}/part-{len(self._parts):05d}.jsonl.gz"
        data = gzip.compress(b"\n".join(self._buffer) + b"\n", compresslevel=6, mtime=0)
        self.store.put(key, data)
        self._parts.append(
            {"key": key, "count": len(self._buffer), "sha256": hashlib.sha256(data).hexdigest()}
        )
        self._buffer.clear()

    def finish(self, *, complete: bool, extra: dict[str, Any]) -> str:
        """Flushes the last part, then writes the manifest; returns its key."""
        self._flush()
        manifest = {
            "schemaVersion": SCHEMA_VERSION,
            "runId": self.run_id,
            "createdAt": dt.datetime.now(dt.UTC).isoformat(),
            "complete": complete,
            "profiles": self._count,
            "parts": self._parts,
            **extra,
        }
        key = f"{self.base}/manifest.json"
        self.store.put(key, json.dumps(manifest, indent=1).encode())
        return key


class SnapshotReader:
    """Reads committed snapshots back, streaming part by part."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def latest_manifest_key(self) -> str | None:
        raw = self.store.get(f"{self.prefix}/LATEST.json")
        if raw is None:
            return None
        return str(json.loads(raw)["manifest"])

    def mark_latest(self, manifest_key: str) -> None:
        payload = {"schemaVersion": SCHEMA_VERSION, "manifest": manifest_key}
        self.store.put(f"{self.prefix}/LATEST.json", json.dumps(payload).encode())

    def records(self, manifest_key: str) -> Iterator[tuple[dict[str, Any], str]]:
        """(profile, digest) pairs of a snapshot; a corrupt part raises ValueError."""
        raw = self.store.get(manifest_key)
        if raw is None:
            raise ValueError(f"snapshot manifest {manifest_key} is missing")
        manifest = json.loads(raw)
        for part in manifest["parts"]:
            data = self.store.get(part["key"])
            if data is None or hashlib.sha256(data).hexdigest() != part["sha256"]:
                raise ValueError(f"snapshot part {part['key']} is missing or corrupt")
            for line in gzip.decompress(data).splitlines():
                if line:
                    record = json.loads(line)
                    yield record["profile"], record["digest"]

    def prune(self, keep: int) -> None:
        """Removes all but the newest `keep` snapshots (run ids sort by time)."""
        runs = sorted(
            {key.split("/")[2] for key in self.store.list(self.prefix + "/") if key.count("/") >= 3}
        )
        latest = self.latest_manifest_key()
        for run_id in runs[:-keep] if keep else runs:
            if latest and f"/{run_id}/" in latest:
                continue
            self.store.delete_prefix(f"{self.prefix}/{run_id}")
