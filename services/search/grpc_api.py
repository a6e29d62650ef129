"""The SearchProfiles RPC on top of SearchIndex, so the servicer is one line:

async def SearchProfiles(self, request, context):
    return await search_profiles(self._search_index, request)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from profilesync.v1 import extender_pb2, profile_pb2
from services.search.index import DEFAULT_PAGE_SIZE, SearchIndex

__all__ = ["profile_message", "search_profiles"]

# Stored (lowerCamelCase) names to the Profile message's fields.
_SCALARS: Final = {
    "id": "id",
    "userPrincipalName": "user_principal_name",
    "displayName": "display_name",
    "mail": "mail",
    "jobTitle": "job_title",
    "department": "department",
    "aboutMe": "about_me",
    "version": "version",
}
_LISTS: Final = {
    "skills": "skills",
    "pastProjects": "past_projects",
    "schools": "schools",
    "interests": "interests",
}


def profile_message(profile: Mapping[str, Any]) -> profile_pb2.Profile:
    """A stored profile as the Profile message (a bad fetchTime is left unset)."""
    message = profile_pb2.Profile()
    for key, field in _SCALARS.items():
        value = profile.get(key)
        if value:
            setattr(message, field, str(value))
    for key, field in _LISTS.items():
        getattr(message, field).extend(str(v) for v in profile.get(key) or [])
    fetched = profile.get("fetchTime")
    if isinstance(fetched, str) and fetched:
        try:
            message.fetch_time.FromJsonString(fetched)
        except ValueError:
            message.ClearField("fetch_time")
    return message


async def search_profiles(
    index: SearchIndex, request: extender_pb2.SearchProfilesRequest
) -> extender_pb2.SearchProfilesResponse:
    """Answers SearchProfiles; a malformed query raises InvalidArgument naming
    the position and the problem (e.g. `query: unclosed quote at position 14`)."""
    page = await index.search(
        request.query, request.page_size or DEFAULT_PAGE_SIZE, request.page_token
    )
    response = extender_pb2.SearchProfilesResponse(
        next_page_token=page.next_page_token, total_size=page.total
    )
    for hit in page.results:
        response.results.append(
            extender_pb2.SearchResult(
                profile=profile_message(hit.profile),
                score=hit.score,
                matched_fields=hit.matched_fields,
            )
        )
    return response
