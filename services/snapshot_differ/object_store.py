"""Where snapshots live: one small interface, a local directory behind it
(the embedded default); S3 implements the same interface.

Writes are atomic per object (a reader sees the whole object or none).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from typing import Protocol

__all__ = ["LocalDirectoryStore", "ObjectStore", "open_store"]


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None if there is no such object."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix`, sorted."""
        ...

    def delete_prefix(self, prefix: str) -> None: ...


class LocalDirectoryStore:
    """Objects as files under a root directory; keys use `/` separators."""

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

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        directory = base if base.is_dir() else base.parent
        if not directory.exists():
            return []
        keys = (
            str(path.relative_to(self.root))
            for path in directory.rglob("*")
            if path.is_file() and not path.name.startswith(".tmp-")
        )
        return sorted(key for key in keys if key.startswith(prefix))

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def open_store(location: str) -> ObjectStore:
    """A store from a location setting: `file:///dir` or a directory path."""
    if location.startswith("file://"):
        return LocalDirectoryStore(location.removeprefix("file://"))
    if "://" in location:
        raise ValueError(f"unsupported snapshot store {location!r} (use file:///path)")
    return LocalDirectoryStore(location)
