"""The search index: profiles filed under their words in plain Redis structures.

    index = SearchIndex(redis)
    await index.apply(upserts=[profile_dict], deletes=["<user id>"])
    page = await index.search('skills:kubernetes "machine learning"', 20, "")
    for hit in page.results:
        print(hit.profile["displayName"], hit.score, hit.matched_fields)

Each profile has a small number; every word, adjacent word pair and whole
value of each searchable field records which profiles have it (a set while
few do, a bitmap once many do) and whether as a whole value. A query reads
the entries it needs in short steps and combines them in this process
(services/search/evaluate.py): bitmap AND/OR for the logic, scores added as
bit-sliced integers (field weight x match kind, services/search/fields.py),
then the best page is picked bit by bit. Its cost is bounded before it runs
(IndexSettings: its budget) and no step holds Redis for more than a moment.
Updates re-file only the profiles given, and only their entries that changed.
`rebuild` writes a new generation aside and switches to it at once, so
searches never see a half-built index. Key layout: services/search/redis_keys.py
and services/search/scripts.py (the scripts in services/search/lua/).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

from services.common.errors import AlreadyRunning, InvalidArgument, Unavailable
from services.common.profiles import LIST_FIELDS, TEXT_FIELDS, digest
from services.common.redis_client import as_bytes, as_text, unavailable_when_redis_is
from services.search import redis_keys
from services.search.analysis import profile_texts
from services.search.evaluate import Limits, Ranking, evaluate
from services.search.fields import (
    FIELD_WEIGHTS,
    PREFIX_MATCH,
    SEARCH_FIELDS,
    WHOLE_VALUE_MATCH,
    WORD_MATCH,
)
from services.search.matching import matched_fields
from services.search.paging import Cursor, TokenCodec
from services.search.plan import compile_query
from services.search.query import parse
from services.search.scripts import APPLY, RELEASE, SWAP

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "ApplyResult",
    "IndexSettings",
    "SearchHit",
    "SearchIndex",
    "SearchPage",
]

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
_GENERATION_NUMBER: Final = re.compile(r"g(\d+)")


@dataclass(frozen=True)
class IndexSettings:
    """Tuning knobs; the defaults suit tenants up to a few hundred thousand users."""

    # One query's budget, across all its terms; a query over it is refused
    # with INVALID_ARGUMENT naming the limit (docs/search.md, "Limits").
    # Distinct words all its prefix* together may expand to.
    max_prefix_words: int = 300
    # Index entries it may look up: each word, word pair and prefix expansion
    # in each field it searches.
    max_lookups: int = 3000
    # What reading the entries that exist may cost: the profiles each holds,
    # a common one (a bitmap) counted as 1 in 1024 of all profiles.
    max_read_cost: int = 10_000
    # Profiles whose text may be read to check phrases of three or more words.
    max_phrase_checks: int = 5_000
    # How long it may run (a sooner gRPC deadline stops it sooner).
    max_query_seconds: float = 2.0
    # Redis commands per round trip of a search: each round trip holds Redis
    # only for a moment, so other clients are answered in between.
    read_chunk: int = 64
    # Profiles per script call: bounds how long one call holds Redis.
    write_batch: int = 100
    # A rebuild that stops renewing its lease for this long is abandoned.
    rebuild_lease_seconds: float = 300.0


@dataclass(frozen=True)
class SearchHit:
    profile: dict[str, Any]  # as indexed: lowerCamelCase keys
    score: float
    matched_fields: tuple[str, ...]


@dataclass(frozen=True)
class SearchPage:
    results: tuple[SearchHit, ...]
    next_page_token: str  # "" on the last page
    total: int  # profiles matching the query


@dataclass(frozen=True)
class ApplyResult:
    """What an apply or rebuild did, counted in profiles."""

    written: int = 0  # indexed or re-indexed
    unchanged: int = 0  # same content as indexed already
    deleted: int = 0
    missing: int = 0  # deletions of profiles that were not indexed

    def __add__(self, other: ApplyResult) -> ApplyResult:
        return ApplyResult(
            self.written + other.written,
            self.unchanged + other.unchanged,
            self.deleted + other.deleted,
            self.missing + other.missing,
        )


def _stored(profile: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The profile as the index keeps it: known fields only, no nulls."""
    user_id = profile.get("id")
    if not isinstance(user_id, str) or not user_id:
        raise ValueError(f"{where}: a profile needs a non-empty string 'id'")
    stored: dict[str, Any] = {name: str(profile.get(name) or "") for name in TEXT_FIELDS}
    for name in LIST_FIELDS:
        stored[name] = [str(v) for v in (profile.get(name) or []) if v is not None]
    for name in ("version", "fetchTime"):
        if profile.get(name):
            stored[name] = str(profile[name])
    return stored


