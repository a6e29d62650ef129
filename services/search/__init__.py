"""Profile search: query language, Redis index, ranking and paging.

    index = SearchIndex(redis)
    await index.apply(upserts, deletes)          # after a sync commits / an update
    page = await index.search("skills:kubernetes apollo", 20, "")
    response = await search_profiles(index, request)   # the SearchProfiles RPC

The query syntax and ranking rules are documented in docs/search.md.
"""

from services.search.evaluate import SearchTimedOut
from services.search.grpc_api import search_profiles
from services.search.index import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ApplyResult,
    IndexSettings,
    SearchHit,
    SearchIndex,
    SearchPage,
)
from services.search.query import QuerySyntaxError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "ApplyResult",
    "IndexSettings",
    "QuerySyntaxError",
    "SearchHit",
    "SearchIndex",
    "SearchPage",
    "SearchTimedOut",
    "search_profiles",
]
