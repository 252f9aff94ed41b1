"""Fixtures shared by every unit test: an emulator, builders, and a clean environment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import httpx
import pytest
from redis_support import redis_server, redis_server_binary

import langchain_metaso._http.client as client_module
import langchain_metaso._http.pool as pool_module
import langchain_metaso._http.retry as retry_module
from langchain_metaso import MetasoConfig
from langchain_metaso.testing import MetasoEmulator

TEST_KEY = "test-key"

C = TypeVar("C", bound=MetasoConfig)


class Make(Protocol):
    """Builds any ``MetasoConfig`` subclass talking to an emulator in process."""

    def __call__(
        self, cls: type[C], /, *, emulator: MetasoEmulator | None = None, **kwargs: Any
    ) -> C: ...


@pytest.fixture(autouse=True)
def _no_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real key or base URL must never reach a unit test.
    monkeypatch.delenv("METASO_API_KEY", raising=False)
    monkeypatch.delenv("METASO_BASE_URL", raising=False)


@pytest.fixture
def emulator() -> MetasoEmulator:
    """A fresh emulator accepting ``Bearer test-key``."""
    return MetasoEmulator(api_key=TEST_KEY)


@pytest.fixture
def emulator_url(emulator: MetasoEmulator) -> Iterator[str]:
    """The ``emulator`` fixture served over HTTP on 127.0.0.1; its base URL."""
    with emulator.serve() as base_url:
        yield base_url


@pytest.fixture(params=["transport", "socket"])
def api(request: pytest.FixtureRequest, emulator: MetasoEmulator) -> Iterator[httpx.Client]:
    """A plain httpx client of ``emulator``, in process then over a socket: it sends
    ``Bearer test-key`` and puts 302.AI's path prefix ``/metaso`` before each path."""
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    if request.param == "transport":
        with httpx.Client(
            transport=emulator.transport(), base_url="http://metaso.test/metaso", headers=headers
        ) as client:
            yield client
        return
    with (
        emulator.serve() as base_url,
        httpx.Client(base_url=base_url + "/metaso", headers=headers) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """A ``redis-server`` of the test session's own, on a free port of 127.0.0.1.

    Skips the tests that use it when ``redis-server`` is not installed, but fails them
    under ``CI=true``.
    """
    with redis_server(redis_server_binary()) as url:
        yield url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The session's Redis server, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server_url)
    client.flushall()
    client.close()
    return redis_server_url


@pytest.fixture
def make(emulator: MetasoEmulator) -> Make:
    """``make(cls, **kwargs)``: an instance wired to ``emulator`` (or ``emulator=``) in process.

    The key is ``test-key`` and the backoff tiny, so retry tests run fast; any keyword
    overrides these (``transport=None`` with ``base_url=`` to use a socket instead).
    """

    default = emulator

    def build(cls: type[C], /, *, emulator: MetasoEmulator | None = None, **kwargs: Any) -> C:
        target = emulator or default
        settings: dict[str, Any] = {
            "metaso_api_key": TEST_KEY,
            "transport": target.transport(),
            "retry_backoff": 0.001,
            **kwargs,
        }
        return cls(**settings)

    return build


@pytest.fixture(params=["sync", "async"])
def invoke(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``invoke(runnable, input, **kwargs)``: once through ``invoke``, once through
    ``ainvoke`` on a fresh event loop, so one test body covers both paths."""
    if request.param == "sync":
        return lambda runnable, value, **kwargs: runnable.invoke(value, **kwargs)
    return lambda runnable, value, **kwargs: asyncio.run(runnable.ainvoke(value, **kwargs))


class _SleepRecorder:
    """Stands in for a module (``time`` or ``asyncio``) whose ``sleep`` only records."""

    def __init__(self, real: Any, sleep: Callable[[float], Any]) -> None:
        self._real = real
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Delays the HTTP core asked to sleep between attempts, recorded instead of slept."""
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)

    async def asleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    # Only the client module's view of the modules changes: the emulator still sleeps.
    monkeypatch.setattr(client_module, "time", _SleepRecorder(time, sleep))
    monkeypatch.setattr(client_module, "asyncio", _SleepRecorder(asyncio, asleep))
    return delays


class FakeClock:
    """A monotonic clock that only moves when told to, or when the HTTP core sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The HTTP core's clock (deadlines, backoff, the shared cooldown) made fake: waiting
    advances it at once, so time limits are tested by what the clock says, not by waiting."""
    fake = FakeClock()
    fake_time = _SleepRecorder(time, fake.sleep)
    fake_time.monotonic = fake.monotonic  # type: ignore[attr-defined]
    for module in (client_module, retry_module, pool_module):
        monkeypatch.setattr(module, "time", fake_time)
    monkeypatch.setattr(client_module, "asyncio", _SleepRecorder(asyncio, fake.asleep))
    return fake