class SearchIndex:
    """Search over profiles kept in Redis; see the module docstring for an example."""

    def __init__(self, redis: aioredis.Redis, settings: IndexSettings | None = None) -> None:
        self._redis = redis
        self.settings = settings or IndexSettings()
        self._apply_script = APPLY.register(redis)
        self._swap_script = SWAP.register(redis)
        self._release_script = RELEASE.register(redis)
        self._codec: TokenCodec | None = None
        # The ranking rules travel with each search (the index stores only
        # which profile has what), in half points.
        self._ranking = Ranking(
            word=int(2 * WORD_MATCH),
            whole=int(2 * WHOLE_VALUE_MATCH),
            prefix=int(2 * PREFIX_MATCH),
            weights={name: int(FIELD_WEIGHTS[name]) for name in SEARCH_FIELDS},
        )
        self._limits = Limits(
            max_prefix_words=self.settings.max_prefix_words,
            max_lookups=self.settings.max_lookups,
            max_read_cost=self.settings.max_read_cost,
            max_phrase_checks=self.settings.max_phrase_checks,
            read_chunk=self.settings.read_chunk,
        )

    # -- writing -------------------------------------------------------------

    async def apply(
        self, upserts: Sequence[Mapping[str, Any]], deletes: Sequence[str]
    ) -> ApplyResult:
        """Indexes the given profiles (new or changed) and drops the deleted ids.

        Only these profiles are touched, and of them only entries that changed;
        a profile whose content is already indexed costs one hash read. An id
        both upserted and deleted ends up deleted.
        """
        entries = [self._upsert_args(p, f"upserts[{i}]") for i, p in enumerate(upserts)]
        for i, user_id in enumerate(deletes):
            if not isinstance(user_id, str) or not user_id:
                raise ValueError(f"deletes[{i}]: must be a non-empty user id")
            entries.append(("D", user_id))
        total = ApplyResult()
        for start in range(0, len(entries), self.settings.write_batch):
            chunk = entries[start : start + self.settings.write_batch]
            total += await self._write(chunk, "live", "")
        return total

    async def rebuild(self, profiles: AsyncIterable[Mapping[str, Any]]) -> ApplyResult:
        """Builds a fresh index from `profiles` aside, then switches to it atomically.

        Searches keep using the previous index until the switch. Profiles
        applied while the rebuild runs are written to both, and the rebuild does
        not overwrite them with its (older) source. Raises AlreadyRunning if
        another rebuild holds the lease.
        """
        with unavailable_when_redis_is("search index"):
            number = int(await self._redis.incr(redis_keys.GENSEQ))
            generation = f"g{number}"
            lease_ms = int(self.settings.rebuild_lease_seconds * 1000)
            if not await self._redis.set(redis_keys.BUILDING, generation, nx=True, px=lease_ms):
                raise AlreadyRunning("a rebuild of the search index is already running")
        total = ApplyResult()
        try:
            batch: list[tuple[str, ...]] = []
            async for profile in profiles:
                batch.append(self._upsert_args(profile, f"profile {total.written + len(batch)}"))
                if len(batch) >= self.settings.write_batch:
                    total += await self._write(batch, "build", generation)
                    batch = []
            if batch:
                total += await self._write(batch, "build", generation)
            with unavailable_when_redis_is("search index"):
                replaced = await self._swap_script(
                    keys=[redis_keys.BUILDING, redis_keys.CURRENT, redis_keys.EPOCH],
                    args=[generation, redis_keys.generation_prefix(generation) + "touched"],
                )
            if replaced is None:
                raise Unavailable("search index rebuild lost its lease; run it again")
        except BaseException:
            with contextlib.suppress(Exception):
                await self._release_script(keys=[redis_keys.BUILDING], args=[generation])
                await self._drop_generations(lambda n: n == number)
            raise
        # Older generations (the one replaced, any left by a crashed rebuild).
        await self._drop_generations(lambda n: n < number)
        return total

    def _upsert_args(self, profile: Mapping[str, Any], where: str) -> tuple[str, ...]:
        if not isinstance(profile, Mapping):
            raise ValueError(f"{where}: must be a profile mapping")
        stored = _stored(profile, where)
        return (
            "U",
            stored["id"],
            digest(stored),
            json.dumps(stored, ensure_ascii=False, separators=(",", ":")),
            *profile_texts(stored),
        )

    async def _write(
        self, entries: list[tuple[str, ...]], mode: str, generation: str
    ) -> ApplyResult:
        args: list[str] = [
            redis_keys.GENERATION,
            mode,
            generation,
            str(int(self.settings.rebuild_lease_seconds * 1000)),
            str(len(SEARCH_FIELDS)),
            *SEARCH_FIELDS,
        ]
        for entry in entries:
            args += entry
        with unavailable_when_redis_is("search index"):
            reply = await self._apply_script(
                keys=[
                    redis_keys.CURRENT,
                    redis_keys.BUILDING,
                    redis_keys.EPOCH,
                    redis_keys.GENSEQ,
                    redis_keys.DOCSEQ,
                ],
                args=args,
            )
        if reply and as_text(reply[0]) == "lost":
            raise Unavailable("search index rebuild lost its lease; run it again")
        written, unchanged, deleted, missing = (int(v) for v in reply)
        return ApplyResult(written, unchanged, deleted, missing)

    async def _drop_generations(self, doomed: Callable[[int], bool]) -> None:
        """Deletes the keys of generations whose number `doomed(n)` selects."""
        current = as_text(await self._redis.get(redis_keys.CURRENT) or b"")
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=redis_keys.GENERATION + "*", count=1000):
            name = as_text(key)[len(redis_keys.GENERATION) :].split(":", 1)[0]
            match = _GENERATION_NUMBER.fullmatch(name)
            if match is None or name == current or not doomed(int(match.group(1))):
                continue
            batch.append(as_bytes(key))
            if len(batch) >= 500:
                await self._redis.unlink(*batch)
                batch = []
        if batch:
            await self._redis.unlink(*batch)

    # -- reading -------------------------------------------------------------

    async def exists(self) -> bool:
        """Whether an index was ever built here (False after Redis lost it):
        then `rebuild` it from the newest snapshot rather than applying changes."""
        with unavailable_when_redis_is("search index"):
            return bool(await self._redis.exists(redis_keys.CURRENT))

    async def count(self) -> int:
        """Profiles in the live index."""
        with unavailable_when_redis_is("search index"):
            generation = await self._redis.get(redis_keys.CURRENT)
            if generation is None:
                return 0
            return int(
                await self._redis.hlen(redis_keys.generation_prefix(as_text(generation)) + "docs")
            )

    async def search(
        self,
        query: str,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str = "",
        time_limit: float | None = None,
    ) -> SearchPage:
        """One page of the profiles matching `query`, best first.

        Raises InvalidArgument for a malformed query (naming the position and
        the problem), a query over its budget (naming the limit), a page size
        outside 1..100, or a page token that was altered or belongs to another
        query; SearchTimedOut (DEADLINE_EXCEEDED) when it runs longer than
        `time_limit` or `settings.max_query_seconds` seconds, whichever is shorter.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(
                f"pageSize: must be between 1 and {MAX_PAGE_SIZE}, got {page_size}"
            )
        plan = compile_query(parse(query))
        seconds = self.settings.max_query_seconds
        if time_limit is not None:
            seconds = max(0.0, min(seconds, time_limit))
        with unavailable_when_redis_is("search index"):
            cursor = await self._decode(page_token, plan.digest) if page_token else None
            outcome = await evaluate(
                self._redis,
                plan,
                self._limits,
                self._ranking,
                size=page_size,
                cursor=cursor,
                seconds=seconds,
            )
        if outcome is None:
            return SearchPage((), "", 0)
        hits = tuple(
            SearchHit(profile, points / 2, tuple(matched_fields(plan.query, profile)))
            for _, points, profile in outcome.hits  # scores are in half points
        )
        token = ""
        if outcome.following > len(hits) and outcome.hits:
            doc, points, _ = outcome.hits[-1]
            token = (await self._token_codec()).encode(Cursor(plan.digest, points, doc))
        return SearchPage(hits, token, outcome.total)

    async def _decode(self, token: str, query_digest: str) -> Cursor:
        try:
            return (await self._token_codec()).decode(token, query_digest)
        except InvalidArgument:
            # The key may have been replaced (Redis emptied): read it again once.
            self._codec = None
            return (await self._token_codec()).decode(token, query_digest)

    async def _token_codec(self) -> TokenCodec:
        if self._codec is None:
            await self._redis.set(redis_keys.TOKEN_KEY, secrets.token_bytes(32), nx=True)
            self._codec = TokenCodec(as_bytes(await self._redis.get(redis_keys.TOKEN_KEY)))
        return self._codec
