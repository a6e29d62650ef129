"""Snapshots in Amazon S3 (or anything that speaks its API), through boto3.

    settings = S3Settings.from_env(EnvReader())   # SNAPSHOT_STORE=s3://bucket/prefix
    store = S3ObjectStore(settings)

Credentials come from boto3's usual chain: IRSA's web identity token on EKS,
the instance profile, or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Every
object is written with the configured server-side encryption; a single PUT
is atomic, so a reader never sees half a part or half a manifest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Any, cast

from services.common.settings import ConfigError, EnvReader

__all__ = ["SSE_MODES", "S3ObjectStore", "S3Settings"]

# (`list` is a method name below, so the type is spelled once here.)
_Names = list[str]

# S3_SSE values: S3-managed keys, KMS keys, dual-layer KMS; "none" leaves it
# to the bucket's default encryption.
SSE_MODES = ("none", "AES256", "aws:kms", "aws:kms:dsse")
DELETE_CHUNK = 1000  # DeleteObjects takes at most 1,000 keys


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    # Key prefix inside the bucket, "" or ending in "/".
    prefix: str
    region: str
    # Another S3-compatible endpoint (MinIO, a VPC endpoint, moto in tests).
    endpoint_url: str | None = None
    sse: str = "none"
    # KMS key id or ARN, with sse aws:kms; None = the account's aws/s3 key.
    kms_key_id: str | None = None

    @staticmethod
    def parse_location(location: str) -> tuple[str, str]:
        """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/")."""
        rest = location.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ConfigError(
                f"SNAPSHOT_STORE must name a bucket: s3://bucket/prefix, got {location!r}"
            )
        prefix = prefix.strip("/")
        return bucket, f"{prefix}/" if prefix else ""

    @classmethod
    def from_location(cls, location: str) -> S3Settings:
        bucket, prefix = cls.parse_location(location)
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return cls(bucket=bucket, prefix=prefix, region=region)

    @classmethod
    def from_env(cls, env: EnvReader, location: str) -> S3Settings:
        bucket, prefix = cls.parse_location(location)
        region = (
            env.optional("S3_REGION")
            or env.optional("AWS_REGION")
            or env.optional("AWS_DEFAULT_REGION")
        )
        if not region:
            raise ConfigError("S3_REGION (or AWS_REGION) is required with an s3:// SNAPSHOT_STORE")
        sse = env.text("S3_SSE", "none")
        if sse not in SSE_MODES:
            raise ConfigError(f"S3_SSE must be one of {', '.join(SSE_MODES)}, got {sse!r}")
        kms_key_id = env.optional("S3_SSE_KMS_KEY_ID")
        if kms_key_id and not sse.startswith("aws:kms"):
            raise ConfigError("S3_SSE_KMS_KEY_ID needs S3_SSE=aws:kms or aws:kms:dsse")
        endpoint = env.optional("S3_ENDPOINT_URL")
        if endpoint and not endpoint.startswith(("https://", "http://")):
            raise ConfigError(f"S3_ENDPOINT_URL must be an http(s) URL, got {endpoint!r}")
        return cls(bucket, prefix, region, endpoint, sse, kms_key_id)


class S3ObjectStore:
    """The ObjectStore interface on one bucket and prefix.

    store = S3ObjectStore(S3Settings("snapshots-bucket", "profilesync/", "eu-west-1"))
    store.put("snapshots/x/manifest.json", b"{}")
    """

    def __init__(self, settings: S3Settings, client: Any | None = None) -> None:
        # Imported here: boto3 takes a while to load, and only S3 needs it.
        import boto3
        from botocore.config import Config

        self.settings = settings
        self._client = client or boto3.client(
            "s3",
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            config=Config(
                retries={"mode": "standard", "max_attempts": 6},
                connect_timeout=10,
                read_timeout=60,
            ),
        )
        self._write_args: dict[str, str] = {}
        if settings.sse != "none":
            self._write_args["ServerSideEncryption"] = settings.sse
            if settings.kms_key_id:
                self._write_args["SSEKMSKeyId"] = settings.kms_key_id

    def _key(self, key: str) -> str:
        return self.settings.prefix + key

    def put(self, key: str, data: bytes) -> None:
        self._client.put_object(
            Bucket=self.settings.bucket, Key=self._key(key), Body=data, **self._write_args
        )

    def _get_object(self, key: str) -> Any | None:
        from botocore.exceptions import ClientError

        try:
            return self._client.get_object(Bucket=self.settings.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise

    def get(self, key: str) -> bytes | None:
        response = self._get_object(key)
        if response is None:
            return None
        with response["Body"] as body:
            return cast(bytes, body.read())

    def open(self, key: str) -> IO[bytes] | None:
        response = self._get_object(key)
        return None if response is None else cast(IO[bytes], response["Body"])

    def _pages(self, prefix: str, **extra: str) -> Any:
        paginator = self._client.get_paginator("list_objects_v2")
        return paginator.paginate(Bucket=self.settings.bucket, Prefix=self._key(prefix), **extra)

    def list(self, prefix: str) -> _Names:
        skip = len(self.settings.prefix)
        keys = [
            obj["Key"][skip:] for page in self._pages(prefix) for obj in page.get("Contents", [])
        ]
        return sorted(keys)

    def children(self, prefix: str) -> _Names:
        base = self._key(prefix.rstrip("/") + "/")
        names = []
        for page in self._pages(prefix.rstrip("/") + "/", Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(base) :].rstrip("/"))
        return sorted(names)

    def delete_prefix(self, prefix: str) -> None:
        # Everything in the "folder", never a sibling that merely starts alike.
        keys = [self._key(key) for key in self.list(prefix.rstrip("/") + "/")]
        for start in range(0, len(keys), DELETE_CHUNK):
            chunk = keys[start : start + DELETE_CHUNK]
            response = self._client.delete_objects(
                Bucket=self.settings.bucket,
                Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True},
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise OSError(
                    f"could not delete s3://{self.settings.bucket}/{first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )

    def url(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{self._key(key)}"
