"""Page tokens: opaque to callers, signed so a forged or altered one is refused.

A token names where the previous page ended in the ranking, (score,
document number), and the query it belongs to. The next page starts right
after that point in the index as it is then, so profiles that did not
change are seen exactly once even if others change in between. It carries
no profile data.

    codec = TokenCodec(key)
    token = codec.encode(Cursor("a1b2", 25, 42))
    cursor = codec.decode(token, "a1b2")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Final

from services.common.errors import InvalidArgument

__all__ = ["Cursor", "TokenCodec"]

_VERSION: Final = 1
_MAC_BYTES: Final = 16


@dataclass(frozen=True)
class Cursor:
    query: str  # Plan.digest
    score: int  # in half points, as the index computes it
    doc: int


class TokenCodec:
    """Encodes and checks page tokens with an HMAC key shared by all replicas."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, cursor: Cursor) -> str:
        payload = json.dumps(
            [_VERSION, cursor.query, cursor.score, cursor.doc], separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode().rstrip("=")

    def decode(self, token: str, query: str) -> Cursor:
        """The cursor in `token`; InvalidArgument if it was not issued for this query."""
        invalid = InvalidArgument(
            "pageToken: is not valid; pass the nextPageToken of the previous page unchanged"
        )
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, self._mac(payload)):
            raise invalid
        try:
            fields = json.loads(payload)
        except ValueError:
            raise invalid from None
        if (
            not isinstance(fields, list)
            or len(fields) != 4
            or fields[0] != _VERSION
            or not isinstance(fields[1], str)
            or not all(type(f) is int and f >= 0 for f in fields[2:])
        ):
            raise invalid
        cursor = Cursor(fields[1], fields[2], fields[3])
        if cursor.query != query:
            raise InvalidArgument(
                "pageToken: belongs to a different query; send it with the same query"
            )
        return cursor
