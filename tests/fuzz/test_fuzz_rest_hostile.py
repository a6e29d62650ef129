"""Hostile REST input, by kind: oversized and deeply nested bodies, wrong types,
invalid UTF-8, huge and negative numbers, unknown fields, injection strings in
search and ids, and the change stream's parameters.

Every answer keeps the rules (no 5xx, no stack trace, a 4xx that names the
problem), and where the kind of input says what the answer must be, it is that.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fuzz_inputs import hostile_text, invalid_utf8, json_values, number_spellings
from fuzz_recorder import DERANDOMIZE, EXAMPLES, RECORDER, problem_in
from fuzz_target import FuzzTarget
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.devstack.lob_client import LobClient

SUITE = "REST (hostile input)"
MAX_BODY = 1024 * 1024
MAX_DEPTH = 20
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# (method, path, operation) of every route with a JSON body; {me} is the user
# whose token the PATCH carries.
BODY_ROUTES = [
    ("POST", "/v1/profiles:batchGet", "BatchGetProfiles"),
    ("PATCH", "/v1/profiles/{me}", "UpdateProfile"),
    ("POST", "/v1/syncs", "StartSync"),
    ("PUT", "/v1/subscribers/fuzz-hostile", "PutSubscriber"),
    ("POST", "/v1/subscribers/fuzz-hostile:ack", "Ack"),
    ("POST", "/v1/subscribers/fuzz-hostile:seek", "SeekSubscriber"),
    ("POST", "/v1/subscribers/fuzz-hostile/deadLetters:replay", "ReplayDeadLetters"),
    ("POST", "/v1/syncs/none:approveDeletes", "ApproveDeletes"),
]
# Integer query parameters and the range the protos declare for them.
INTEGER_PARAMETERS = [
    ("/v1/changes", "pageSize", 0, 1000),
    ("/v1/changes", "waitSeconds", 0, 60),
    ("/v1/syncs", "pageSize", 0, 100),
    ("/v1/subscribers/fuzz-hostile/deadLetters", "pageSize", 0, 100),
    ("/v1/profiles:search", "pageSize", 0, 100),
]
# Routes that take an id or name in the path.
ID_ROUTES = [
    ("/v1/profiles/{}", "GetProfile"),
    ("/v1/syncs/{}", "GetSync"),
    ("/v1/subscribers/{}", "GetSubscriber"),
    ("/v1/subscribers/{}/deadLetters", "ListDeadLetters"),
]
# Field names the body routes read, as JSON spells them (sent at random below) ...
BODY_FIELDS = [
    "ids",
    "aboutMe",
    "skills",
    "pastProjects",
    "schools",
    "interests",
    "expectedVersion",
    "shardIndex",
    "shardCount",
    "dryRun",
    "url",
    "secret",
    "startAt",
    "cursor",
    "to",
    "all",
]
# ... and every other spelling a route accepts (path fields, the proto names).
KNOWN_BODY_FIELDS = {
    *BODY_FIELDS,
    "id",
    "body",
    "name",
    "runId",
    "about_me",
    "past_projects",
    "expected_version",
    "shard_index",
    "shard_count",
    "dry_run",
    "start_at",
    "run_id",
}


@pytest.fixture(scope="module")
def http(fuzz_target: FuzzTarget) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fuzz_target.base_url,
        headers=fuzz_target.headers(),
        timeout=60,
        trust_env=False,
    ) as client:
        yield client


def checked(response: httpx.Response, target: str, kind: str = "invalid") -> httpx.Response:
    body = response.content.decode("utf-8", errors="replace")
    shown = body if response.status_code >= 400 else ""
    RECORDER.record(SUITE, target, kind, str(response.status_code), shown)
    problem = problem_in(response.status_code, body)
    assert problem is None, f"{response.request.method} {response.request.url}: {problem}"
    return response


def send_body(
    http: httpx.Client, target: FuzzTarget, route: tuple[str, str, str], content: bytes
) -> httpx.Response:
    method, path, operation = route
    return checked(
        http.request(
            method,
            path.format(me=target.user["id"]),
            content=content,
            headers={**target.headers(operation), "content-type": "application/json"},
        ),
        operation,
    )


def message(response: httpx.Response) -> str:
    return str(response.json()["message"])


@fuzz_settings
@given(
    route=st.sampled_from(BODY_ROUTES),
    extra=st.integers(min_value=1, max_value=3 * MAX_BODY),
    shape=st.sampled_from(["one string", "many ids", "whitespace"]),
)
def test_oversized_bodies_are_refused_with_413(
    http: httpx.Client, fuzz_target: FuzzTarget, route: tuple[str, str, str], extra: int, shape: str
) -> None:
    size = MAX_BODY + extra
    if shape == "one string":
        content = b'{"ids": ["' + b"a" * size + b'"]}'
    elif shape == "many ids":
        content = json.dumps({"ids": ["a" * 64] * (size // 67 + 1)}).encode()
    else:
        content = b"{" + b" " * size + b"}"
    response = send_body(http, fuzz_target, route, content)
    assert response.status_code == 413
    assert f"larger than {MAX_BODY} bytes" in message(response)


@fuzz_settings
@given(
    route=st.sampled_from(BODY_ROUTES),
    depth=st.one_of(
        st.integers(min_value=MAX_DEPTH - 3, max_value=MAX_DEPTH + 3),
        st.integers(min_value=1, max_value=200_000),
    ),
    opener=st.sampled_from(["[", '{"a":', '[{"b":']),
    where=st.sampled_from(["aboutMe", "skills", "ids", "unknownField"]),
)
def test_deep_json_is_refused_by_name_past_the_limit(
    http: httpx.Client,
    fuzz_target: FuzzTarget,
    route: tuple[str, str, str],
    depth: int,
    opener: str,
    where: str,
) -> None:
    closer = "".join({"[": "]", "{": "}"}[c] for c in opener if c in "[{")[::-1]
    value = opener * depth + "1" * (opener != "[") + closer * depth
    content = ('{"' + where + '": ' + value + "}").encode()
    levels = 1 + depth * sum(c in "[{" for c in opener)
    response = send_body(http, fuzz_target, route, content)
    if len(content) > MAX_BODY:
        assert response.status_code == 413
    elif levels > MAX_DEPTH:
        assert response.status_code == 400
        assert message(response) == f"the JSON body nests deeper than {MAX_DEPTH} levels"


@fuzz_settings
@given(
    route=st.sampled_from(BODY_ROUTES),
    body=st.dictionaries(
        st.sampled_from(BODY_FIELDS),
        json_values,
        min_size=1,
        max_size=4,
    )
    | json_values,
)
def test_wrong_types_are_refused_by_name(
    http: httpx.Client, fuzz_target: FuzzTarget, route: tuple[str, str, str], body: Any
) -> None:
    send_body(http, fuzz_target, route, json.dumps(body).encode())


@fuzz_settings
@given(
    route=st.sampled_from(BODY_ROUTES),
    bad=invalid_utf8,
    prefix=st.text(max_size=20).map(lambda s: s.encode()),
)
def test_bodies_that_are_not_utf8_are_refused(
    http: httpx.Client,
    fuzz_target: FuzzTarget,
    route: tuple[str, str, str],
    bad: bytes,
    prefix: bytes,
) -> None:
    content = b'{"ids": ["' + prefix.replace(b'"', b"").replace(b"\\", b"") + bad + b'"]}'
    response = send_body(http, fuzz_target, route, content)
    assert response.status_code == 400
    assert "UTF-8" in message(response)


@fuzz_settings
@given(
    where=st.sampled_from(["path", "query"]),
    bad=invalid_utf8,
    good=st.text(alphabet="abc019-", max_size=10),
)
def test_urls_that_are_not_utf8_are_refused(
    http: httpx.Client, where: str, bad: bytes, good: str
) -> None:
    escaped = good + urllib.parse.quote_from_bytes(bad)
    url = f"/v1/profiles/{escaped}" if where == "path" else f"/v1/changes?afterCursor={escaped}"
    response = checked(http.get(url), "GetProfile" if where == "path" else "ListChanges")
    assert response.status_code == 400
    part = "request path" if where == "path" else "query string"
    assert message(response) == f"the {part} is not valid UTF-8 once percent-decoded"


@fuzz_settings
@given(parameter=st.sampled_from(INTEGER_PARAMETERS), value=number_spellings)
def test_huge_and_negative_numbers_are_refused_by_name(
    http: httpx.Client, parameter: tuple[str, str, int, int], value: str
) -> None:
    path, name, low, high = parameter
    if name == "waitSeconds" and value.strip().lstrip("+").isdigit() and int(value) > 1:
        value = "1"  # a valid long-poll would only make the case slow
    params = {name: value, "query": "x"} if path.endswith(":search") else {name: value}
    response = checked(http.get(path, params=params), path)
    try:
        number = int(value)
    except ValueError:
        return
    if not low <= number <= high and value == value.strip():
        assert response.status_code == 400
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
        assert name in message(response) or snake in message(response)


@fuzz_settings
@given(
    route=st.sampled_from(BODY_ROUTES),
    unknown=st.dictionaries(
        st.text(min_size=1, max_size=20).filter(lambda k: k.isprintable()),
        json_values,
        min_size=1,
        max_size=3,
    ),
)
def test_unknown_body_fields(
    http: httpx.Client,
    fuzz_target: FuzzTarget,
    route: tuple[str, str, str],
    unknown: dict[str, Any],
) -> None:
    known = {"aboutMe": "from the fuzz suite"} if route[2] == "UpdateProfile" else {"ids": ["x"]}
    unknown = {k: v for k, v in unknown.items() if k not in KNOWN_BODY_FIELDS}
    if not unknown:
        return
    response = send_body(http, fuzz_target, route, json.dumps({**known, **unknown}).encode())
    if route[2] == "UpdateProfile":
        # The PATCH body is read strictly: the first unknown name is named.
        assert response.status_code == 400
        assert any(name in message(response) for name in unknown)


@fuzz_settings
@given(
    path=st.sampled_from(["/v1/changes", "/v1/syncs", "/v1/profiles:search", "/v1/subscribers"]),
    name=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ_", min_size=1, max_size=16),
    value=hostile_text,
)
def test_unknown_query_parameters_are_refused_by_name(
    http: httpx.Client, path: str, name: str, value: str
) -> None:
    known = {
        "afterCursor",
        "pageSize",
        "waitSeconds",
        "subscriber",
        "query",
        "pageToken",
        "after_cursor",
        "page_size",
        "wait_seconds",
        "page_token",
    }
    if name in known:
        return
    params = {name: value, "query": "x"} if path.endswith(":search") else {name: value}
    response = checked(http.get(path, params=params), path)
    assert response.status_code == 400
    assert name in message(response)


@fuzz_settings
@given(route=st.sampled_from(ID_ROUTES), value=hostile_text)
def test_injection_strings_in_ids(http: httpx.Client, route: tuple[str, str], value: str) -> None:
    path, operation = route
    checked(http.get(path.format(urllib.parse.quote(value, safe=""))), operation)


@fuzz_settings
@given(ids=st.lists(hostile_text, min_size=1, max_size=5))
def test_injection_strings_in_batch_ids(http: httpx.Client, ids: list[str]) -> None:
    checked(http.post("/v1/profiles:batchGet", json={"ids": ids}), "BatchGetProfiles")


@fuzz_settings
@given(query=hostile_text, token=st.one_of(st.just(""), hostile_text))
def test_injection_strings_in_search(http: httpx.Client, query: str, token: str) -> None:
    params = {"query": query, **({"pageToken": token} if token else {})}
    checked(http.get("/v1/profiles:search", params=params), "SearchProfiles")


@fuzz_settings
@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "afterCursor": st.one_of(
                st.from_regex(r"[0-9]{1,13}-[0-9]{1,3}", fullmatch=True), hostile_text
            ),
            "subscriber": st.one_of(st.just("fuzz-hostile"), hostile_text),
            "heartbeatSeconds": number_spellings,
        },
    )
)
def test_change_stream_answers_at_once(http: httpx.Client, params: dict[str, str]) -> None:
    """A stream either starts (its first line, a heartbeat or an event, comes at
    once) or is refused with a JSON error before the first line."""
    with http.stream("GET", "/v1/changes:stream", params=params, timeout=30) as response:
        if response.status_code != 200:
            response.read()
            checked(response, "StreamChanges")
            return
        first = next(response.iter_lines())
        RECORDER.record(SUITE, "StreamChanges", "valid", "200")
        event = json.loads(first)
        assert "cursor" in event


def test_the_stack_is_intact_after_hostile_input(fuzz_target: FuzzTarget) -> None:
    """Injection strings changed nothing: the change log still holds the first
    sync's events, a new sync succeeds, and no input forged a log line."""
    lob = LobClient(fuzz_target.base_url, fuzz_target.app_token)
    try:
        events, _ = lob.changes()
        created = {e["userId"] for e in events if e["kind"] == "CREATED"}
        assert len(created) >= 30
        run = lob.sync_and_wait()
        assert run["state"] == "SUCCEEDED", run
    finally:
        lob.close()
    for line in fuzz_target.stack.logs_text().splitlines():
        assert "forged log line" not in line or not line.startswith('{"level": "CRITICAL"'), line
