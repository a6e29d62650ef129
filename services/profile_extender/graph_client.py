"""Microsoft Graph reads over httpx (async, HTTP/2).

    budget = RateBudget(redis, key, budget_per_10s=3325)
    graph = GraphClient(settings, MsalTokens(entra), budget=budget)
    async for user_id in graph.iter_user_ids(): ...
    results = await graph.get_users(ids)    # $batch, 20 per request

Every request carries a `client-request-id`; 429 and 5xx answers are retried
after their `Retry-After` (or a jittered exponential backoff), for a whole
request or, inside a `$batch`, for only the items that failed. A 429, whole
or on one item of a `$batch` (where Graph reports nearly all of its
throttling), pauses every replica for its `Retry-After`, however long, through
the shared budget. A read answered `202 Accepted` without the user ("the
server requires more time", https://learn.microsoft.com/graph/api/user-get)
is asked again like a 503.

Requests in flight follow from the budget's rate and Graph's latency (see
AdaptiveLimit); they are spread over one HTTP/2 connection per
STREAMS_PER_CONNECTION of them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from prometheus_client import Counter, Histogram

from services.common.entra import GRAPH_SCOPES, MsalTokens
from services.common.errors import (
    GraphUnavailable,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.common.tls import client_ssl_context
from services.profile_extender.adaptive import AdaptiveLimit
from services.profile_extender.profile_errors import no_profile_reason
from services.profile_extender.quota_tier import TenantQuota
from services.profile_extender.rate_budget import RateBudget
from services.profile_extender.settings import GraphSettings

__all__ = ["BATCH_LIMIT", "PROFILE_SELECT", "FetchResult", "GraphClient"]

log = logging.getLogger(__name__)

THROTTLED = Counter("profilesync_graph_throttled_total", "429 answers from Graph (items included)")
# Graph evaluates each request inside a $batch on its own, so those are what
# is counted; a $batch envelope counts only when it fails as a whole (then
# once for each request it carried).
REQUESTS = Counter(
    "profilesync_graph_requests_total",
    "Requests answered by Graph (each request inside a $batch), by outcome",
    ["outcome"],
)
RETRY_AFTER = Histogram(
    "profilesync_graph_retry_after_seconds",
    "Waits Graph asked for (Retry-After of 429 and 5xx answers, items of a $batch included)",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

# Graph answers at most 20 requests per $batch.
BATCH_LIMIT = 20
# Graph returns the SharePoint-backed properties only when selected, and only
# for a single user (never in a list).
PROFILE_SELECT = (
    "id,userPrincipalName,displayName,mail,jobTitle,department,"
    "aboutMe,skills,pastProjects,schools,interests"
)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# A Retry-After this long is honoured as given, and logged: a sync then
# visibly waits, rather than seeming to hang.
LONG_WAIT_SECONDS = 60.0
# httpx (httpcore) sends every request to a host over one HTTP/2 connection
# and announces at most 100 concurrent streams on it; more requests in flight
# than that queue inside httpcore. Requests beyond it get connections of their
# own, each through a client of its own.
STREAMS_PER_CONNECTION = 100
# A LOB call that would wait longer than this for the budget (Graph asked the
# app to pause) is answered 429 with the time left rather than held open: the
# gateway gives a unary call 90 s.
INTERACTIVE_MAX_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class _Retry:
    """A try Graph asked to repeat (429, 5xx) or that lost its connection."""

    problem: str  # "HTTP 503 from Graph", "ReadTimeout talking to Graph"
    delay: float  # seconds to wait first: Graph's Retry-After, or a back-off


@dataclass(frozen=True)
class FetchResult:
    """The outcome of reading one user: the Graph object, absent, without a
    SharePoint profile (`no_profile` says why), or failed."""

    user_id: str
    user: dict[str, Any] | None = None
    error: str | None = None
    no_profile: str | None = None

    @property
    def not_found(self) -> bool:
        return self.user is None and self.error is None and self.no_profile is None


def _retry_delay(headers: httpx.Headers | dict[str, str], attempt: int) -> float:
    """Graph's Retry-After (seconds, possibly fractional), as given, or a jittered backoff."""
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = -1.0
        if seconds >= 0 and math.isfinite(seconds):
            RETRY_AFTER.observe(seconds)
            if seconds >= LONG_WAIT_SECONDS:
                log.warning(
                    "Graph asked to wait %.0f s (Retry-After); waiting as asked",
                    seconds,
                    extra={"retryAfterSeconds": seconds},
                )
            return seconds
    backoff: float = min(0.25 * 2**attempt, 30.0)
    return backoff * random.uniform(0.5, 1.0)


