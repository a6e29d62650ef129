"""Running a plan: short reads from Redis, the logic and ranking here.

    outcome = await evaluate(redis, plan, limits, ranking, size=20, cursor=None)

A search reads the index in steps: the live generation, the prefix expansions,
which entries exist, their bitmaps or sets, the texts that phrases of three or
more words are checked against, and the page's profiles. Every round trip is
a few plain commands (at most `Limits.read_chunk`) or two calls of a small
read-only script, each of bounded size, so Redis answers other clients in
between and no search holds it for more than a moment, however large the
index. Before each step the query's budget and its deadline are checked: a
query over budget is refused (QuerySyntaxError, naming the limit) before it
costs anything more, and one past its deadline stops (SearchTimedOut).
Combining, scoring and ranking are integer bit operations in this process
(services/search/bitmaps.py, services/search/ranking.py).

The reads are not one atomic snapshot. The index's change counter is read first
and last; a search that overlapped a change runs again, up to `ATTEMPTS` times,
so a profile re-indexed meanwhile is seen in one form or the other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import grpc
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from services.common.errors import ProfileSyncError
from services.common.redis_client import as_text
from services.search import redis_keys
from services.search.bitmaps import Sliced, docs_of, from_bitmap, from_docs, from_members
from services.search.paging import Cursor
from services.search.plan import Plan, PlanGroup, PlanTerm
from services.search.query import QuerySyntaxError
from services.search.ranking import after_cursor, best
from services.search.scripts import READ_ENTRIES

__all__ = ["ATTEMPTS", "Limits", "Outcome", "Ranking", "SearchTimedOut", "evaluate"]

ATTEMPTS: Final = 3
# Fields per HMGET (entry counts, phrase texts, the page's profiles).
_FIELDS_PER_COMMAND: Final = 500
# Script calls per round trip, and what one call may read: about a millisecond
# of Redis' time each at a million profiles. An entry costs the profiles it
# has (a set's members), at most _DENSE_COST (a bitmap, copied whole).
_CALLS_PER_TRIP: Final = 2
_CALL_COST: Final = 2_000
_DENSE_COST: Final = 500
_ENTRIES_PER_CALL: Final = 64
# An entry of more profiles than this is read on its own: GET if a bitmap,
# else SSCAN pages of about _SET_PAGE members.
_SCRIPT_SET_LIMIT: Final = 1_000
_SET_PAGE: Final = 250

Lookup = tuple[str, str]  # (field, entry)


class SearchTimedOut(ProfileSyncError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


@dataclass(frozen=True)
class Limits:
    """One query's budget (IndexSettings documents each)."""

    max_prefix_words: int
    max_lookups: int
    max_read_cost: int
    max_phrase_checks: int
    read_chunk: int


@dataclass(frozen=True)
class Ranking:
    """Points in half units: a word in a value, a whole value, a word found by prefix*."""

    word: int
    whole: int
    prefix: int
    weights: Mapping[str, int]


@dataclass(frozen=True)
class Outcome:
    total: int  # profiles matching
    following: int  # matches from this page on
    hits: tuple[tuple[int, int, dict[str, Any]], ...]  # (doc, score in half points, profile)


