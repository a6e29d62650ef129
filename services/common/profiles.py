"""What a profile is, independent of transport: the fields, their canonical
form, the content digest (`version`) and the shard a user belongs to.

The extender and the differ both use this module, so a digest computed when
a profile is read equals the one the differ compares against the baseline.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Mapping
from typing import Any

__all__ = [
    "IDENTITY_FIELDS",
    "LIST_FIELDS",
    "PROFILE_FIELDS",
    "TEXT_FIELDS",
    "canonical",
    "digest",
    "shard_of",
]

# lowerCamelCase names, as Graph and the REST API spell them.
IDENTITY_FIELDS = ("id", "userPrincipalName", "displayName", "mail", "jobTitle", "department")
TEXT_FIELDS = (*IDENTITY_FIELDS, "aboutMe")
# SharePoint-backed multi-value properties: order carries no meaning.
LIST_FIELDS = ("skills", "pastProjects", "schools", "interests")
PROFILE_FIELDS = (*TEXT_FIELDS, *LIST_FIELDS)


def _text(value: Any) -> str:
    if value is None:
        return ""
    # NFC so the same text typed on two systems compares equal.
    return unicodedata.normalize("NFC", str(value)).strip()


def canonical(profile: Mapping[str, Any]) -> dict[str, Any]:
    """A stable form of the profile's content: every field present, text
    NFC-normalised and stripped, lists de-duplicated and sorted."""
    result: dict[str, Any] = {name: _text(profile.get(name)) for name in TEXT_FIELDS}
    for name in LIST_FIELDS:
        items = {_text(item) for item in (profile.get(name) or [])}
        items.discard("")
        result[name] = sorted(items)
    return result


def digest(profile: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical form; equal digests mean equal content."""
    encoded = json.dumps(canonical(profile), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def shard_of(user_id: str, shard_count: int) -> int:
    """The shard a user belongs to: stable across runs, processes and releases."""
    if shard_count <= 1:
        return 0
    value = int.from_bytes(hashlib.sha256(user_id.lower().encode()).digest()[:8], "big")
    return value % shard_count
