"""SearchProfiles through a real gRPC server on loopback, as a LOB client calls it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from devtools.local_grpc import SearchOnlyServicer, start_server
from profilesync.v1 import extender_pb2, extender_pb2_grpc
from services.common.redis_client import connect
from services.profile_extender.servicer import binding as extender_binding
from services.search import SearchIndex

RANKED = [
    {"id": "exact-skill", "skills": ["Kubernetes"]},
    {"id": "skill-phrase", "skills": ["Kubernetes operators"]},
    {"id": "project", "pastProjects": ["Kubernetes migration"]},
    {"id": "title", "jobTitle": "Kubernetes Engineer"},
    {"id": "about-me", "aboutMe": "I help teams move to Kubernetes."},
    {"id": "prefix-only", "skills": ["Kubectl", "Kube"]},
]


async def _serve(index: SearchIndex) -> tuple[grpc.aio.Server, int]:
    return await start_server(extender_binding(SearchOnlyServicer(index)))


@pytest.fixture
async def stub(
    redis_client: aioredis.Redis, tenant: list[dict[str, Any]]
) -> AsyncIterator[extender_pb2_grpc.ProfileExtenderStub]:
    index = SearchIndex(redis_client)
    await index.apply(tenant, [])
    async for stub in _stub(index):
        yield stub


@pytest.fixture
async def small_stub(
    redis_client: aioredis.Redis,
) -> AsyncIterator[extender_pb2_grpc.ProfileExtenderStub]:
    index = SearchIndex(redis_client)
    await index.apply(RANKED, [])
    async for stub in _stub(index):
        yield stub


async def _stub(index: SearchIndex) -> AsyncIterator[extender_pb2_grpc.ProfileExtenderStub]:
    server, port = await _serve(index)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield extender_pb2_grpc.ProfileExtenderStub(channel)
    finally:
        await server.stop(None)


def _request(query: str, page_size: int = 0, token: str = "") -> extender_pb2.SearchProfilesRequest:
    return extender_pb2.SearchProfilesRequest(query=query, page_size=page_size, page_token=token)


async def test_results_carry_the_profile_score_and_matched_fields(
    stub: extender_pb2_grpc.ProfileExtenderStub,
) -> None:
    response = await stub.SearchProfiles(_request('interests:kubernetes "machine learning ops"'))
    assert response.total_size == 1
    (result,) = response.results
    assert result.profile.display_name == "Seán O'Brien"
    assert result.profile.id == "00000000-0000-4000-8000-000000000003"
    assert list(result.profile.skills) == ["Machine learning ops", "Node.js", "CI/CD"]
    assert result.profile.fetch_time.seconds > 0 and len(result.profile.version) == 64
    assert list(result.matched_fields) == ["skills", "interests", "aboutMe"]
    assert result.score > 0
    assert response.next_page_token == ""


async def test_ranking_a_skill_above_about_me_and_exact_above_prefix(
    redis_client: aioredis.Redis,
) -> None:
    index = SearchIndex(redis_client)
    await index.apply(RANKED, [])
    server, port = await _serve(index)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = extender_pb2_grpc.ProfileExtenderStub(channel)
            response = await stub.SearchProfiles(_request("kubernetes"))
            assert [(r.profile.id, r.score) for r in response.results] == [
                ("exact-skill", 15.0),  # the whole skill
                ("skill-phrase", 10.0),  # a word of a skill
                ("project", 8.0),
                ("title", 6.0),
                ("about-me", 2.0),  # a mention in About me counts least
            ]
            assert [list(r.matched_fields) for r in response.results] == [
                ["skills"],
                ["skills"],
                ["pastProjects"],
                ["jobTitle"],
                ["aboutMe"],
            ]
            response = await stub.SearchProfiles(_request("skills:kube*"))
            # "Kube" itself is the prefix as a whole skill; "Kubernetes" only
            # starts with it (half the weight). Equal scores keep index order.
            assert [(r.profile.id, r.score) for r in response.results] == [
                ("prefix-only", 15.0),
                ("exact-skill", 5.0),
                ("skill-phrase", 5.0),
            ]
    finally:
        await server.stop(None)


async def test_paging_with_tokens_sees_each_result_once(
    stub: extender_pb2_grpc.ProfileExtenderStub,
) -> None:
    seen: list[str] = []
    token = ""
    total = None
    while True:
        response = await stub.SearchProfiles(_request("university", 40, token))
        total = response.total_size
        seen += [r.profile.id for r in response.results]
        if not (token := response.next_page_token):
            break
    assert len(seen) == len(set(seen)) == total > 40


async def test_page_size_zero_means_twenty(stub: extender_pb2_grpc.ProfileExtenderStub) -> None:
    response = await stub.SearchProfiles(_request("university"))
    assert len(response.results) == 20


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_request('skills:python "machine learning'), "query: unclosed quote at position 14"),
        (_request("skils:python"), "query: unknown field 'skils' at position 0"),
        (_request("kube* OR"), "query: 'OR' needs a term after it at position 6"),
        (_request(""), "query: is required"),
        (_request("x" * 513), "query: must be at most 512 characters"),
        (_request("python", 101), "pageSize: must be between 0 and 100"),
        (_request("kubernetes", 10, "forged"), "pageToken: is not valid"),
    ],
)
async def test_bad_requests_get_invalid_argument_naming_the_problem(
    small_stub: extender_pb2_grpc.ProfileExtenderStub,
    request_: extender_pb2.SearchProfilesRequest,
    message: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await small_stub.SearchProfiles(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith(message)


async def test_redis_unreachable_is_unavailable(redis_url: str) -> None:
    from devtools.processes import free_port

    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    server, port = await _serve(SearchIndex(client))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await extender_pb2_grpc.ProfileExtenderStub(channel).SearchProfiles(_request("x"))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "search index: Redis is unavailable" in (caught.value.details() or "")
    finally:
        await server.stop(None)
        await client.aclose()
