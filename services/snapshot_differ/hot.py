"""Re-reads where edits happen: users whose profile just changed, read again
on a short cycle while a paced sweep goes on.

    hot = HotSet(first_seconds=15, quiet_seconds=600)
    hot.changed(["u1"])                  # the sweep saw u1 change, or the LOB app wrote it
    due = hot.due(limit=100)             # users to read again now, the most overdue first
    hot.reread(due, changed={"u1"})      # a change restarts u1's cycle; quiet, it doubles
    hot.stretch                          # > 1 while users rarely change again in the set

People edit their profiles in sittings: one edit is often followed by more
from the same person within minutes. A user seen changing is read again
after `first_seconds`, then after twice that while nothing changes, and so
on up to four times the first wait (a minute by default), and leaves
the set once quiet for `quiet_seconds`; another change starts the cycle
again. With the defaults: 15 s, 30 s, then every minute until 10 quiet
minutes. Follow-ups come minutes apart: waits that kept doubling would leave
the later ones for a long wait, and the extender caps the spend anyway. The
set lives in the sweeper's memory: a restart loses only how soon a follow-up
edit is seen, never the edit (the sweep reads everyone once per interval).

The cycle pays off only where edits do come in sittings, so the set measures
its yield (CycleYield): the share of the users leaving it whose profile
changed again while in it, over about the last 20. While a quarter or more
do, the waits are as above; below that they stretch in proportion, up to 8
times (a tenant whose users edit once and leave then spends about a quarter
of the re-reads), and shrink back as soon as follow-ups are seen again. A
crawler that revisits pages by how often each has changed, rather than
uniformly, does the same (Cho and Garcia-Molina, "Effective page refresh
policies for Web crawlers", ACM TODS 2003).

`HotRereads` runs the cycle beside a paced run: it reads the due users
through the extender (Graph, behind the LOB app's reads, within HOT_SHARE of
the budget: RateBudget.part) and compares them like any batch of the run
(compare.py; the design is in docs/sync-runs.md, "Hot re-reads").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
import redis.asyncio as aioredis

from profilesync.v1 import extender_pb2, extender_pb2_grpc
from services.common.cancellation import stop_if_cancelled
from services.common.profile_messages import profile_to_dict
from services.common.profiles import shard_of
from services.common.redis_client import as_text
from services.common.redis_keys import LOB_WRITES_KEY

__all__ = ["HotRereads", "HotSet"]

log = logging.getLogger(__name__)

# Users per re-read request (the extender's BatchGetProfiles takes up to 100).
REREAD_BATCH = 100
# The wait between re-reads doubles while the profile stays the same, up to this
# many times the first wait.
MAX_WAIT_FACTOR = 4


@dataclass
class CycleYield:
    """The share of the users leaving the set whose profile changed again while
    in it, as a moving average (each user weighs `weight`: about the last 20).

    At or above `full` the cycle runs at its shortest; below it the waits
    stretch in proportion, at most `max_stretch` times. Until measured, edits
    are assumed to come in sittings (the cycle's premise)."""

    full: float = 0.25
    max_stretch: float = 8.0
    weight: float = 0.05
    estimate: float = 0.25

    def observe(self, changed_again: bool) -> None:
        self.estimate += self.weight * (float(changed_again) - self.estimate)

    @property
    def stretch(self) -> float:
        """How many times longer than the defaults the waits are (1 to max_stretch)."""
        floor = self.full / self.max_stretch
        return self.full / min(self.full, max(floor, self.estimate))


@dataclass
class _Cycle:
    due: float
    period: float
    quiet_since: float
    # The user changed again since joining the set (the cycle's yield).
    changed_again: bool = False


class HotSet:
    def __init__(
        self,
        first_seconds: float,
        quiet_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first_seconds = first_seconds
        self.quiet_seconds = quiet_seconds
        self._clock = clock
        self._cycles: dict[str, _Cycle] = {}
        self.cycle_yield = CycleYield()

    def __len__(self) -> int:
        return len(self._cycles)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._cycles

    @property
    def stretch(self) -> float:
        """How many times longer than the defaults the waits are now."""
        return self.cycle_yield.stretch

    @property
    def yield_estimate(self) -> float:
        return self.cycle_yield.estimate

    def changed(self, user_ids: Iterable[str]) -> None:
        """These users changed just now: read them again after `first_seconds`
        (stretched while the yield is low)."""
        now = self._clock()
        first = self.first_seconds * self.stretch
        for uid in user_ids:
            again = uid in self._cycles
            self._cycles[uid] = _Cycle(now + first, first, now, changed_again=again)

    def due(self, limit: int) -> list[str]:
        now = self._clock()
        ready = sorted((c.due, uid) for uid, c in self._cycles.items() if c.due <= now)
        return [uid for _, uid in ready[:limit]]

    def next_due(self) -> float | None:
        """When the next re-read is due (the clock's time), None with nobody in the set."""
        return min((c.due for c in self._cycles.values()), default=None)

    def reread(self, user_ids: Iterable[str], changed: Collection[str]) -> None:
        """These users were read again; those in `changed` had changed."""
        now = self._clock()
        for uid in user_ids:
            cycle = self._cycles.get(uid)
            if cycle is None:
                continue
            if uid in changed:
                self.changed([uid])
            elif now - cycle.quiet_since >= self.quiet_seconds:
                del self._cycles[uid]
                self.cycle_yield.observe(cycle.changed_again)
            else:
                # The last re-read comes when the user has been quiet that long.
                longest = self.first_seconds * MAX_WAIT_FACTOR * self.stretch
                cycle.period = min(cycle.period * 2, longest)
                cycle.due = min(now + cycle.period, cycle.quiet_since + self.quiet_seconds)

    def forget(self, user_ids: Iterable[str]) -> None:
        for uid in user_ids:
            self._cycles.pop(uid, None)


class HotRereads:
    """The re-read cycle of one paced run (see the module doc)."""

    def __init__(
        self,
        hot: HotSet,
        extender: extender_pb2_grpc.ProfileExtenderStub,
        redis: aioredis.Redis,
        *,
        shard_index: int,
        shard_count: int,
        share_percent: int,
        compare: Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]],
    ) -> None:
        self.hot = hot
        self._extender = extender
        self._redis = redis
        self._shard = (shard_index, shard_count)
        self._share_percent = share_percent
        self._compare = compare
        self._lob_written: set[str] = set()
        self.reads = 0

    async def until(self, deadline: float, check: Callable[[], None]) -> None:
        """Keeps the cycle going (it runs beside) while a re-read falls due
        before `deadline` (time.monotonic()); `check` raises to stop early."""
        while time.monotonic() < deadline and (due := self.hot.next_due()) is not None:
            if due >= deadline:
                return
            check()
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    async def run(self) -> None:
        """Until cancelled (when the run's sweep has read everyone)."""
        tick = min(1.0, self.hot.first_seconds / 5)
        while True:
            await asyncio.sleep(tick)
            await self._note_lob_writes()
            due = self.hot.due(REREAD_BATCH)
            if due:
                await self._reread(due)
            stop_if_cancelled()

    async def _note_lob_writes(self) -> None:
        """Users the LOB app wrote since the last look join the set."""
        try:
            written = {as_text(uid) for uid in await self._redis.hkeys(LOB_WRITES_KEY)}
        except aioredis.RedisError as error:
            log.warning("hot re-reads: could not list LOB writes: %s", error)
            return
        index, count = self._shard
        fresh = [uid for uid in written - self._lob_written if shard_of(uid, count) == index]
        self._lob_written = written
        self.hot.changed(fresh)

    async def _reread(self, due: list[str]) -> None:
        request = extender_pb2.BatchGetProfilesRequest(
            ids=due, source=extender_pb2.GRAPH, budget_share_percent=self._share_percent
        )
        try:
            response = await self._extender.BatchGetProfiles(request)
        except grpc.aio.AioRpcError as error:
            # A user without a profile, or Graph unavailable: the sweep reads
            # them in its turn.
            log.info("hot re-read of %d user(s) skipped: %s", len(due), error.details())
            self.hot.forget(due)
            return
        self.reads += len(response.profiles)
        changed = await self._compare([profile_to_dict(p) for p in response.profiles])
        self.hot.reread(due, {str(p["id"]) for p in changed})
        self.hot.forget(response.not_found)
