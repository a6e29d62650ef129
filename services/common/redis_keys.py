"""Redis keys written by one service and read by another (one definition each)."""

from __future__ import annotations

from typing import Final

__all__ = ["LOB_WRITES_KEY"]

# Hash user id -> digest of the content the LOB app itself wrote through the
# extender; the differ marks a change arriving at exactly that digest as
# origin LOB and then forgets the entry.
LOB_WRITES_KEY: Final = "profilesync:lobwrites"
