"""The offline Metaso emulator, exercised with plain httpx in process and over a socket."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from langchain_metaso.testing import (
    SEED_QUERY,
    Fault,
    MetasoEmulator,
    RecordedRequest,
    load_seed_response,
)

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUERY = "LangChain 是什么"
SCOPE_KEYS = {
    "webpage": "webpages",
    "document": "documents",
    "scholar": "scholars",
    "podcast": "podcasts",
    "video": "videos",
    "image": "images",
}
CHINESE_DATE = re.compile(r"^\d{4}年\d{2}月\d{2}日$")
ROUTES = ["transport", "socket"]


@pytest.fixture
def emu() -> MetasoEmulator:
    return MetasoEmulator(api_key=KEY)


@pytest.fixture(params=ROUTES)
def client(request: pytest.FixtureRequest, emu: MetasoEmulator) -> Iterator[httpx.Client]:
    """A client reaching ``emu`` one way or the other, with a path prefix as 302.AI uses."""
    if request.param == "transport":
        with httpx.Client(
            transport=emu.transport(), base_url="http://metaso.test/metaso", headers=AUTH
        ) as c:
            yield c
        return
    with emu.serve() as base_url, httpx.Client(base_url=base_url + "/metaso", headers=AUTH) as c:
        yield c


def search(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.post("/search", json={"scope": "webpage", **params})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert "errCode" not in body, body
    return body


def sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


# --- search ---------------------------------------------------------------------------------


def test_seed_query_returns_seed_verbatim(client: httpx.Client) -> None:
    response = client.post(
        "/search", json={"q": SEED_QUERY, "scope": "webpage", "includeSummary": True, "size": 10}
    )
    assert response.status_code == 200
    assert response.json() == load_seed_response()


def test_seed_response_is_the_documented_sample() -> None:
    seed = load_seed_response()
    assert seed["searchParameters"]["q"] == SEED_QUERY
    assert (len(seed["webpages"]), seed["total"]) == (10, 86)
    seed["webpages"].clear()
    assert len(load_seed_response()["webpages"]) == 10  # each call is a fresh copy


def test_seed_query_on_another_page_is_generated(client: httpx.Client) -> None:
    body = search(client, q=SEED_QUERY, page=2)
    assert [r["position"] for r in body["webpages"]] == list(range(11, 21))


def test_search_is_deterministic_and_pages_continue(client: httpx.Client) -> None:
    first = search(client, q=QUERY, size=10)
    assert first == search(client, q=QUERY, size=10)
    # With page and no size, pages hold the default 10 results.
    assert search(client, q=QUERY, page=1)["webpages"] == first["webpages"]
    second = search(client, q=QUERY, page=2)
    assert [r["position"] for r in first["webpages"]] == list(range(1, 11))
    assert [r["position"] for r in second["webpages"]] == list(range(11, 21))
    links = [r["link"] for r in first["webpages"] + second["webpages"]]
    assert len(set(links)) == 20
    # A result depends on its position, not on the page size that reached it.
    assert search(client, q=QUERY, size=20)["webpages"][10:] == second["webpages"]
    assert all(QUERY in r["title"] for r in first["webpages"])
    assert search(client, q="another question")["webpages"][0] != first["webpages"][0]


def test_results_stop_at_total(client: httpx.Client) -> None:
    total = search(client, q=QUERY, size=100)["total"]
    assert 40 <= total <= 200
    last_page = -(-total // 10)
    tail = search(client, q=QUERY, page=last_page)
    assert [r["position"] for r in tail["webpages"]] == list(
        range((last_page - 1) * 10 + 1, total + 1)
    )
    beyond = search(client, q=QUERY, page=last_page + 1)
    assert (beyond["webpages"], beyond["total"]) == ([], total)


@pytest.mark.parametrize("size", [10, "5"])
def test_page_with_size_is_a_business_error(client: httpx.Client, size: int | str) -> None:
    response = client.post(
        "/search", json={"q": QUERY, "scope": "webpage", "page": 2, "size": size}
    )
    assert response.status_code == 200
    assert response.json() == {"errCode": 1000, "errMsg": "size and page cannot be used together"}


def test_page_with_size_is_accepted_when_the_quirk_is_off(
    client: httpx.Client, emu: MetasoEmulator
) -> None:
    emu.reject_page_with_size = False
    body = search(client, q=QUERY, size=15, page=2)
    assert [r["position"] for r in body["webpages"]] == list(range(16, 31))
    assert (body["searchParameters"]["size"], body["searchParameters"]["page"]) == (15, 2)
    assert search(client, q=QUERY, size=10, page=3) == search(client, q=QUERY, page=3)


def test_size_accepts_strings_and_is_clamped(client: httpx.Client) -> None:
    assert len(search(client, q=QUERY, size="5")["webpages"]) == 5
    assert search(client, q=QUERY, size=1000)["searchParameters"]["size"] == 100
    assert len(search(client, q=QUERY, size=0)["webpages"]) == 1


def test_search_parameters_echo_the_request(client: httpx.Client) -> None:
    body = search(client, q=QUERY, size=3, includeSummary=True)
    assert body["searchParameters"] == {
        "q": QUERY,
        "scope": "webpage",
        "size": 3,
        "includeSummary": True,
        "format": "chat_completions",
    }
    assert search(client, q=QUERY, page=2)["searchParameters"]["page"] == 2


@pytest.mark.parametrize("scope", SCOPE_KEYS)
def test_each_scope_has_its_key_and_fields(client: httpx.Client, scope: str) -> None:
    body = search(client, q=QUERY, scope=scope, size=12)
    assert set(body) == {"credits", "searchParameters", SCOPE_KEYS[scope], "total"}
    results = body[SCOPE_KEYS[scope]]
    assert len(results) == 12
    assert len({r["link"] for r in results}) == 12
    for result in results:
        assert QUERY in result["title"]
        assert result["link"].startswith(f"https://{scope}.example.com/")
        assert result["score"] in ("high", "medium", "low")
        assert CHINESE_DATE.match(result["date"])
        assert isinstance(result["snippet"], str)
        assert ("authors" in result) == (scope in ("document", "scholar"))
        assert ("duration" in result) == (scope in ("podcast", "video"))
        assert ("imageUrl" in result) == (scope == "image")
        if scope == "image":
            assert result["imageWidth"] > 0
            assert result["imageHeight"] > 0
    assert any(re.search("[\u4e00-\u9fff]", r["snippet"]) for r in results)
    assert any(re.search("[A-Za-z]{4}", r["snippet"].replace(QUERY, "")) for r in results)


def test_summary_only_when_asked_and_sometimes_instead_of_snippet(client: httpx.Client) -> None:
    plain = search(client, q=QUERY, size=9)["webpages"]
    assert all("snippet" in r and "summary" not in r for r in plain)
    with_summary = search(client, q=QUERY, size=9, includeSummary=True)["webpages"]
    assert all("snippet" in r or "summary" in r for r in with_summary)
    assert any("snippet" not in r for r in with_summary)
    assert any("summary" in r for r in with_summary)


def test_raw_content_only_when_asked(client: httpx.Client) -> None:
    plain = search(client, q=QUERY, size=5)
    assert all("content" not in r for r in plain["webpages"])
    raw = search(client, q=QUERY, size=5, includeRawContent=True)
    assert all(QUERY in r["content"] and len(r["content"]) > 200 for r in raw["webpages"])
    assert raw["credits"] > plain["credits"]


def test_concise_snippets_are_shorter(client: httpx.Client) -> None:
    full = search(client, q=QUERY, size=5)["webpages"]
    concise = search(client, q=QUERY, size=5, conciseSnippet=True)["webpages"]
    assert all(len(c["snippet"]) < len(f["snippet"]) for c, f in zip(concise, full, strict=True))


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": QUERY, "scope": "planet"}, 1002),
        ({"q": QUERY}, 1002),
        ({"q": "   ", "scope": "webpage"}, 1001),
        ({"scope": "webpage"}, 1001),
        ({"q": QUERY, "scope": "webpage", "size": "many"}, 1000),
        ({"q": QUERY, "scope": "webpage", "page": 0}, 1000),
        ({"q": QUERY, "scope": "webpage", "includeSummary": "yes"}, 1000),
    ],
)
def test_bad_parameters_are_business_errors(
    client: httpx.Client, params: dict[str, Any], code: int
) -> None:
    response = client.post("/search", json=params)
    assert response.status_code == 200
    assert response.json()["errCode"] == code
    assert response.json()["errMsg"]


# --- HTTP-level errors ----------------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", "Basic test-key", "Bearer"])
def test_missing_or_wrong_key_is_401(client: httpx.Client, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    client.headers.pop("Authorization")
    response = client.post("/search", json={"q": QUERY, "scope": "webpage"}, headers=headers)
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"err_code", "message", "type"}
    assert KEY not in response.text


def test_no_api_key_accepts_any_bearer() -> None:
    emu = MetasoEmulator(api_key=None)
    with httpx.Client(transport=emu.transport(), base_url="http://metaso.test") as c:
        body = {"q": QUERY, "scope": "webpage"}
        assert (
            c.post("/search", json=body, headers={"Authorization": "Bearer x"}).status_code == 200
        )
        assert c.post("/search", json=body, headers={"Authorization": "Bearer"}).status_code == 401


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_body_that_is_not_a_json_object_is_400(client: httpx.Client, body: bytes) -> None:
    response = client.post("/search", content=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_path_is_404_and_other_methods_405(client: httpx.Client) -> None:
    assert client.post("/searching", json={}).status_code == 404
    response = client.get("/search")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


@pytest.mark.parametrize("prefix", ["", "/metaso", "/api/v1"])
def test_any_path_prefix_reaches_the_endpoints(emu: MetasoEmulator, prefix: str) -> None:
    with httpx.Client(transport=emu.transport(), base_url="http://m" + prefix, headers=AUTH) as c:
        assert "webpages" in search(c, q=QUERY)
    assert emu.requests[-1].path == prefix + "/search"


# --- faults ---------------------------------------------------------------------------------

FAILURES = [
    (Fault.drop(), httpx.RemoteProtocolError, "without sending a response"),
    (Fault.truncated(), httpx.RemoteProtocolError, "peer closed connection"),
    (Fault.timeout(), httpx.ReadTimeout, None),
    (Fault.reset(), httpx.ReadError, "reset by peer"),
]


@pytest.mark.parametrize(
    ("fault", "error", "message"), FAILURES, ids=["drop", "cut", "timeout", "reset"]
)
def test_failure_faults_raise_and_the_next_request_succeeds(
    client: httpx.Client,
    emu: MetasoEmulator,
    fault: Fault,
    error: type[Exception],
    message: str | None,
) -> None:
    emu.script(fault)
    with pytest.raises(error, match=message):
        client.post("/search", json={"q": QUERY, "scope": "webpage"}, timeout=0.5)
    assert "webpages" in search(client, q=QUERY)
    assert emu.stats.requests == 2


def test_truncated_stream_fails_midway(client: httpx.Client, emu: MetasoEmulator) -> None:
    emu.script(Fault.truncated())
    with client.stream("POST", "/chat/completions", json={"q": QUERY, "stream": True}) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines).startswith("data: {")
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            list(lines)


def test_status_fault_with_retry_after(client: httpx.Client, emu: MetasoEmulator) -> None:
    emu.script(
        Fault.status(429, retry_after=0.05), Fault.status(503), Fault.status(402, body="余额不足")
    )
    first = client.post("/search", json={})
    assert (first.status_code, first.headers["retry-after"]) == (429, "0.05")
    assert first.json()["error"]["err_code"] == 429
    second = client.post("/search", json={})
    assert second.status_code == 503
    assert "retry-after" not in second.headers
    assert second.json()["error"]["type"] == "server_error"
    assert client.post("/search", json={}).text == "余额不足"
    assert "webpages" in search(client, q=QUERY)  # the queue is empty again


def test_garbage_and_business_error_faults(client: httpx.Client, emu: MetasoEmulator) -> None:
    emu.script(Fault.garbage(), Fault.business_error(), Fault.business_error(1005, "余额不足"))
    garbage = client.post("/search", json={"q": QUERY, "scope": "webpage"})
    assert (garbage.status_code, garbage.text) == (200, "<html>502 Bad Gateway</html>")
    assert garbage.headers["content-type"] == "text/html"
    assert client.post("/search", json={}).json() == {"errCode": 1000, "errMsg": "参数错误"}
    assert client.post("/reader", json={}).json() == {"errCode": 1005, "errMsg": "余额不足"}


def test_faults_come_before_authorization(client: httpx.Client, emu: MetasoEmulator) -> None:
    emu.script(Fault.status(500))
    client.headers.pop("Authorization")
    assert client.post("/search", json={}).status_code == 500
    assert client.post("/search", json={}).status_code == 401


def test_delay_fault_waits_then_answers(client: httpx.Client, emu: MetasoEmulator) -> None:
    emu.script(Fault.delay(0.2))
    started = time.monotonic()
    assert "webpages" in search(client, q=QUERY)
    assert time.monotonic() - started >= 0.2


def test_delay_fault_trips_a_short_client_timeout_over_the_socket(emu: MetasoEmulator) -> None:
    emu.script(Fault.delay(2))
    with emu.serve() as base_url, httpx.Client(base_url=base_url, headers=AUTH) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/search", json={"q": QUERY, "scope": "webpage"}, timeout=0.2)
        assert "webpages" in search(c, q=QUERY)


# --- load -----------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("route", ROUTES)
async def test_max_in_flight_answers_429_with_retry_after(route: str) -> None:
    emu = MetasoEmulator(api_key=KEY, latency=0.2, max_in_flight=8, retry_after_seconds=0.05)
    body = {"q": QUERY, "scope": "webpage"}

    async def burst(c: httpx.AsyncClient) -> list[httpx.Response]:
        return await asyncio.gather(*(c.post("/search", json=body) for _ in range(40)))

    if route == "transport":
        async with httpx.AsyncClient(
            transport=emu.transport(), base_url="http://m", headers=AUTH
        ) as c:
            responses = await burst(c)
    else:
        with emu.serve() as base_url:
            async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as c:
                responses = await burst(c)
    rejected = [r for r in responses if r.status_code == 429]
    assert len(rejected) + sum(r.status_code == 200 for r in responses) == 40
    assert rejected
    assert all(r.headers["retry-after"] == "0.05" for r in rejected)
    assert rejected[0].json()["error"]["type"] == "rate_limit_error"
    assert emu.stats.rejected_429 == len(rejected)
    assert 2 <= emu.stats.peak_in_flight <= 8
    assert (emu.stats.requests, emu.stats.in_flight) == (40, 0)


@pytest.mark.asyncio
async def test_socket_server_handles_250_concurrent_connections() -> None:
    emu = MetasoEmulator(api_key=KEY, latency=0.3)
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    with emu.serve() as base_url:
        async with httpx.AsyncClient(
            base_url=base_url, headers=AUTH, limits=limits, timeout=30
        ) as c:
            responses = await asyncio.gather(
                *(c.post("/search", json={"q": f"q{i}", "scope": "webpage"}) for i in range(250))
            )
    assert [r.status_code for r in responses] == [200] * 250
    assert emu.stats.connections_opened == 250
    assert emu.stats.peak_in_flight > 1
    assert emu.stats.connections_open == 0


def wait_until_closed(emu: MetasoEmulator) -> None:
    """The server notices a client's hang-up a moment later; wait for it, boundedly."""
    for _ in range(100):
        if emu.stats.connections_open == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"connections still open: {emu.stats}")


