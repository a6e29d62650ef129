"""Incremental updates and rebuilds: what a user sees after profiles change."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from search_fixtures import EDGE_PROFILES, as_profile
from search_reference import scan

from services.common.errors import AlreadyRunning
from services.search import IndexSettings, SearchIndex, redis_keys
from services.search.analysis import words


async def _ids(index: SearchIndex, query: str) -> set[str]:
    found, token = set(), ""
    while True:
        page = await index.search(query, 100, token)
        found |= {h.profile["id"] for h in page.results}
        if not (token := page.next_page_token):
            return found


def _edit(profile: dict[str, Any], **changes: Any) -> dict[str, Any]:
    edited = copy.deepcopy(profile)
    edited.update(changes)
    return as_profile(edited)


async def _index_state(redis: aioredis.Redis) -> dict[str, Any]:
    """Every index key's content: set members, bitmap bits, hash fields."""
    state: dict[str, Any] = {}
    async for key in redis.scan_iter(match=redis_keys.PREFIX + "gen:*"):
        kind = await redis.type(key)
        name = key.decode()
        if kind == b"set":
            state[name] = {int(m) for m in await redis.smembers(key)}
        elif kind == b"string":
            raw = await redis.get(key) or b""
            state[name] = {
                i * 8 + b for i, byte in enumerate(raw) for b in range(8) if byte & (0x80 >> b)
            }
        elif kind == b"hash":
            state[name] = await redis.hgetall(key)
        elif kind == b"zset":
            state[name] = set(await redis.zrange(key, 0, -1))
    return state


async def test_an_empty_index_finds_nothing(redis_client: aioredis.Redis) -> None:
    page = await SearchIndex(redis_client).search("kubernetes", 20, "")
    assert (page.results, page.next_page_token, page.total) == ((), "", 0)


async def test_old_value_no_longer_finds_a_profile_and_the_new_one_does(
    redis_client: aioredis.Redis, tenant: list[dict[str, Any]]
) -> None:
    index = SearchIndex(redis_client, IndexSettings(write_batch=7))
    profiles = tenant[:60]
    target = _edit(profiles[10], skills=["Zythology", "Kubernetes"], pastProjects=["Apollo"])
    profiles[10] = target
    await index.apply(profiles, [])
    assert await _ids(index, "zythology") == {target["id"]}

    edited = _edit(target, skills=["Quantum basket weaving", "Kubernetes"])
    result = await index.apply([edited], [])
    assert (result.written, result.unchanged) == (1, 0)
    assert await _ids(index, "zythology") == set()
    assert await _ids(index, "zyth*") == set()  # the word left the prefix list too
    assert await _ids(index, '"quantum basket weaving"') == {edited["id"]}
    assert await _ids(index, "skills:quantum") == {edited["id"]}
    profiles[10] = edited
    assert await _ids(index, "kubernetes") == set(scan(profiles, "kubernetes"))
    # The stored profile is the new one.
    page = await index.search("quantum", 5, "")
    assert page.results[0].profile["skills"] == ["Quantum basket weaving", "Kubernetes"]


async def test_searches_and_updates_go_on_after_redis_forgets_its_scripts(
    redis_client: aioredis.Redis, tenant: list[dict[str, Any]]
) -> None:
    """A restarted Redis (or SCRIPT FLUSH) has none of the index's scripts loaded."""
    index = SearchIndex(redis_client)
    profiles = tenant[:60]
    await index.apply(profiles, [])
    before = await _ids(index, "university OR skills:python")
    assert before == set(scan(profiles, "university OR skills:python"))

    await redis_client.script_flush()
    assert await _ids(index, "university OR skills:python") == before
    await redis_client.script_flush()
    edited = _edit(profiles[0], skills=["Zythology"])
    assert (await index.apply([edited], [])).written == 1
    assert await _ids(index, "zythology") == {edited["id"]}


async def test_deleted_profiles_disappear(
    redis_client: aioredis.Redis, tenant: list[dict[str, Any]]
) -> None:
    index = SearchIndex(redis_client)
    profiles = tenant[:80]
    await index.apply(profiles, [])
    gone = [p["id"] for p in profiles[:30]]
    result = await index.apply([], [*gone, "no-such-user"])
    assert (result.deleted, result.missing) == (30, 1)
    assert await index.count() == 50
    for query in ["university", "skills:python", "engineering OR sales OR marketing", "ma*"]:
        assert await _ids(index, query) == set(scan(profiles[30:], query)), query
    # Indexing them again brings them back.
    await index.apply(profiles[:30], [])
    assert await _ids(index, "university") == set(scan(profiles, "university"))


