"""Where snapshots live: one small interface, with a local directory behind
it on the embedded default and S3 (services.snapshot_differ.s3_store) in
production.

    store = open_store("s3://bucket/profilesync", s3=S3Settings(...))
    store.put("snapshots/a/part-00000.jsonl.gz", data)
    with store.open("snapshots/a/part-00000.jsonl.gz") as stream:   # streamed, not loaded
        ...

Keys use `/` separators and are relative to the store's root (the
directory, or the bucket prefix). Writes are atomic per object: a reader sees
the whole object or none of it.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from services.snapshot_differ.s3_store import S3Settings

__all__ = ["LocalDirectoryStore", "ObjectStore", "open_store"]

# (`list` is a method name below, so the type is spelled once here.)
_Names = list[str]


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None if there is no such object."""
        ...

    def open(self, key: str) -> IO[bytes] | None:
        """A stream of the object's bytes (the caller closes it), or None."""
        ...

    def list(self, prefix: str) -> _Names:
        """Keys under `prefix`, sorted."""
        ...

    def children(self, prefix: str) -> _Names:
        """Names of the "folders" directly under `prefix/`, sorted."""
        ...

    def delete_prefix(self, prefix: str) -> None: ...

    def url(self, key: str) -> str:
        """Where the object is, for people (`s3://…` or a file path)."""
        ...


class LocalDirectoryStore:
    """Objects as files under a root directory.

    store = LocalDirectoryStore(".state/snapshots")
    store.put("a/b.json", b"{}")
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = pathlib.Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> pathlib.Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write aside, fsync, rename: a crash leaves the old object or the new
        # one, never half a file.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, path)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def open(self, key: str) -> IO[bytes] | None:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            return None

    def list(self, prefix: str) -> _Names:
        base = self._path(prefix) if prefix else self.root
        directory = base if base.is_dir() else base.parent
        if not directory.exists():
            return []
        keys = (
            path.relative_to(self.root).as_posix()
            for path in directory.rglob("*")
            if path.is_file() and not path.name.startswith(".tmp-")
        )
        return sorted(key for key in keys if key.startswith(prefix))

    def children(self, prefix: str) -> _Names:
        directory = self._path(prefix)
        if not directory.is_dir():
            return []
        return sorted(path.name for path in directory.iterdir() if path.is_dir())

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def url(self, key: str) -> str:
        return str(self._path(key))


def open_store(location: str, *, s3: S3Settings | None = None) -> ObjectStore:
    """A store from the SNAPSHOT_STORE setting: `s3://bucket/prefix`,
    `file:///dir` or a directory path. S3 takes its other settings from `s3`."""
    if location.startswith("s3://"):
        from services.snapshot_differ.s3_store import S3ObjectStore, S3Settings

        return S3ObjectStore(s3 or S3Settings.from_location(location))
    if location.startswith("file://"):
        return LocalDirectoryStore(location.removeprefix("file://"))
    if "://" in location:
        raise ValueError(
            f"unsupported snapshot store {location!r} (use s3://bucket/prefix or file:///path)"
        )
    return LocalDirectoryStore(location)