def test_keep_alive_reuses_connections_and_connection_delay_hits_first_request() -> None:
    emu = MetasoEmulator(api_key=KEY, connection_delay=0.5)
    with emu.serve() as base_url:
        with httpx.Client(base_url=base_url, headers=AUTH) as c:
            started = time.monotonic()
            search(c, q=QUERY)
            first = time.monotonic() - started
            for _ in range(3):
                search(c, q=QUERY)
            # One connection for four requests: the later ones reused it.
            assert (emu.stats.connections_opened, emu.stats.connections_open) == (1, 1)
        assert first >= 0.5
        emu.connection_delay = 0.0
        for _ in range(3):
            with httpx.Client(base_url=base_url, headers=AUTH) as c:
                search(c, q=QUERY)
        assert emu.stats.connections_opened == 4
        wait_until_closed(emu)
    assert emu.stats.requests == 7


def test_timeout_fault_lets_go_when_the_client_gives_up(emu: MetasoEmulator) -> None:
    emu.script(Fault.timeout())
    with emu.serve() as base_url, httpx.Client(base_url=base_url, headers=AUTH) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/search", json={"q": QUERY, "scope": "webpage"}, timeout=0.2)
        # Still serving: only the client's hang-up can end the hold this early.
        wait_until_closed(emu)
        assert (emu.stats.in_flight, emu.stats.connections_opened) == (0, 1)


