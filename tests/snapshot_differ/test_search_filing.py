"""What a run files for search, and when: every profile of a shard the index
has never seen, then only what changed; deletions leave the index with their
events, and a held run's deletions only when someone approves them."""

from __future__ import annotations

from harness import DifferHarness, make_profile, skip_where_search_is_missing

from profilesync.v1 import differ_pb2
from services.search.index import SearchIndex


async def _found(index: SearchIndex, query: str) -> set[str]:
    page = await index.search(query, 100, "")
    return {str(hit.profile["id"]) for hit in page.results}


async def test_a_first_run_files_every_profile_and_later_runs_file_their_changes(
    harness: DifferHarness,
) -> None:
    skip_where_search_is_missing(harness.redis)
    index = SearchIndex(harness.redis)
    profiles = [make_profile(i) for i in range(12)]
    harness.set_profiles(profiles)
    assert (await harness.runner.run_to_end(0, 1)).state == differ_pb2.SUCCEEDED
    assert await index.count() == 12
    assert await _found(index, "chess") == {str(p["id"]) for p in profiles}

    edited = make_profile(3, aboutMe="Kubernetes wizard", interests=["Sailing"])
    harness.set_profiles([*profiles[:3], edited, *profiles[4:11]])  # user 11 gone
    run = await harness.runner.run_to_end(0, 1)
    assert (run.counts.updated, run.counts.deleted) == (1, 1)
    assert await _found(index, "kubernetes") == {str(edited["id"])}
    assert str(edited["id"]) not in await _found(index, "chess")
    assert str(profiles[11]["id"]) not in await _found(index, "skill")
    assert await index.count() == 11


async def test_a_held_runs_deletions_leave_the_index_only_when_approved(
    harness: DifferHarness,
) -> None:
    skip_where_search_is_missing(harness.redis)
    index = SearchIndex(harness.redis)
    profiles = [make_profile(i) for i in range(10)]
    harness.set_profiles(profiles)
    await harness.runner.run_to_end(0, 1)

    newcomer = make_profile(20, skills=["Fortran"])
    harness.set_profiles([*profiles[:6], newcomer])
    held = await harness.runner.run_to_end(0, 1)
    assert held.state == differ_pb2.HELD_FOR_DELETES
    # The creation is out (its event was published), the deletions wait.
    assert await _found(index, "fortran") == {str(newcomer["id"])}
    assert await index.count() == 11

    approved = await harness.runner.approve_deletes(held.run_id)
    assert approved.state == differ_pb2.SUCCEEDED
    assert await index.count() == 7
    assert await _found(index, "chess") == {str(p["id"]) for p in [*profiles[:6], newcomer]}
