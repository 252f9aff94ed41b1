"""The offline Metaso emulator, exercised with plain httpx in process and over a socket."""

from __future__ import annotations

import ast
import asyncio
import functools
import http.client
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import TEST_KEY as KEY
from emulator_support import QUERY, fixture, search

import langchain_metaso.scopes
import langchain_metaso.testing
from langchain_metaso.testing import Fault, MetasoEmulator, RecordedRequest, _api

AUTH = {"Authorization": f"Bearer {KEY}"}
ROUTES = ["transport", "socket"]


# The conftest's emulator and its httpx client, under the short names this module uses.
@pytest.fixture
def emu(emulator: MetasoEmulator) -> MetasoEmulator:
    return emulator


@pytest.fixture
def client(api: httpx.Client) -> httpx.Client:
    return api


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


@pytest.mark.parametrize(
    "path", ["/searching", "/search/more", "/", "/chat", "/completions", "/read", "/v1/models"]
)
def test_unknown_paths_are_404_even_with_the_right_key(client: httpx.Client, path: str) -> None:
    for method in ("POST", "GET"):
        response = client.request(method, path, json={"q": QUERY, "scope": "webpage"})
        assert response.status_code == 404
        assert path in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/search", "/reader", "/chat/completions"])
@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_than_post_are_405(client: httpx.Client, path: str, method: str) -> None:
    response = client.request(method, path)
    assert (response.status_code, response.headers["allow"]) == (405, "POST")
    assert "use POST" in response.json()["error"]["message"]


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


ERROR_TABLE = fixture("errors_302ai.json")["err_codes"]
GUESSED_STATUS = {
    -10001: 401,
    -10005: 401,
    -10004: 402,
    -10006: 402,
    -10007: 402,
    -10012: 402,
    -10003: 503,
    -10008: 503,
    -1024: 504,
    -10011: 400,
    -10009: 400,
    -10002: 403,
    -10010: 404,
}


def test_provider_errors_are_302ais_envelope_with_its_messages(
    client: httpx.Client, emu: MetasoEmulator
) -> None:
    assert set(GUESSED_STATUS) == set(map(int, ERROR_TABLE))
    emu.script(*(Fault.provider_error(code) for code in GUESSED_STATUS))
    for code, status in GUESSED_STATUS.items():
        response = client.post("/search", json={"q": QUERY, "scope": "webpage"})
        assert response.status_code == status
        assert response.json() == {"error": {"err_code": code, "message": ERROR_TABLE[str(code)]}}
    assert "webpages" in search(client, q=QUERY)


def test_provider_error_status_and_message_can_be_chosen(
    client: httpx.Client, emu: MetasoEmulator
) -> None:
    emu.script(
        Fault.provider_error(-10004, status=200),
        Fault.provider_error(-1024, 429, "上游超时"),
        Fault.provider_error(-99),
    )
    first = client.post("/chat/completions", json={"q": QUERY})
    assert (first.status_code, first.json()["error"]["err_code"]) == (200, -10004)
    second = client.post("/search", json={})
    assert (second.status_code, second.json()) == (
        429,
        {"error": {"err_code": -1024, "message": "上游超时"}},
    )
    unknown = client.post("/reader", json={})
    assert (unknown.status_code, unknown.json()["error"]["err_code"]) == (500, -99)


@pytest.mark.parametrize("after", [0, 10, 100])
def test_truncated_after_n_bytes_of_a_body(
    client: httpx.Client, emu: MetasoEmulator, after: int
) -> None:
    whole = client.post("/search", json={"q": QUERY, "scope": "webpage"}).content
    emu.script(Fault.truncated(after=after))
    received: list[bytes] = []
    with client.stream("POST", "/search", json={"q": QUERY, "scope": "webpage"}) as response:
        assert response.headers["content-length"] == str(len(whole))
        with pytest.raises(httpx.RemoteProtocolError, match="peer closed connection"):
            read_raw(response, received)
    assert b"".join(received) == whole[:after]


def read_raw(response: httpx.Response, into: list[bytes]) -> None:
    """Keep the body's bytes in ``into`` as they come, so they outlive a break."""
    for part in response.iter_raw():
        into.append(part)


def test_truncated_refuses_a_negative_cut() -> None:
    with pytest.raises(ValueError, match="at least 0"):
        Fault.truncated(after=-1)


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


def test_delay_fault_trips_a_short_client_timeout_in_process(emu: MetasoEmulator) -> None:
    # As over the socket: an in-process test of a client's timeout must not pass by luck.
    emu.script(Fault.delay(30))
    with httpx.Client(transport=emu.transport(), base_url="http://m", headers=AUTH) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/search", json={"q": QUERY, "scope": "webpage"}, timeout=0.05)
        assert "webpages" in search(c, q=QUERY)


@pytest.mark.asyncio
async def test_delay_fault_trips_a_short_async_client_timeout_in_process(
    emu: MetasoEmulator,
) -> None:
    emu.script(Fault.delay(30))
    transport = emu.transport()
    async with httpx.AsyncClient(transport=transport, base_url="http://m", headers=AUTH) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.post("/search", json={"q": QUERY, "scope": "webpage"}, timeout=0.05)
        response = await c.post("/search", json={"q": QUERY, "scope": "webpage"})
        assert "webpages" in response.json()


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


def test_socket_server_handles_250_concurrent_connections() -> None:
    emu = MetasoEmulator(api_key=KEY, latency=0.3)
    headers = {**AUTH, "Content-Type": "application/json"}

    def post(address: str, number: int) -> int:
        # A connection of its own each, from the standard library's client: one httpx pool
        # of 250 connections spends seconds scanning them all for every request it sends.
        connection = http.client.HTTPConnection(address, timeout=30)
        body = json.dumps({"q": f"q{number}", "scope": "webpage"})
        connection.request("POST", "/search", body, headers)
        status = connection.getresponse().status
        connection.close()
        return status

    with emu.serve() as base_url, ThreadPoolExecutor(250) as pool:
        statuses = list(pool.map(functools.partial(post, urlsplit(base_url).netloc), range(250)))
    assert statuses == [200] * 250
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


# --- the modules ----------------------------------------------------------------------------


def test_the_emulators_modules_import_one_way() -> None:
    """No two modules of the emulator import each other, even for type checking only."""
    folder = Path(langchain_metaso.testing.__file__).parent
    imports = {}
    for module in folder.glob("_*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imports[module.stem] = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        }
    # The walk found the relative imports.
    assert imports["_server"]
    assert imports["_emulator"]
    for module, imported in imports.items():
        seen: set[str] = set()
        todo = list(imported)
        while todo:
            name = todo.pop()
            assert name != module, f"{module} imports itself through {sorted(seen)}"
            if name not in seen:
                seen.add(name)
                todo.extend(imports.get(name, ()))


def test_the_emulator_reads_the_scopes_of_the_package_table() -> None:
    assert _api.SCOPES is langchain_metaso.scopes.SCOPES


def test_the_emulator_loads_neither_pydantic_nor_langchain() -> None:
    code = (
        "import sys, langchain_metaso.testing; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'langchain_core'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
