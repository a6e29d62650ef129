"""Redis keys written by one service and read by another (one definition each)."""

from __future__ import annotations

from typing import Final

__all__ = [
    "BASELINE_PREFIX",
    "LOB_EDITS_KEY",
    "LOB_WRITES_KEY",
    "READ_THROUGH_PREFIX",
    "baseline_key",
    "shard_label",
]

# Hash user id -> digest of the content the LOB app itself wrote through the
# extender; the differ marks a change arriving at exactly that digest as
# origin LOB and then forgets the entry.
LOB_WRITES_KEY: Final = "profilesync:lobwrites"

# Hash user id -> {"profile": ..., "writtenAt": ISO time}: the profile as Graph
# answered right after a LOB edit, served to LOB reads until a committed sync
# has read the user again (the differ forgets older entries at each commit).
LOB_EDITS_KEY: Final = "profilesync:lobedits"

# + user id: a profile read from Graph for a LOB read because no sync had
# stored it yet, kept for a while (TTL) so that it is read from Graph once.
READ_THROUGH_PREFIX: Final = "profilesync:readthrough:"

# The committed baseline of each shard (written by the differ, read by the
# extender for LOB reads); the layout is described in
# services/snapshot_differ/baseline.py.
BASELINE_PREFIX: Final = "profilesync:baseline"


def shard_label(shard_index: int, shard_count: int) -> str:
    return f"s{shard_index}of{shard_count}"


def baseline_key(shard: str, kind: str) -> str:
    """A key of one shard's baseline; the shard is a hash tag, so every key of
    a shard lives in one Redis Cluster slot."""
    return f"{BASELINE_PREFIX}:{{{shard}}}:{kind}"