def test_leaving_serve_closes_idle_connections_and_the_port(emu: MetasoEmulator) -> None:
    with httpx.Client(headers=AUTH) as c:
        with emu.serve() as base_url:
            response = c.post(base_url + "/search", json={"q": QUERY, "scope": "webpage"})
            assert response.status_code == 200
            assert emu.stats.connections_open == 1
        assert emu.stats.connections_open == 0
        with pytest.raises(httpx.TransportError):
            c.post(base_url + "/search", json={"q": QUERY, "scope": "webpage"})


# --- recording ------------------------------------------------------------------------------


def test_requests_are_recorded_with_a_redacted_repr(
    client: httpx.Client, emu: MetasoEmulator
) -> None:
    search(client, q=QUERY, size=3)
    client.post("/reader", content=b"not json", headers={"X-Trace": "abc"})
    first, second = emu.requests
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path) == ("POST", "/metaso/search")
    assert first.json() == {"scope": "webpage", "q": QUERY, "size": 3}
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.headers["content-type"] == "application/json"
    assert KEY not in repr(first)
    assert "Bearer ***" in repr(first)
    assert KEY not in repr(emu)
    assert (second.headers["x-trace"], second.body, second.json()) == ("abc", b"not json", None)


def test_reset_forgets_requests_faults_and_totals(
    client: httpx.Client, emu: MetasoEmulator
) -> None:
    emu.script(Fault.status(500))
    client.post("/search", json={})
    emu.script(Fault.status(500))
    emu.reset()
    # Over the socket the handler may still be finishing, so in-flight gauges are not checked.
    assert (emu.requests, emu.stats.requests) == ([], 0)
    assert "webpages" in search(client, q=QUERY)


