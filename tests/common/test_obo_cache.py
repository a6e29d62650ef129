"""On-behalf-of tokens kept by the user token that asked for them."""

from __future__ import annotations

from services.common.obo_cache import REFRESH_MARGIN_SECONDS, OboTokenCache

GRAPH = ("https://graph.microsoft.com/.default",)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_same_user_token_gets_the_cached_token_until_shortly_before_it_expires() -> None:
    clock = Clock()
    cache = OboTokenCache(clock=clock)
    cache.put("alice-jwt", GRAPH, "graph-token-for-alice", expires_in=3600)
    assert cache.get("alice-jwt", GRAPH) == "graph-token-for-alice"
    clock.now += 3600 - REFRESH_MARGIN_SECONDS - 1
    assert cache.get("alice-jwt", GRAPH) == "graph-token-for-alice"
    clock.now += 2
    assert cache.get("alice-jwt", GRAPH) is None
    assert len(cache) == 0


def test_another_user_token_or_other_scopes_miss() -> None:
    cache = OboTokenCache(clock=Clock())
    cache.put("alice-jwt", GRAPH, "graph-token-for-alice", expires_in=3600)
    assert cache.get("bob-jwt", GRAPH) is None
    assert cache.get("alice-jwt", ("https://other.example/.default",)) is None


def test_a_short_lived_token_is_used_for_half_its_life() -> None:
    clock = Clock()
    cache = OboTokenCache(clock=clock)
    cache.put("alice-jwt", GRAPH, "short", expires_in=120)
    clock.now += 59
    assert cache.get("alice-jwt", GRAPH) == "short"
    clock.now += 2
    assert cache.get("alice-jwt", GRAPH) is None


def test_the_least_recently_used_entries_go_first_and_user_tokens_are_not_kept() -> None:
    cache = OboTokenCache(max_entries=2, clock=Clock())
    cache.put("alice-jwt", GRAPH, "a", expires_in=3600)
    cache.put("bob-jwt", GRAPH, "b", expires_in=3600)
    assert cache.get("alice-jwt", GRAPH) == "a"  # alice is now the most recent
    cache.put("carol-jwt", GRAPH, "c", expires_in=3600)
    assert cache.get("bob-jwt", GRAPH) is None
    assert cache.get("alice-jwt", GRAPH) == "a" and cache.get("carol-jwt", GRAPH) == "c"
    assert "alice-jwt" not in repr(vars(cache))
