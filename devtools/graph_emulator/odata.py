"""Parsing of the OData query options the emulator implements: $select, $top, $skiptoken."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Iterable
from typing import Final

from devtools.graph_emulator.call import SYSTEM_QUERY_OPTIONS
from devtools.graph_emulator.errors import GraphError, bad_request
from devtools.graph_emulator.schema import PROFILE_PROPERTIES, canonical_property

MAX_PAGE_SIZE: Final = 999
DEFAULT_PAGE_SIZE: Final = 100


def reject_unsupported(options: dict[str, str], supported: Iterable[str]) -> None:
    allowed = set(supported)
    for name in options:
        if name in allowed:
            continue
        if name in SYSTEM_QUERY_OPTIONS:
            raise bad_request(
                f"The query option '{name}' is not supported on this resource by the emulator.",
                code="Request_UnsupportedQuery",
            )
        raise bad_request(
            f"The query specified in the URI is not valid. Query option '{name}' is not "
            "allowed. To allow it, set the 'AllowedQueryOptions' property on "
            "EnableQueryAttribute or QueryValidationSettings.",
            code="BadRequest",
        )


def parse_select(raw: str | None, *, collection: bool) -> list[str] | None:
    """Selected property names in declared spelling, or None for the default set."""
    if raw is None or not raw.strip():
        return None
    selected = _parse_select(raw, collection)
    return list(selected) if selected is not None else None


@functools.lru_cache(maxsize=512)
def _parse_select(raw: str, collection: bool) -> tuple[str, ...] | None:
    # Pure in its arguments and asked the same thing over and over by a sync; errors are
    # raised again each time (lru_cache does not keep exceptions).
    selected: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        declared = canonical_property(name)
        if declared is None:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.user'."
            )
        if declared not in selected:
            selected.append(declared)
    if collection and any(name in PROFILE_PROPERTIES for name in selected):
        # SharePoint-backed properties are only served for a single user.
        raise GraphError(501, "NotImplemented", "This operation target is not yet supported.")
    return tuple(selected) or None


def parse_top(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    text = raw.strip()
    if not text.isdigit() or len(text) > 9:
        raise bad_request(
            f"Invalid value '{raw}' for $top query option found. "
            "The $top query option requires a non-negative integer value."
        )
    value = int(text)
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise bad_request(
            f"Invalid page size specified: '{value}'. Must be between 1 and "
            f"{MAX_PAGE_SIZE} inclusive."
        )
    return value


def encode_skiptoken(after_id: str) -> str:
    payload = json.dumps({"v": 1, "after": after_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def decode_skiptoken(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = payload["after"]
        if payload.get("v") != 1 or not isinstance(after, str):
            raise ValueError("unexpected token content")
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise bad_request("Invalid $skiptoken value.") from exc