class _Reader:
    """Redis reads in bounded round trips, the deadline checked before each."""

    def __init__(self, redis: aioredis.Redis, limits: Limits, deadline: float, seconds: float):
        self._redis = redis
        self._chunk = limits.read_chunk
        self._deadline = deadline
        self._seconds = seconds

    def check(self) -> None:
        if time.monotonic() > self._deadline:
            raise SearchTimedOut(
                f"query: stopped after {self._seconds:g} s, the time it may take; "
                "narrow it with a field (e.g. skills:...) or fewer terms"
            )

    async def run(self, commands: Sequence[tuple[Any, ...]], per_trip: int = 0) -> list[Any]:
        """Runs `(method, *args)` commands, `per_trip` (or `read_chunk`) per round trip."""
        step = per_trip or self._chunk
        replies: list[Any] = []
        for start in range(0, len(commands), step):
            self.check()
            replies += await self._trip(commands[start : start + step])
        return replies

    async def _trip(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        for attempt in (1, 2):
            pipe = self._redis.pipeline(transaction=False)
            for name, *args in commands:
                getattr(pipe, name)(*args)
            try:
                return list(await pipe.execute())
            except NoScriptError:
                if attempt == 2:
                    raise
                # Redis restarted or its script cache was flushed.
                await self._redis.script_load(READ_ENTRIES.source)
        raise AssertionError("unreachable")

    async def hmget(self, key: str, names: Sequence[Any]) -> list[Any]:
        commands = [
            ("hmget", key, list(names[i : i + _FIELDS_PER_COMMAND]))
            for i in range(0, len(names), _FIELDS_PER_COMMAND)
        ]
        return [value for reply in await self.run(commands) for value in reply]


@dataclass
class _Run:
    """One attempt at a plan against one generation."""

    reader: _Reader
    plan: Plan
    limits: Limits
    ranking: Ranking
    base: str
    docs: int  # document numbers handed out (bitmaps are this many bits)
    expansions: dict[str, list[str]] = field(default_factory=dict)
    entries: dict[Lookup, tuple[int, int]] = field(default_factory=dict)
    phrases: dict[tuple[tuple[str, str, str], str], tuple[int, int]] = field(default_factory=dict)
    results: dict[tuple[tuple[str, str, str], bool], tuple[Sliced, int]] = field(
        default_factory=dict
    )

    # -- budget and reads ------------------------------------------------------

    async def expand_prefixes(self) -> None:
        prefixes = sorted(
            (t for t in self.plan.terms if t.kind == "P"), key=lambda t: t.term.position
        )
        if not prefixes:
            return
        most = self.limits.max_prefix_words
        lex = self.base + "lex"
        replies = await self.reader.run(
            [
                (
                    "zrangebylex",
                    lex,
                    b"[" + p.text.encode(),
                    b"[" + p.text.encode() + b"\xff",
                    0,
                    most + 1,
                )
                for p in prefixes
            ]
        )
        for term, words in zip(prefixes, replies, strict=True):
            if len(words) > most:
                raise QuerySyntaxError(
                    f"prefix '{term.text}*' matches too many words",
                    term.term.position,
                    f"more than {most}; add letters to narrow it",
                )
        total = 0
        for term, words in zip(prefixes, replies, strict=True):
            total += len(words)
            if total > most:
                raise QuerySyntaxError(
                    "the prefixes match too many words together",
                    term.term.position,
                    f"more than {most} in all; use fewer prefixes or add letters to them",
                )
            self.expansions[term.text] = [as_text(w) for w in words]

    def lookups_of(self, term: PlanTerm) -> list[Lookup]:
        if term.kind == "T":
            return [(f, term.text) for f in term.fields]
        if term.kind == "P":
            return [(f, f"w:{w}") for f in term.fields for w in self.expansions[term.text]]
        found = [(f, pair) for f in term.fields for pair in term.pairs]
        for f in term.fields:
            whole = term.whole_value_entry(f)
            if whole:
                found.append((f, whole))
        return found

    async def existing(self) -> dict[Lookup, int]:
        """The plan's entries the index has, with how many profiles have each."""
        wanted: dict[Lookup, None] = {}
        for term in sorted(self.plan.terms, key=lambda t: t.term.position):
            for lookup in self.lookups_of(term):
                wanted[lookup] = None
            if len(wanted) > self.limits.max_lookups:
                raise QuerySyntaxError(
                    "the query looks up too many index entries",
                    term.term.position,
                    f"more than {self.limits.max_lookups} (each word, pair and prefix "
                    "expansion in each field searched); name a field, e.g. skills:..., "
                    "or use fewer terms",
                )
        order = list(wanted)
        counts = await self.reader.hmget(self.base + "n", [f"{f}:{e}" for f, e in order])
        return {
            lookup: int(count)
            for lookup, count in zip(order, counts, strict=True)
            if count is not None
        }

    def cost(self, count: int) -> int:
        """What reading an entry of `count` profiles costs: a set, its members; a
        common entry, a bitmap, about what a set of 1 in 1024 profiles costs (it
        is copied and combined whole, without a step per profile). Entries turn
        into bitmaps past 1 in 128 profiles (at least 256; lua/apply.lua)."""
        if count <= max(256, self.docs // 128):
            return count
        return max(1, self.docs // 1024)

    def live(self, term: PlanTerm, present: Mapping[Lookup, int]) -> bool:
        """Whether the term can match at all, judged by which entries exist."""
        if term.kind == "V":
            return any(all((f, p) in present for p in term.pairs) for f in term.fields)
        return any(lookup in present for lookup in self.lookups_of(term))

    async def fetch(self, live_groups: Sequence[PlanGroup], present: Mapping[Lookup, int]) -> None:
        """Reads the bitmaps or sets of the entries the live groups use, in
        script calls of bounded size."""
        uses: list[tuple[PlanTerm, bool]] = []
        for group in live_groups:
            uses += [(t, True) for t in group.required] + [(t, False) for t in group.excluded]
        whole_needed: dict[Lookup, bool] = {}
        read_cost = 0
        for term, scored in sorted(uses, key=lambda use: use[0].term.position):
            for lookup in self.lookups_of(term):
                if lookup not in present:
                    continue
                if lookup not in whole_needed:
                    read_cost += self.cost(present[lookup])
                # A longer word found by prefix* scores the same as a part or whole value.
                whole = scored and not (term.kind == "P" and lookup[1] != f"w:{term.text}")
                whole_needed[lookup] = whole_needed.get(lookup, False) or whole
            if read_cost > self.limits.max_read_cost:
                raise QuerySyntaxError(
                    "the query's terms are filed under too many profiles together",
                    term.term.position,
                    f"reading them costs more than {self.limits.max_read_cost} (a profile "
                    "per entry, or a bitmap's worth for a common one); name a field, "
                    "e.g. skills:..., or use fewer or longer prefixes",
                )
        large = [lookup for lookup in whole_needed if present[lookup] > _SCRIPT_SET_LIMIT]
        await self.fetch_large(large)
        calls: list[list[Lookup]] = []
        cost = _CALL_COST
        for lookup in whole_needed:
            if lookup in self.entries:
                continue
            weight = min(present[lookup], _DENSE_COST) + 1
            if cost + weight > _CALL_COST or len(calls[-1]) >= _ENTRIES_PER_CALL:
                calls.append([])
                cost = 0
            calls[-1].append(lookup)
            cost += weight
        commands = []
        for batch in calls:
            args = [self.base]
            for f, entry in batch:
                args += [f"{f}:{entry}", "1" if whole_needed[(f, entry)] else "0"]
            # CURRENT is declared only to route the call to the index's slot
            # on a Redis Cluster (every key of the index shares its hash tag).
            commands.append(("evalsha", READ_ENTRIES.sha, 1, redis_keys.CURRENT, *args))
        replies = await self.reader.run(commands, _CALLS_PER_TRIP)
        for batch, reply in zip(calls, replies, strict=True):
            for i, lookup in enumerate(batch):
                dense, dense_whole, listed = reply[3 * i : 3 * i + 3]
                if dense is not None:
                    self.entries[lookup] = (from_bitmap(dense), from_bitmap(dense_whole))
                else:
                    self.entries[lookup] = from_members(listed)

    async def fetch_large(self, large: list[Lookup]) -> None:
        """Entries of many profiles: bitmaps with GET; a large set a page at a time
        (SSCAN), since SMEMBERS of thousands would hold Redis for milliseconds."""
        if not large:
            return
        commands: list[tuple[Any, ...]] = []
        for f, entry in large:
            key = f"{f}:{entry}"
            commands += [("get", f"{self.base}m:{key}"), ("get", f"{self.base}x:{key}")]
        replies = await self.reader.run(commands)
        scanning: dict[Lookup, list[bytes]] = {}
        for i, lookup in enumerate(large):
            dense, dense_whole = replies[2 * i], replies[2 * i + 1]
            if dense is not None:
                self.entries[lookup] = (from_bitmap(dense), from_bitmap(dense_whole))
            else:
                scanning[lookup] = []
        cursors = dict.fromkeys(scanning, 0)
        while cursors:
            pending = list(cursors)
            pages = await self.reader.run(
                [
                    ("sscan", f"{self.base}s:{f}:{entry}", cursors[(f, entry)], None, _SET_PAGE)
                    for f, entry in pending
                ],
                _CALLS_PER_TRIP,
            )
            for lookup, (cursor, members) in zip(pending, pages, strict=True):
                scanning[lookup] += members
                if int(cursor) == 0:
                    del cursors[lookup]
                else:
                    cursors[lookup] = int(cursor)
        for lookup, members in scanning.items():
            self.entries[lookup] = from_members(b",".join(members))

    async def check_phrases(self, live_groups: Sequence[PlanGroup]) -> None:
        """Phrases of three or more words: profiles having all the word pairs in a
        field are candidates; whole values are known; the rest have their analysed
        text read (HMGET, a few hundred at a time) and searched here."""
        terms: dict[tuple[str, str, str], PlanTerm] = {}
        for group in live_groups:
            for term in (*group.required, *group.excluded):
                if term.kind == "V":
                    terms.setdefault(term.key, term)
        pending: list[tuple[PlanTerm, str, int, int]] = []  # term, field, rest, whole
        checks = 0
        for term in sorted(terms.values(), key=lambda t: t.term.position):
            for f in term.fields:
                parts = [self.entries.get((f, p)) for p in term.pairs]
                if not all(parts):
                    continue
                candidates = -1
                for part in parts:
                    candidates &= part[0] if part else 0
                whole_entry = term.whole_value_entry(f)
                known = self.entries.get((f, whole_entry)) if whole_entry else None
                whole = known[0] if known else 0
                rest = candidates & ~whole
                checks += rest.bit_count()
                if checks > self.limits.max_phrase_checks:
                    raise QuerySyntaxError(
                        f'phrase "{term.text}" needs too many profiles checked',
                        term.term.position,
                        f"more than {self.limits.max_phrase_checks} profiles have all its word "
                        "pairs; name a field or add a word that narrows it",
                    )
                pending.append((term, f, rest, whole))
        for term, f, rest, whole in pending:
            docs = docs_of(rest)
            names = [b"%d" % doc for doc in docs]
            texts = await self.reader.hmget(f"{self.base}t:{f}", names) if docs else []
            inside, entire = f" {term.text} ".encode(), f"| {term.text} |".encode()
            found: list[int] = []
            found_whole: list[int] = []
            for doc, text in zip(docs, texts, strict=True):
                if text and inside in text:
                    found.append(doc)
                    if entire in text:
                        found_whole.append(doc)
            self.phrases[(term.key, f)] = (whole | from_docs(found), whole | from_docs(found_whole))

    # -- logic and scores ------------------------------------------------------

    def _add_match(self, score: Sliced, f: str, member: int, whole: int) -> None:
        weight = self.ranking.weights[f]
        score.add_const(self.ranking.word * weight, member)
        score.add_const((self.ranking.whole - self.ranking.word) * weight, whole)

    def term(self, term: PlanTerm, scored: bool) -> tuple[Sliced, int]:
        """(scores, members) of one term; cached, since OR'd groups often share terms."""
        cache_key = (term.key, scored)
        if cache_key in self.results:
            return self.results[cache_key]
        score, member = Sliced(), 0
        for f in term.fields:
            if term.kind == "T":
                got = self.entries.get((f, term.text))
                if got:
                    member |= got[0]
                    if scored:
                        self._add_match(score, f, *got)
            elif term.kind == "V":
                found = self.phrases.get((term.key, f))
                if found and found[0]:
                    member |= found[0]
                    if scored:
                        self._add_match(score, f, *found)
            else:
                exact = self.entries.get((f, f"w:{term.text}"))
                longer = 0
                for word in self.expansions[term.text]:
                    if word != term.text:
                        got = self.entries.get((f, f"w:{word}"))
                        if got:
                            longer |= got[0]
                if exact:
                    member |= exact[0]
                    if scored:
                        self._add_match(score, f, *exact)
                if longer:
                    member |= longer
                    if scored:
                        only = longer & ~exact[0] if exact else longer
                        score.add_const(self.ranking.prefix * self.ranking.weights[f], only)
        self.results[cache_key] = (score, member)
        return score, member

    def group(self, group: PlanGroup) -> tuple[Sliced, int] | None:
        """Required terms all match (scores add up); excluded terms must not."""
        found = [self.term(t, True) for t in group.required]
        if not all(member for _, member in found):
            return None
        member = -1
        for _, m in found:
            member &= m
        for t in group.excluded:
            member &= ~self.term(t, False)[1]
        score = found[0][0].copy()
        for other, _ in found[1:]:
            score.add(other)
        return score, member


async def _attempt(
    reader: _Reader,
    plan: Plan,
    limits: Limits,
    ranking: Ranking,
    size: int,
    cursor: Cursor | None,
) -> tuple[Outcome | None, bool]:
    """One run of the plan: (outcome, whether the index changed meanwhile)."""
    generation, epoch, docs = await reader.run(
        [("get", redis_keys.CURRENT), ("get", redis_keys.EPOCH), ("get", redis_keys.DOCSEQ)]
    )
    if generation is None:
        return None, False
    base = redis_keys.generation_prefix(as_text(generation))
    run = _Run(reader, plan, limits, ranking, base, int(docs or 0))
    await run.expand_prefixes()
    present = await run.existing()
    live_groups = [g for g in plan.groups if all(run.live(t, present) for t in g.required)]
    await run.fetch(live_groups, present)
    await run.check_phrases(live_groups)
    reader.check()

    groups = [found for found in (run.group(g) for g in live_groups) if found is not None]
    if not groups:
        score, matches = Sliced(), 0
    elif len(groups) == 1:
        score, matches = groups[0]
    else:
        # A profile matching several groups scores the sum of those groups.
        score, matches = Sliced(), 0
        for group_score, member in groups:
            score.add(group_score.masked(member))
            matches |= member
    pool = after_cursor(score, matches, cursor) if cursor else matches
    ranked = best(score, pool, size) if pool else []
    reader.check()
    stored = await reader.hmget(run.base + "docs", [d for d, _ in ranked]) if ranked else []
    epoch_now, generation_now = await reader.run(
        [("get", redis_keys.EPOCH), ("get", redis_keys.CURRENT)]
    )
    changed = (epoch_now, generation_now) != (epoch, generation)
    hits = tuple(
        (doc, points, json.loads(raw))
        for (doc, points), raw in zip(ranked, stored, strict=True)
        if raw is not None
    )
    return Outcome(matches.bit_count(), pool.bit_count(), hits), changed


async def evaluate(
    redis: aioredis.Redis,
    plan: Plan,
    limits: Limits,
    ranking: Ranking,
    *,
    size: int,
    cursor: Cursor | None,
    seconds: float,
) -> Outcome | None:
    """The page of `plan`'s matches after `cursor`; None when nothing was ever indexed.

    Raises QuerySyntaxError when the query is over budget, SearchTimedOut when it
    runs past `seconds`.
    """
    reader = _Reader(redis, limits, time.monotonic() + seconds, seconds)
    outcome: Outcome | None = None
    for _ in range(ATTEMPTS):
        outcome, changed = await _attempt(reader, plan, limits, ranking, size, cursor)
        if not changed:
            break
    return outcome