async def test_an_update_touches_only_the_changed_profile_and_entries(
    redis_client: aioredis.Redis, tenant: list[dict[str, Any]]
) -> None:
    index = SearchIndex(redis_client)
    profiles = tenant[:40]
    await index.apply(profiles, [])
    before = await _index_state(redis_client)
    epoch = await redis_client.get(redis_keys.EPOCH)

    # Same content again (a newer fetchTime only): nothing is re-filed.
    again = [dict(p, fetchTime="2026-01-01T00:00:00Z") for p in profiles]
    result = await index.apply(again, [])
    assert (result.written, result.unchanged) == (0, 40)
    assert await redis_client.get(redis_keys.EPOCH) == epoch
    after_same = await _index_state(redis_client)
    assert {k: v for k, v in after_same.items() if not k.endswith(":docs")} == {
        k: v for k, v in before.items() if not k.endswith(":docs")
    }

    # One skill of one profile changes: only that profile's entries for the
    # words that came and went change.
    target = next(p for p in profiles if len(p["skills"]) >= 2)
    edited = _edit(target, skills=[*target["skills"][1:], "Zythology"])
    await index.apply([edited], [])
    after = await _index_state(redis_client)
    doc = next(
        int(v)
        for k, h in after.items()
        if k.endswith(":ids")
        for i, v in h.items()
        if i.decode() == target["id"]
    )
    entry_keys = [k for k in before.keys() | after.keys() if k.split(":")[4] in ("s", "m", "x")]
    changed = {k for k in entry_keys if before.get(k) != after.get(k)}
    assert changed, "the edit changed nothing"
    for key in changed:
        gained = after.get(key, set()) - before.get(key, set())
        lost = before.get(key, set()) - after.get(key, set())
        kind = key.split(":")[4]
        members = {m // 2 for m in gained | lost} if kind == "s" else gained | lost
        assert members == {doc}, key
    dropped = set(words(target["skills"][0]))
    for key in changed:
        entry = key.split(":", 7)[-1]  # profilesync:search:gen:<g>:s:<field>:w:<word>
        assert key.split(":")[5] == "skills", key
        assert set(entry.split()) & (dropped | {"zythology"}), key
    assert any(k.endswith(":skills:w:zythology") for k in changed)


async def test_a_rebuild_switches_at_once_and_keeps_live_updates(
    redis_client: aioredis.Redis, tenant: list[dict[str, Any]]
) -> None:
    index = SearchIndex(redis_client, IndexSettings(write_batch=10))
    old_set, new_set = tenant[:100], tenant[50:200]
    await index.apply(old_set, [])
    halfway = asyncio.Event()
    resume = asyncio.Event()
    # Changed by the live path while the rebuild runs; the rebuild's source
    # still has the old values and must not win.
    updated = _edit(new_set[120], skills=["Zythology"])
    deleted = new_set[130]["id"]

    async def source() -> AsyncIterator[dict[str, Any]]:
        for n, profile in enumerate(new_set):
            if n == 75:
                halfway.set()
                await resume.wait()
            yield profile

    rebuild = asyncio.create_task(index.rebuild(source()))
    await asyncio.wait_for(halfway.wait(), 60)
    # Mid-rebuild, searches still see the whole previous index.
    assert await _ids(index, "university") == set(scan(old_set, "university"))
    with pytest.raises(AlreadyRunning):
        await index.rebuild(source())
    await index.apply([updated], [deleted])
    resume.set()
    result = await asyncio.wait_for(rebuild, 60)
    assert result.written == len(new_set) - 2  # the two changed live are left alone

    expected = [updated if p["id"] == updated["id"] else p for p in new_set]
    expected = [p for p in expected if p["id"] != deleted]
    for query in ["university", "zythology", "skills:python OR kube*", '"machine learning"']:
        assert await _ids(index, query) == set(scan(expected, query)), query
    assert await index.count() == len(expected)
    # The previous generation is gone from Redis.
    generations = {
        key.decode().split(":")[3]
        async for key in redis_client.scan_iter(match=redis_keys.PREFIX + "gen:*")
    }
    assert len(generations) == 1


async def test_a_failed_rebuild_leaves_the_index_as_it_was(
    redis_client: aioredis.Redis, tenant: list[dict[str, Any]]
) -> None:
    index = SearchIndex(redis_client, IndexSettings(write_batch=10))
    await index.apply(tenant[:50], [])

    async def broken() -> AsyncIterator[dict[str, Any]]:
        for profile in tenant[100:130]:
            yield profile
        raise RuntimeError("snapshot part unreadable")

    with pytest.raises(RuntimeError, match="unreadable"):
        await index.rebuild(broken())
    assert await _ids(index, "university") == set(scan(tenant[:50], "university"))
    generations = {
        key.decode().split(":")[3]
        async for key in redis_client.scan_iter(match=redis_keys.PREFIX + "gen:*")
    }
    assert len(generations) == 1
    # The lease was given back: a new rebuild can run.
    await index.rebuild(_aiter(tenant[:20]))
    assert await index.count() == 20


async def _aiter(items: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield item


async def test_the_first_apply_creates_the_index(redis_client: aioredis.Redis) -> None:
    index = SearchIndex(redis_client)
    await index.apply([as_profile(EDGE_PROFILES[0])], [])
    assert await _ids(index, "angstrom") == {EDGE_PROFILES[0]["id"]}


@pytest.mark.parametrize(
    ("upserts", "deletes", "message"),
    [
        ([{"displayName": "No Id"}], [], r"upserts\[0\]: a profile needs a non-empty string 'id'"),
        ([{"id": ""}], [], r"upserts\[0\]"),
        ([], ["ok", ""], r"deletes\[1\]: must be a non-empty user id"),
    ],
)
async def test_bad_input_is_refused_with_its_place(
    redis_client: aioredis.Redis, upserts: list[Any], deletes: list[Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await SearchIndex(redis_client).apply(upserts, deletes)


async def test_null_fields_are_indexed_as_empty(redis_client: aioredis.Redis) -> None:
    index = SearchIndex(redis_client)
    await index.apply(
        [
            {
                "id": "u1",
                "displayName": "Null Person",
                "aboutMe": None,
                "skills": None,
                "schools": [None, "MIT"],
            }
        ],
        [],
    )
    page = await index.search("mit", 5, "")
    assert [h.profile["schools"] for h in page.results] == [["MIT"]]
    assert page.results[0].profile["aboutMe"] == ""


async def test_an_entry_kept_as_a_bitmap_goes_back_to_a_set_intact(
    redis_client: aioredis.Redis,
) -> None:
    """An entry becomes a bitmap once more than 256 profiles have it, and a set again
    once fewer than 64 do; whole values (the skill "Rust" itself) survive both moves."""
    profiles = [
        {"id": f"p{i:03d}", "skills": ["Rust" if i % 3 else "Rust services"]} for i in range(300)
    ]
    index = SearchIndex(redis_client)
    await index.apply(profiles, [])
    generation = (await redis_client.get(redis_keys.CURRENT)).decode()
    key = redis_keys.PREFIX + f"gen:{generation}:%s:skills:w:rust"
    assert await redis_client.exists(key % "m") and not await redis_client.exists(key % "s")
    gone = [p["id"] for p in profiles[:250]]
    await index.apply([], gone)
    assert await redis_client.exists(key % "s") and not await redis_client.exists(key % "m")
    assert not await redis_client.exists(key % "x")
    kept = profiles[250:]
    page = await index.search("skills:rust", 100, "")
    assert {h.profile["id"]: h.score for h in page.results} == scan(kept, "skills:rust")
    assert {h.score for h in page.results} == {15.0, 10.0}


async def test_a_batch_files_what_one_profile_at_a_time_would(
    redis_client: aioredis.Redis,
) -> None:
    """A batch applies each entry's changes once, at its end: the index it leaves
    is the one that filing its profiles one call at a time leaves, even when the
    batch names a profile twice, deletes one it just added, or makes an entry a
    bitmap within the batch."""
    common = [{"id": f"c{i:03d}", "skills": ["Rust" if i % 10 else "Go"]} for i in range(300)]
    first = [
        as_profile({"id": "keep", "skills": ["Rust"], "aboutMe": "I write Rust"}),
        as_profile({"id": "gone", "skills": ["Zig"]}),
        as_profile({"id": "same", "department": "Research & Development"}),
    ]
    upserts = [
        *common,
        as_profile({"id": "new", "skills": ["Zythology"]}),
        as_profile({"id": "new", "skills": ["Zythology studies"], "jobTitle": "Brewer"}),
        _edit(first[0], skills=["Rust services"]),
        first[2],
        as_profile({"id": "brief", "skills": ["Quokka"]}),
    ]
    deletes = ["brief", "gone", "never"]

    async def filed(write_batch: int) -> dict[str, Any]:
        await redis_client.flushdb()
        index = SearchIndex(redis_client, IndexSettings(write_batch=write_batch))
        await index.apply(first, [])
        result = await index.apply(upserts, deletes)
        assert (result.deleted, result.missing) == (2, 1)
        final = [*common, upserts[301], upserts[302], first[2]]
        for query in ["rust", "skills:rust", "zythology", "zig OR quokka", "brewer", "go"]:
            assert await _ids(index, query) == set(scan(final, query)), query
        return await _index_state(redis_client)

    at_once = await filed(1000)
    one_by_one = await filed(1)
    assert at_once == one_by_one
    rust = [k for k in at_once if k.endswith(":m:skills:w:rust")]
    assert rust, "the common skill became a bitmap within the batch"
