"""Ready files: how a process started with port 0 tells its launcher where it listens."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

__all__ = ["write_ready_file"]


def write_ready_file(path: str, info: dict[str, Any]) -> None:
    """Writes `info` (plus the pid) as JSON atomically, so a reader never sees half a file."""
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.write_text(json.dumps({**info, "pid": os.getpid()}))
    temporary.replace(target)
