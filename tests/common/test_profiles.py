"""Canonical form, digests and shards: what makes two reads of a profile equal."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.common.profiles import canonical, digest, shard_of

BASE = {
    "id": "u1",
    "userPrincipalName": "a@contoso.onmicrosoft.com",
    "displayName": "A",
    "aboutMe": "Hello",
    "skills": ["Python", "Go"],
}


def test_list_order_whitespace_and_duplicates_do_not_change_the_digest() -> None:
    reordered = {**BASE, "skills": [" Go", "Python", "Go"], "aboutMe": "Hello  "}
    assert digest(reordered) == digest(BASE)


def test_unicode_normalisation_does_not_change_the_digest() -> None:
    composed = {**BASE, "aboutMe": "Caf\u00e9"}
    decomposed = {**BASE, "aboutMe": "Cafe\u0301"}
    assert digest(composed) == digest(decomposed)


def test_null_and_empty_are_the_same() -> None:
    assert digest({**BASE, "schools": None, "mail": None}) == digest(
        {**BASE, "schools": [], "mail": ""}
    )


def test_any_content_change_changes_the_digest() -> None:
    assert digest({**BASE, "skills": ["Python"]}) != digest(BASE)
    assert digest({**BASE, "department": "Sales"}) != digest(BASE)


def test_fields_outside_the_profile_are_ignored() -> None:
    assert digest({**BASE, "version": "x", "fetchTime": "now", "officeLocation": "Oslo"}) == digest(
        BASE
    )


def test_canonical_has_every_field() -> None:
    assert set(canonical({})) >= {"id", "aboutMe", "skills", "pastProjects", "schools", "interests"}


@given(st.text("0123456789abcdefABCDEF-", min_size=1, max_size=40), st.integers(1, 64))
def test_shard_is_stable_and_in_range(user_id: str, count: int) -> None:
    shard = shard_of(user_id, count)
    assert 0 <= shard < count
    assert shard_of(user_id, count) == shard
    assert shard_of(user_id.upper(), count) == shard_of(user_id.lower(), count)


def test_shards_split_users_roughly_evenly() -> None:
    counts = [0] * 4
    for index in range(4000):
        counts[shard_of(f"user-{index}", 4)] += 1
    assert min(counts) > 800