def test_both_routes_give_identical_bodies(emu: MetasoEmulator) -> None:
    calls = [
        ("/search", {"q": QUERY, "scope": "video", "includeSummary": True, "page": 3}, {}),
        ("/reader", {"url": "https://example.org/post"}, {"Accept": "text/plain"}),
        ("/chat/completions", {"q": QUERY, "stream": True}, {}),
        ("/search", {"q": QUERY, "scope": "nowhere"}, {}),
    ]
    with (
        httpx.Client(transport=emu.transport(), base_url="http://m", headers=AUTH) as local,
        emu.serve() as base_url,
        httpx.Client(base_url=base_url, headers=AUTH) as remote,
    ):
        for path, body, headers in calls:
            a = local.post(path, json=body, headers=headers)
            b = remote.post(path, json=body, headers=headers)
            assert (a.status_code, a.headers["content-type"], a.content) == (
                b.status_code,
                b.headers["content-type"],
                b.content,
            )


# --- reader ---------------------------------------------------------------------------------


def test_reader_text_and_json(client: httpx.Client) -> None:
    url = "https://news.example.org/2025/story"
    text = client.post("/reader", json={"url": url}, headers={"Accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text.startswith("# news.example.org/2025/story")
    assert re.search("[\u4e00-\u9fff]", text.text)
    assert "The " in text.text
    page = client.post("/reader", json={"url": url}, headers={"Accept": "application/json"}).json()
    assert set(page) == {"title", "url", "author", "date", "markdown", "credits"}
    assert (page["url"], page["markdown"]) == (url, text.text)
    assert page["title"] == text.text.splitlines()[0][2:]
    other = client.post("/reader", json={"url": url + "2"}, headers={"Accept": "text/plain"})
    assert other.text != text.text


def test_reader_pages_override_and_url_validation(
    client: httpx.Client, emu: MetasoEmulator
) -> None:
    emu.pages["https://a.test/x"] = "# Custom 标题\n\nbody"
    page = client.post("/reader", json={"url": "https://a.test/x"}).json()
    assert (page["title"], page["markdown"]) == ("Custom 标题", "# Custom 标题\n\nbody")
    for url in ("ftp://a.test/x", "not a url", 42):
        assert client.post("/reader", json={"url": url}).json()["errCode"] == 1000


# --- chat -----------------------------------------------------------------------------------


def test_chat_simple_answer_cites_sources(client: httpx.Client) -> None:
    body = client.post("/chat/completions", json={"q": QUERY}).json()
    assert set(body) == {"answer", "sources", "credits"}
    assert QUERY in body["answer"]
    marks = {int(n) for n in re.findall(r"\[\[(\d+)\]\]", body["answer"])}
    assert marks == set(range(1, len(body["sources"]) + 1))
    assert all({"title", "link", "snippet", "position"} <= set(s) for s in body["sources"])


def test_chat_completions_format_uses_last_user_message(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "..."},
        {"role": "user", "content": [{"type": "text", "text": QUERY}]},
    ]
    body = client.post(
        "/chat/completions",
        json={"messages": messages, "model": "ds-r1", "format": "chat_completions"},
    ).json()
    assert (body["object"], body["model"]) == ("chat.completion", "ds-r1")
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert QUERY in message["content"]
    assert "first question" not in message["content"]
    assert body["citations"]
    assert body["credits"] > 0


def test_chat_stream_matches_the_full_answer(client: httpx.Client) -> None:
    full = client.post("/chat/completions", json={"q": QUERY, "format": "chat_completions"}).json()
    with client.stream("POST", "/chat/completions", json={"q": QUERY, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.read().decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == full["choices"][0]["message"]["content"]
    assert chunks[0]["citations"] == full["citations"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_chat_stream_is_chunked_and_keeps_the_connection(emu: MetasoEmulator) -> None:
    with emu.serve() as base_url, httpx.Client(base_url=base_url, headers=AUTH) as c:
        for _ in range(2):
            with c.stream("POST", "/chat/completions", json={"q": QUERY, "stream": True}) as r:
                assert r.headers["transfer-encoding"] == "chunked"
                assert r.read().endswith(b"data: [DONE]\n\n")
        assert emu.stats.connections_opened == 1


@pytest.mark.parametrize(
    "params",
    [{"q": QUERY, "model": "gpt-9"}, {"q": QUERY, "format": "xml"}, {"messages": []}],
)
def test_chat_bad_parameters_are_business_errors(
    client: httpx.Client, params: dict[str, Any]
) -> None:
    assert client.post("/chat/completions", json=params).json()["errCode"] in (1000, 1001)


# --- async ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_transport_answers_and_faults(emu: MetasoEmulator) -> None:
    emu.script(Fault.drop(), Fault.timeout(), Fault.reset(), Fault.truncated())
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://m", headers=AUTH) as c:
        body = {"q": QUERY, "scope": "webpage"}
        with pytest.raises(httpx.RemoteProtocolError):
            await c.post("/search", json=body)
        with pytest.raises(httpx.ReadTimeout):
            await c.post("/search", json=body)
        with pytest.raises(httpx.ReadError, match="reset by peer"):
            await c.post("/search", json=body)
        with pytest.raises(httpx.RemoteProtocolError, match="received"):
            await c.post("/search", json=body)
        response = await c.post("/search", json=body)
        assert response.json()["searchParameters"]["q"] == QUERY


@pytest.mark.asyncio
async def test_async_client_over_the_socket(emu: MetasoEmulator) -> None:
    emu.script(Fault.timeout(), Fault.reset())
    with emu.serve() as base_url:
        async with httpx.AsyncClient(base_url=base_url + "/api/v1", headers=AUTH) as c:
            with pytest.raises(httpx.ReadTimeout):
                await c.post("/search", json={"q": QUERY, "scope": "webpage"}, timeout=0.2)
            with pytest.raises(httpx.ReadError):
                await c.post("/search", json={"q": QUERY, "scope": "webpage"})
            response = await c.post("/reader", json={"url": "https://x.test/"})
            assert response.json()["url"] == "https://x.test/"
