"""The emulator's options for benchmarks: fixed answers, a chosen port, and serving from a
child process (``EmulatorProcess``, ``python -m langchain_metaso.testing serve``).

The command line runs as a process where serving is the point (until stdin closes, or
``--max-seconds``); its ``--help`` texts are the parser's, shown in this process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from langchain_metaso.testing import EmulatorProcess, EmulatorStats, Fault, MetasoEmulator
from langchain_metaso.testing.__main__ import main
from langchain_metaso.testing._process import run_command

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SEARCH = {"q": "秘塔", "scope": "webpage"}
PEER = '{"results": ["秘塔"]}'


@pytest.fixture
def served() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(api_key=KEY, fixed_answers={"/peer/search": PEER}) as process:
        yield process


# --- fixed answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["transport", "socket"])
def test_fixed_answer_is_served_verbatim_before_authorization(route: str) -> None:
    emu = MetasoEmulator(api_key=KEY, fixed_answers={"/peer/search": PEER.encode()})

    def post(client: httpx.Client) -> tuple[httpx.Response, httpx.Response]:
        # No key at all: a fixed answer stands in for another service.
        return client.post("/peer/search", json={}), client.post("/search", json=SEARCH)

    if route == "transport":
        with httpx.Client(transport=emu.transport(), base_url="http://metaso.test") as client:
            fixed, api = post(client)
    else:
        with emu.serve() as url, httpx.Client(base_url=url) as client:
            fixed, api = post(client)
    assert fixed.status_code == 200
    assert fixed.content == PEER.encode()
    assert fixed.headers["content-type"].startswith("application/json")
    assert api.status_code == 401  # any other path is still the API
    assert emu.stats.requests == 2


def test_fixed_answer_matches_the_exact_path_only() -> None:
    emu = MetasoEmulator(api_key=KEY, fixed_answers={"/metaso/search": PEER.encode()})
    with httpx.Client(transport=emu.transport(), base_url="http://metaso.test") as client:
        fixed = client.post("/metaso/search", json=SEARCH, headers=AUTH)
        api = client.post("/api/v1/search", json=SEARCH, headers=AUTH)  # the same endpoint
    assert fixed.content == PEER.encode()
    assert "webpages" in api.json()


def test_faults_and_the_load_limit_apply_to_fixed_answers() -> None:
    emu = MetasoEmulator(fixed_answers={"/peer": PEER.encode()}, max_in_flight=0)
    with httpx.Client(transport=emu.transport(), base_url="http://metaso.test") as client:
        assert client.post("/peer").status_code == 429
        emu.max_in_flight = None
        emu.script(Fault.status(503))
        assert client.post("/peer").status_code == 503
        assert client.post("/peer").content == PEER.encode()


# --- a chosen port ---------------------------------------------------------------------------


def test_serve_on_a_chosen_port() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emu = MetasoEmulator(api_key=KEY)
    with emu.serve(port) as url:
        assert url == f"http://127.0.0.1:{port}"
        assert httpx.post(f"{url}/search", json=SEARCH, headers=AUTH).status_code == 200


# --- the command protocol, in process ---------------------------------------------------------


def test_command_sets_settings_scripts_faults_and_replies_statistics() -> None:
    emu = MetasoEmulator()
    reply = run_command(
        emu,
        json.dumps(
            {
                "set": {"latency": 0.25, "max_in_flight": 3, "today": "2024-02-29"}
                | {"fixed_answers": {"/p": "秘塔"}},
                "script": [{"fault": "status", "code": 503, "retry_after": 0}, {"fault": "drop"}],
            }
        ),
    )
    assert reply == {
        "requests": 0,
        "in_flight": 0,
        "peak_in_flight": 0,
        "connections_opened": 0,
        "connections_open": 0,
        "rejected_429": 0,
    }
    assert (emu.latency, emu.max_in_flight, emu.today) == (0.25, 3, date(2024, 2, 29))
    assert emu.fixed_answers == {"/p": "秘塔".encode()}
    with httpx.Client(transport=emu.transport(), base_url="http://metaso.test") as client:
        emu.latency = 0.0
        first = client.post("/p")
        assert first.status_code == 503
        assert first.headers["retry-after"] == "0"
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/p")
        assert client.post("/p").text == "秘塔"
    assert run_command(emu, "{}")["requests"] == 3
    assert emu.requests == []  # nobody reads them across the pipe: not kept
    assert run_command(emu, '{"reset": true}')["requests"] == 0


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('{"set": {"nope": 1}}', "unknown setting 'nope'"),
        ('{"script": [{"fault": "_plan"}]}', "no Fault constructor '_plan'"),
        ('{"script": [{"fault": "kind"}]}', "no Fault constructor 'kind'"),
        ('{"script": [{"fault": "status"}]}', "TypeError"),
        ('{"set": {"today": "yesterday"}}', "ValueError"),
        ("not json", "JSONDecodeError"),
        ("[]", "AttributeError"),
    ],
)
def test_a_bad_command_gets_an_error_reply(line: str, error: str) -> None:
    emu = MetasoEmulator()
    reply = run_command(emu, line)
    assert set(reply) == {"error"}
    assert error in reply["error"]


# --- the child process ------------------------------------------------------------------------


def test_process_serves_the_api_and_fixed_answers(served: EmulatorProcess) -> None:
    with httpx.Client(base_url=served.url) as client:
        assert client.post("/peer/search").json() == json.loads(PEER)
        assert client.post("/search", json=SEARCH, headers=AUTH).json()["webpages"]
        assert client.post("/search", json=SEARCH).status_code == 401  # its key was set
    stats = served.stats
    assert isinstance(stats, EmulatorStats)
    assert (stats.requests, stats.connections_opened) == (3, 1)


def test_process_takes_settings_faults_and_resets(served: EmulatorProcess) -> None:
    served.set(max_in_flight=0)
    assert httpx.post(f"{served.url}/peer/search").status_code == 429
    served.set(max_in_flight=None)
    served.script({"fault": "status", "code": 502})
    assert httpx.post(f"{served.url}/peer/search").status_code == 502
    assert served.stats.rejected_429 == 1
    assert served.reset().requests == 0


def test_process_takes_bytes_and_dates(served: EmulatorProcess) -> None:
    served.set(today=date(2024, 2, 29), fixed_answers={"/b": '{"秘塔": 1}'.encode()})
    assert httpx.post(f"{served.url}/b").json() == {"秘塔": 1}
    with pytest.raises(TypeError, match="object cannot be sent"):
        served.set(latency=object())


def test_process_refuses_a_bad_setting_without_echoing_it(served: EmulatorProcess) -> None:
    with pytest.raises(ValueError, match="unknown setting 'typo'") as caught:
        served.set(api_key="sk-secret-value", typo=1)
    assert "sk-secret-value" not in str(caught.value)
    assert served.stats.requests == 0  # the process still answers


def test_process_stops_when_closed(served: EmulatorProcess) -> None:
    url = served.url
    served.close()
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/search", json=SEARCH, headers=AUTH)


@pytest.mark.parametrize(
    ("key", "statuses"),
    [
        ([], (200, 200)),  # no key set: any bearer token is accepted
        (["--api-key", KEY], (200, 401)),  # a wrong key can be tried offline
    ],
)
def test_command_line_serves_until_stdin_closes(key: list[str], statuses: tuple[int, int]) -> None:
    command = [sys.executable, "-m", "langchain_metaso.testing", "serve", "--port", "0", *key]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
    ) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        url = child.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        right = httpx.post(f"{url}/search", json=SEARCH, headers=AUTH)
        wrong = httpx.post(f"{url}/search", json=SEARCH, headers={"Authorization": "Bearer x"})
        child.stdin.write('{"set": {"latency": 0}}\n')
        child.stdin.flush()
        assert json.loads(child.stdout.readline())["requests"] == 2
        child.stdin.close()
        assert child.wait(30) == 0
    assert (right.status_code, wrong.status_code) == statuses


def test_command_line_stops_by_itself_after_max_seconds() -> None:
    command = [sys.executable, "-m", "langchain_metaso.testing", "serve", "--max-seconds", "0"]
    # stdin stays open: only the time limit can end it.
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as child:
        assert child.wait(30) == 0
        assert child.stdout is not None
        assert child.stdout.read().startswith(b"http://127.0.0.1:")


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"]])
def test_command_line_help_is_plain_text(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "emulator" in shown
    assert "``" not in shown
    assert "--api-key" in shown or args == ["--help"]
