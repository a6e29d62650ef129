"""The snapshot store: S3 against moto's real S3 HTTP API on loopback, the
local directory on disk, the snapshot format (versioned, streamed, checked)
and retention."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from harness import DifferHarness, make_profile

from profilesync.v1 import differ_pb2, notifier_pb2
from services.common.settings import ConfigError, EnvReader
from services.snapshot_differ.object_store import LocalDirectoryStore, ObjectStore, open_store
from services.snapshot_differ.retention import prune_snapshots
from services.snapshot_differ.run import SyncRunner
from services.snapshot_differ.s3_store import S3ObjectStore, S3Settings
from services.snapshot_differ.snapshot import (
    SnapshotError,
    SnapshotReader,
    SnapshotWriter,
    set_digest,
)

BUCKET = "profilesync-snapshots"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    saved = {name: os.environ.get(name) for name in keys}
    os.environ.update(keys)  # boto3 signs requests even for moto
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_settings(s3_endpoint: str, request: pytest.FixtureRequest) -> S3Settings:
    client = boto3.client("s3", region_name="eu-west-1", endpoint_url=s3_endpoint)
    bucket = f"{BUCKET}-{abs(hash(request.node.name)) % 10**8}"
    client.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return S3Settings(bucket, "profilesync/", "eu-west-1", endpoint_url=s3_endpoint)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path, s3_endpoint: str) -> ObjectStore:
    if request.param == "local":
        return LocalDirectoryStore(tmp_path / "store")
    settings: S3Settings = request.getfixturevalue("s3_settings")
    return S3ObjectStore(settings)


def test_objects_round_trip(store: ObjectStore) -> None:
    store.put("snapshots/a/run1/part-00000.jsonl.gz", b"one")
    store.put("snapshots/a/run1/manifest.json", b"{}")
    store.put("snapshots/a/run2/part-00000.jsonl.gz", b"two")
    store.put("snapshots/a/LATEST.json", b"{}")
    assert store.get("snapshots/a/run1/part-00000.jsonl.gz") == b"one"
    assert store.get("snapshots/a/nothing") is None and store.open("nothing") is None
    stream = store.open("snapshots/a/run2/part-00000.jsonl.gz")
    assert stream is not None
    with stream:
        assert stream.read() == b"two"
    assert store.children("snapshots/a") == ["run1", "run2"]
    assert store.list("snapshots/a/run1/") == [
        "snapshots/a/run1/manifest.json",
        "snapshots/a/run1/part-00000.jsonl.gz",
    ]
    store.delete_prefix("snapshots/a/run1")
    assert store.children("snapshots/a") == ["run2"]
    assert store.get("snapshots/a/LATEST.json") == b"{}"


def test_s3_objects_carry_the_configured_encryption(
    s3_settings: S3Settings, s3_endpoint: str
) -> None:
    client = boto3.client("s3", region_name="eu-west-1", endpoint_url=s3_endpoint)
    S3ObjectStore(S3Settings(**{**vars(s3_settings), "sse": "AES256"})).put("a", b"x")
    head = client.head_object(Bucket=s3_settings.bucket, Key="profilesync/a")
    assert head["ServerSideEncryption"] == "AES256"

    kms = S3Settings(**{**vars(s3_settings), "sse": "aws:kms", "kms_key_id": "alias/profilesync"})
    S3ObjectStore(kms).put("b", b"y")
    head = client.head_object(Bucket=s3_settings.bucket, Key="profilesync/b")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/profilesync")


def test_s3_settings_come_from_the_environment() -> None:
    env = EnvReader(
        {
            "S3_REGION": "eu-central-1",
            "S3_ENDPOINT_URL": "https://s3.eu-central-1.amazonaws.com",
            "S3_SSE": "aws:kms",
            "S3_SSE_KMS_KEY_ID": "arn:aws:kms:eu-central-1:1:key/k",
        }
    )
    settings = S3Settings.from_env(env, "s3://bucket/some/prefix/")
    assert (settings.bucket, settings.prefix, settings.region) == (
        "bucket",
        "some/prefix/",
        "eu-central-1",
    )
    assert settings.sse == "aws:kms" and settings.kms_key_id.endswith("key/k")
    assert S3Settings.from_env(EnvReader({"AWS_REGION": "us-west-2"}), "s3://b").prefix == ""
    for environ, message in [
        ({}, "S3_REGION"),
        ({"S3_REGION": "x", "S3_SSE": "rot13"}, "S3_SSE must be one of"),
        ({"S3_REGION": "x", "S3_SSE_KMS_KEY_ID": "k"}, "needs S3_SSE=aws:kms"),
        ({"S3_REGION": "x", "S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL"),
    ]:
        with pytest.raises(ConfigError, match=message):
            S3Settings.from_env(EnvReader(environ), "s3://bucket/p")
    with pytest.raises(ConfigError, match="must name a bucket"):
        S3Settings.from_env(EnvReader({"S3_REGION": "x"}), "s3:///p")
    with pytest.raises(ValueError, match="unsupported snapshot store"):
        open_store("gs://bucket/p")


async def test_a_snapshot_streams_back_with_its_digest(store: ObjectStore) -> None:
    profiles = [make_profile(i) for i in range(23)]
    writer = SnapshotWriter(store, "snapshots/shard-0-of-1", "run-a", part_size=10)
    for profile in profiles:
        await writer.add(profile, f"d{profile['id']}")
    key = await writer.finish(complete=True, extra={"shardIndex": 0})
    reader = SnapshotReader(store, "snapshots/shard-0-of-1")
    manifest = reader.manifest(key)
    assert manifest["kind"] == "profilesync.snapshot.manifest"
    assert manifest["schemaVersion"] == 2 and manifest["runId"] == "run-a"
    assert [part["count"] for part in manifest["parts"]] == [10, 10, 3]
    assert manifest["contentDigest"] == set_digest(
        iter([(p["id"], f"d{p['id']}") for p in reversed(profiles)])
    )
    records = list(reader.records(key))
    assert [p for p, _ in records] == profiles
    batches = [len(batch) async for batch in reader.batches(key, 8)]
    assert batches == [8, 8, 7]
    reader.mark_latest(key, "0-0")
    assert reader.latest_manifest_key() == key


def test_a_version_1_snapshot_is_still_read(tmp_path: pathlib.Path) -> None:
    """Written exactly as the first release wrote it (no `kind`)."""
    store = LocalDirectoryStore(tmp_path)
    lines = [json.dumps({"digest": "d1", "profile": {"id": "u1", "skills": ["A"]}})]
    data = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
    store.put("snapshots/shard-0-of-1/r1/part-00000.jsonl.gz", data)
    manifest = {
        "schemaVersion": 1,
        "runId": "r1",
        "createdAt": "2026-01-01T00:00:00+00:00",
        "complete": True,
        "profiles": 1,
        "parts": [
            {
                "key": "snapshots/shard-0-of-1/r1/part-00000.jsonl.gz",
                "count": 1,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ],
        "failedUserIds": [],
    }
    store.put("snapshots/shard-0-of-1/r1/manifest.json", json.dumps(manifest).encode())
    store.put(
        "snapshots/shard-0-of-1/LATEST.json",
        json.dumps(
            {"schemaVersion": 1, "manifest": "snapshots/shard-0-of-1/r1/manifest.json"}
        ).encode(),
    )
    reader = SnapshotReader(store, "snapshots/shard-0-of-1")
    key = reader.latest_manifest_key()
    assert key is not None
    assert list(reader.records(key)) == [({"id": "u1", "skills": ["A"]}, "d1")]


def _corrupt(store: LocalDirectoryStore, key: str, change: Any) -> None:
    path = store.root / key
    path.write_bytes(change(path.read_bytes()))


async def test_newer_or_damaged_snapshots_are_refused_by_name(tmp_path: pathlib.Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    writer = SnapshotWriter(store, "p", "r1", part_size=5)
    for i in range(6):
        await writer.add(make_profile(i), "d")
    key = await writer.finish(complete=True, extra={})
    reader = SnapshotReader(store, "p")

    _corrupt(store, "p/r1/part-00001.jsonl.gz", lambda b: b[:-3] + b"xyz")
    with pytest.raises(SnapshotError, match=r"part-00001.*corrupt"):
        list(reader.records(key))
    store.delete_prefix("p/r1/part-00001.jsonl.gz")
    with pytest.raises(SnapshotError, match=r"part-00001.jsonl.gz is missing"):
        list(reader.records(key))

    _corrupt(store, key, lambda b: json.dumps({**json.loads(b), "schemaVersion": 9}).encode())
    with pytest.raises(SnapshotError, match="schemaVersion 9, newer than this release"):
        reader.manifest(key)
    with pytest.raises(SnapshotError, match="is missing"):
        reader.manifest("p/none/manifest.json")


def test_retention_keeps_the_newest_and_the_protected(tmp_path: pathlib.Path) -> None:
    store = LocalDirectoryStore(tmp_path)
    for run in ("r1", "r2", "r3", "r4", "r5"):
        store.put(f"p/{run}/part-00000.jsonl.gz", b"x")
        store.put(f"p/{run}/manifest.json", b"{}")
    store.put("p/r6/part-00000.jsonl.gz", b"a run that died before its manifest")
    removed = prune_snapshots(store, "p", keep=2, protect={"r1"})
    assert removed == ["r2", "r3", "r6"]
    assert store.children("p") == ["r1", "r4", "r5"]


async def test_a_sync_against_s3_writes_reads_back_and_prunes(
    harness: DifferHarness, s3_settings: S3Settings
) -> None:
    store = S3ObjectStore(s3_settings)
    harness.runner = SyncRunner(
        harness.settings,
        harness.redis,
        store,
        harness.runner.extender,
        harness.runner.notifier,
    )
    profiles = [make_profile(i) for i in range(16)]
    harness.set_profiles(profiles)
    run = await harness.runner.run_to_end(0, 1)
    assert run.state == differ_pb2.SUCCEEDED
    manifest = SnapshotReader(store, "snapshots/shard-0-of-1").manifest(run.snapshot)
    assert manifest["profiles"] == 16 and len(manifest["parts"]) == 3
    assert store.url(run.snapshot).startswith(f"s3://{s3_settings.bucket}/profilesync/snapshots/")

    for _ in range(4):  # retention 3
        await harness.runner.run_to_end(0, 1)
    assert len(store.children("snapshots/shard-0-of-1")) == 3

    # Redis lost: the baseline comes back from S3, and only the real change shows.
    await harness.new_events()
    keys = [k async for k in harness.redis.scan_iter(match="profilesync:baseline:*")]
    await harness.redis.delete(*keys)
    harness.set_profiles([*profiles[:15], make_profile(15, aboutMe="Changed")])
    run = await harness.runner.run_to_end(0, 1)
    events = await harness.new_events()
    assert [notifier_pb2.ChangeKind.Name(e.kind) for e in events] == ["UPDATED"]
    assert run.counts.unchanged == 15
