"""The marker of a run held for deletes: what approving it needs to finish it.

    profilesync:held:{<shard>}  ->  {"schemaVersion": 1, "runId", "generation",
                                   "parent", "manifest"}

At most one per shard. A held run has published its creates and updates and
written its snapshot; its draft baseline (with its list of deletions) waits
in Redis. The marker is removed in the same transaction that commits the
draft (BaselineDraft.commit), so "approved" and "committed" never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis.asyncio as aioredis

from services.snapshot_differ.baseline import held_key

__all__ = ["HeldRun"]


@dataclass(frozen=True)
class HeldRun:
    """held = HeldRun(run_id, generation, parent, manifest); await held.save(redis, shard)"""

    run_id: str
    # The draft generation waiting to be committed.
    generation: str
    # The baseline generation it was compared against; the approval is
    # refused if another run committed since.
    parent: str | None
    manifest: str

    @staticmethod
    def key(shard: str) -> str:
        return held_key(shard)

    async def save(self, redis: aioredis.Redis, shard: str) -> None:
        document = {
            "schemaVersion": 1,
            "runId": self.run_id,
            "generation": self.generation,
            "parent": self.parent,
            "manifest": self.manifest,
        }
        await redis.set(self.key(shard), json.dumps(document))

    @classmethod
    async def load(cls, redis: aioredis.Redis, shard: str) -> HeldRun | None:
        raw = await redis.get(cls.key(shard))
        if raw is None:
            return None
        document = json.loads(raw)
        return cls(
            run_id=document["runId"],
            generation=document["generation"],
            parent=document.get("parent"),
            manifest=document["manifest"],
        )

    @classmethod
    async def clear(cls, redis: aioredis.Redis, shard: str) -> None:
        await redis.delete(cls.key(shard))