def _has_content(response_body: Any) -> bool:
    """A read's answer carries what was asked: a user, or a page of them."""
    return isinstance(response_body, dict) and ("id" in response_body or "value" in response_body)


OUTCOMES = ("ok", "throttled", "not_found", "refused", "server_error", "transport_error")
for _name in OUTCOMES:  # every series from the start, so rate() sees the first one
    REQUESTS.labels(_name)


def _outcome(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "throttled"
    if status == 404:
        return "not_found"
    return "refused" if 400 <= status < 500 else "server_error"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _graph_error_message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return f"{error.get('code', 'error')}: {error.get('message', '')}".strip()
    return "no error details"


class GraphClient:
    def __init__(
        self,
        settings: GraphSettings,
        tokens: MsalTokens,
        *,
        budget: RateBudget,
        quota: TenantQuota | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._budget = budget
        self._quota = quota
        ssl = client_ssl_context(settings.ca_bundle)
        self._clients = [
            httpx.AsyncClient(
                http2=True,
                verify=ssl,
                trust_env=False,
                timeout=httpx.Timeout(settings.request_timeout_seconds, connect=10.0),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
                transport=transport,
            )
            for _ in range(math.ceil(settings.max_concurrency / STREAMS_PER_CONNECTION))
        ]
        self._next_client = itertools.cycle(self._clients)
        # $batch requests per second the budget allows, times Graph's latency.
        self.concurrency = AdaptiveLimit(
            rate=lambda: budget.steady_rate_per_second / BATCH_LIMIT,
            maximum=settings.max_concurrency,
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def _try_once(
        self,
        method: str,
        url: str,
        body: Any,
        *,
        attempt: int,
        user_token: str | None = None,
        cost: int = 1,
        batch: bool = False,
        bulk: bool = False,
        share_percent: int = 0,
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response | _Retry:
        """One try of a Graph request: Graph's answer, or a _Retry when it asks to be
        asked again (429, 5xx) or the connection failed.

        Sent with the app's token, or with `user_token` (delegated) when given;
        `cost` resource units are taken from the shared budget. A `batch` carries
        `cost` requests, which the caller counts when answered. `bulk` requests (a
        sync's reads) give way to the others in the budget; with `share_percent`
        they also never take more than that share of it (RateBudget.part).
        """
        # The token first: MSAL answers from its cache in a thread, one caller at
        # a time, and that queue must not sit between the budget's go and the
        # send (Graph counts a request when it arrives: requests held there
        # would arrive together).
        token = user_token or await self._tokens.for_app(GRAPH_SCOPES)
        if self._quota is not None:
            await self._quota.refresh()
        if share_percent:
            await self._budget.part(share_percent).spend(cost, bulk=True)
        await self._budget.spend(
            cost, bulk=bulk, max_wait=None if bulk else INTERACTIVE_MAX_WAIT_SECONDS
        )
        headers = {"Authorization": f"Bearer {token}", "client-request-id": str(uuid.uuid4())}
        started = time.monotonic()
        headers.update(extra_headers or {})
        try:
            response = await next(self._next_client).request(
                method, url, json=body, headers=headers
            )
        except httpx.TransportError as error:
            REQUESTS.labels("transport_error").inc(cost if batch else 1)
            return _Retry(f"{type(error).__name__} talking to Graph", _retry_delay({}, attempt))
        if batch:
            self.concurrency.observe(time.monotonic() - started)
        if not (batch and response.status_code == 200):
            REQUESTS.labels(_outcome(response.status_code)).inc(cost if batch else 1)
        if response.status_code == 202 and method == "GET" and not _has_content(_json(response)):
            delay = _retry_delay(response.headers, attempt)
            return _Retry("HTTP 202 from Graph (still processing)", delay)
        if response.status_code not in RETRYABLE_STATUS:
            return response
        delay = _retry_delay(response.headers, attempt)
        if response.status_code == 429:
            await self._throttled(delay, slow_down=True)
            delay = 0.0  # the shared budget now holds every request back that long
        return _Retry(f"HTTP {response.status_code} from Graph", delay)

    async def _send(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        user_token: str | None = None,
        bulk: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One Graph request, tried up to GRAPH_MAX_ATTEMPTS times (see _try_once)."""
        attempts = self._settings.max_attempts
        problem = ""
        for attempt in range(attempts):
            outcome = await self._try_once(
                method,
                url,
                body,
                attempt=attempt,
                user_token=user_token,
                bulk=bulk,
                extra_headers=headers,
            )
            if isinstance(outcome, httpx.Response):
                return outcome
            problem = outcome.problem
            if attempt + 1 < attempts:
                await asyncio.sleep(outcome.delay)
        raise GraphUnavailable(f"{problem} after {attempts} attempts")

    async def _throttled(self, retry_after: float, count: int = 1, *, slow_down: bool) -> None:
        """Graph throttled the app (a whole request, or `count` items of a $batch):
        the app is over its quota, whichever request learnt it, so every replica
        waits out the Retry-After; with `slow_down` this one also sends fewer at once."""
        THROTTLED.inc(count)
        if slow_down:
            self.concurrency.throttled()
        await self._budget.back_off(retry_after)

    @staticmethod
    def _raise_for(response: httpx.Response, subject: str) -> None:
        if response.is_success:
            return
        try:
            message = _graph_error_message(response.json())
        except ValueError:
            message = "no error details"
        if response.status_code == 404:
            raise NotFound(f"{subject} not found")
        if response.status_code in (401, 403):
            raise PermissionDenied(f"Graph refused access to {subject}: {message}")
        if response.status_code == 400:
            raise InvalidArgument(f"Graph refused the request for {subject}: {message}")
        raise GraphUnavailable(f"HTTP {response.status_code} from Graph for {subject}: {message}")

    async def iter_user_ids(
        self, page_size: int = 999, *, bulk: bool = False
    ) -> AsyncIterator[str]:
        """The id of every user the sync covers (SYNC_USERS, see enumeration.py),
        page by page (`$top` up to 999)."""
        scope = self._settings.users
        url: str | None = scope.list_url(self._settings.graph_url, page_size)
        seen = 0
        while url:
            response = await self._send("GET", url, bulk=bulk, headers=scope.list_headers())
            self._raise_for(response, "the user list")
            page = response.json()
            url = page.get("@odata.nextLink")
            users = page.get("value", [])
            seen += len(users)
            if self._quota is not None:
                # The tenant's size sets its quota; a partial count may raise it.
                await self._quota.learn(seen, complete=not url)
            for user in users:
                yield str(user["id"])

    async def get_user(self, id_or_upn: str) -> dict[str, Any]:
        """One user with the profile properties; NotFound if there is none."""
        url = f"{self._settings.graph_url}/users/{quote(id_or_upn, safe='@')}"
        response = await self._send("GET", f"{url}?$select={PROFILE_SELECT}")
        self._raise_for(response, f"user {id_or_upn!r}")
        user: dict[str, Any] = response.json()
        return user

    async def patch_user(self, user_id: str, changes: dict[str, Any], user_token: str) -> None:
        """Writes `changes` to the user as the signed-in user (delegated token)."""
        url = f"{self._settings.graph_url}/users/{quote(user_id, safe='@')}"
        response = await self._send("PATCH", url, changes, user_token=user_token)
        self._raise_for(response, f"user {user_id!r}")

    async def get_users(
        self, ids: Sequence[str], *, bulk: bool = False, share_percent: int = 0
    ) -> list[FetchResult]:
        """Reads users with their profile properties, 20 to a `$batch`.

        Items answered 429 or 5xx are retried alone after their own
        Retry-After; one that still fails is returned with its error. A sync
        reads with `bulk`, behind interactive reads (see RateBudget), and the
        differ's re-reads of recently edited users within `share_percent` of
        the budget.
        """
        groups = [ids[i : i + BATCH_LIMIT] for i in range(0, len(ids), BATCH_LIMIT)]
        results = await asyncio.gather(
            *(self._get_batch(group, bulk, share_percent) for group in groups)
        )
        return [result for group in results for result in group]

    async def _get_batch(
        self, ids: Sequence[str], bulk: bool, share_percent: int = 0
    ) -> list[FetchResult]:
        pending = {str(index): user_id for index, user_id in enumerate(ids)}
        done: dict[str, FetchResult] = {}
        last_problem = "still throttled or failing"
        # Every send of the batch, whole or of its retried items, is one attempt for
        # each profile in it: GRAPH_MAX_ATTEMPTS bounds the sends per profile.
        for attempt in range(self._settings.max_attempts):
            requests = [
                {
                    "id": key,
                    "method": "GET",
                    "url": f"/users/{quote(user_id, safe='@')}?$select={PROFILE_SELECT}",
                }
                for key, user_id in pending.items()
            ]
            async with self.concurrency.slot():
                outcome = await self._try_once(
                    "POST",
                    f"{self._settings.graph_url}/$batch",
                    {"requests": requests},
                    attempt=attempt,
                    cost=len(requests),
                    batch=True,
                    bulk=bulk,
                    share_percent=share_percent,
                )
            if not isinstance(outcome, httpx.Response):
                # The batch failed as a whole: an attempt for each profile in it.
                last_problem = outcome.problem
                await asyncio.sleep(outcome.delay)
                continue
            response = outcome
            self._raise_for(response, "a $batch of users")
            wait = throttled_wait = 0.0
            throttled = 0
            for item in response.json().get("responses", []):
                key = str(item.get("id"))
                if key not in pending:
                    continue
                status = int(item.get("status", 0))
                REQUESTS.labels(_outcome(status)).inc()
                user_id = pending[key]
                no_profile = no_profile_reason(status, item.get("body"))
                if no_profile is not None:
                    # A state of the account, not a failure: never retried.
                    done[key] = FetchResult(user_id, no_profile=no_profile)
                elif status == 200 or (status == 202 and _has_content(item.get("body"))):
                    done[key] = FetchResult(user_id, user=item.get("body"))
                elif status == 404:
                    # Deleted between enumeration and read: absent, not failed.
                    done[key] = FetchResult(user_id)
                elif status in RETRYABLE_STATUS or status == 202:
                    last_problem = f"HTTP {status} from Graph"
                    delay = _retry_delay(item.get("headers") or {}, attempt)
                    if status == 429:
                        # Waited out in the shared budget, by every request.
                        throttled += 1
                        throttled_wait = max(throttled_wait, delay)
                    else:
                        wait = max(wait, delay)
                    continue
                else:
                    error = _graph_error_message(item.get("body"))
                    done[key] = FetchResult(user_id, error=f"HTTP {status} from Graph: {error}")
                del pending[key]
            if throttled:
                # Most of a batch throttled means too much in flight as well; a
                # few items are told to wait, and the pause is what fixes that.
                await self._throttled(
                    throttled_wait, throttled, slow_down=throttled * 2 > len(requests)
                )
            else:
                self.concurrency.succeeded()
            if not pending:
                break
            await asyncio.sleep(wait)
        for key, user_id in pending.items():
            done[key] = FetchResult(
                user_id,
                error=f"{last_problem} after {self._settings.max_attempts} attempts",
            )
        return [done[str(index)] for index in range(len(ids))]
