"""The SearchProfiles RPC on top of SearchIndex, so the servicer is one line:

async def SearchProfiles(self, request, context):
    return await search_profiles(self._search_index, request, context)
"""

from __future__ import annotations

from typing import Any

import grpc

from profilesync.v1 import extender_pb2
from services.common.profile_messages import profile_from_dict
from services.search.index import DEFAULT_PAGE_SIZE, SearchIndex

__all__ = ["search_profiles"]


async def search_profiles(
    index: SearchIndex,
    request: extender_pb2.SearchProfilesRequest,
    context: grpc.aio.ServicerContext[Any, Any] | None = None,
) -> extender_pb2.SearchProfilesResponse:
    """Answers SearchProfiles; a malformed query raises InvalidArgument naming
    the position and the problem (e.g. `query: unclosed quote at position 14`).
    The call's deadline, when it has one, stops the search."""
    page = await index.search(
        request.query,
        request.page_size or DEFAULT_PAGE_SIZE,
        request.page_token,
        time_limit=context.time_remaining() if context is not None else None,
    )
    response = extender_pb2.SearchProfilesResponse(
        next_page_token=page.next_page_token, total_size=page.total
    )
    for hit in page.results:
        response.results.append(
            extender_pb2.SearchResult(
                profile=profile_from_dict(hit.profile),
                score=hit.score,
                matched_fields=hit.matched_fields,
            )
        )
    return response
