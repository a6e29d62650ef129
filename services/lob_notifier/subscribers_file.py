"""Subscribers declared in a file (NOTIFIER_SUBSCRIBERS_FILE), as the chart
mounts them from a Kubernetes Secret.

The file is a JSON list; `startAt` is optional ("latest", the default, or "oldest"):

    [
      {"name": "crm", "url": "https://crm.example.com/hooks/profiles", "secret": "..."},
      {"name": "dw", "url": "https://dw.example.com/in", "secret": "...", "startAt": "oldest"}
    ]

    entries = load_subscribers_file("/etc/profilesync/subscribers.json")

Every problem is reported as a ConfigError naming the file, the entry and the field.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import dataclass
from typing import Any

from services.common.settings import ConfigError
from services.lob_notifier.subscriber_rules import name_problem, secret_problem, url_problem

__all__ = ["FileSubscriber", "file_fingerprint", "load_subscribers_file", "parse_subscribers"]

_FIELDS = {"name", "url", "secret", "startAt"}
_START_AT = {"latest", "oldest"}


@dataclass(frozen=True)
class FileSubscriber:
    name: str
    url: str
    secret: str
    start_at: str = "latest"

    def __repr__(self) -> str:  # never show the secret
        return f"FileSubscriber(name={self.name!r}, url={self.url!r}, start_at={self.start_at!r})"


def file_fingerprint(path: str) -> str | None:
    """A digest of the file's content; None when it cannot be read."""
    try:
        return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def load_subscribers_file(path: str) -> tuple[FileSubscriber, ...]:
    label = f"NOTIFIER_SUBSCRIBERS_FILE ({path})"
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{label}: cannot read it: {error}") from None
    return parse_subscribers(text, label)


def parse_subscribers(text: str, label: str) -> tuple[FileSubscriber, ...]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{label}: not valid JSON: {error}") from None
    if not isinstance(document, list):
        raise ConfigError(f"{label}: must be a JSON list of subscribers")
    entries: list[FileSubscriber] = []
    seen: set[str] = set()
    for index, item in enumerate(document):
        entry = _entry(item, f"{label}: entry {index}")
        if entry.name in seen:
            raise ConfigError(f"{label}: entry {index}: name {entry.name!r} appears twice")
        seen.add(entry.name)
        entries.append(entry)
    return tuple(entries)


def _entry(item: Any, where: str) -> FileSubscriber:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: must be an object with name, url and secret")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {unknown[0]!r} (known: name, url, secret, startAt)"
        )
    values: dict[str, str] = {}
    for key in ("name", "url", "secret"):
        value = item.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: {key} is required and must be a string")
        values[key] = value
    for key, check in (("name", name_problem), ("url", url_problem), ("secret", secret_problem)):
        problem = check(values[key])
        if problem is not None:
            raise ConfigError(f"{where}: {key} {problem}")
    start_at = item.get("startAt", "latest")
    if start_at not in _START_AT:
        raise ConfigError(f'{where}: startAt must be "latest" or "oldest", got {start_at!r}')
    return FileSubscriber(values["name"], values["url"], values["secret"], start_at)
