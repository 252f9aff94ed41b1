"""What the unit tests share: an emulator and builders wired to it, a clean environment,
a fake clock, and the small helpers several test modules call (tool calls, cache doubles)."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Protocol, TypeVar

import httpx
import pytest
from hypothesis import settings
from langchain_core.messages import ToolMessage
from ray_support import local_ray
from redis_support import redis_server, redis_server_binary

import langchain_metaso._http.body as body_module
import langchain_metaso._http.client as client_module
import langchain_metaso._http.pool as pool_module
import langchain_metaso._http.retry as retry_module
from langchain_metaso import MetasoConfig, MetasoError
from langchain_metaso.testing import MetasoEmulator

TEST_KEY = "test-key"
# A key no test sends by chance: any trace of it in a text is a leak.
SECRET = "test-key-SHOULD-NOT-LEAK"

# No per-example deadline for property tests: on a loaded 2-core machine any wall-clock
# bound is a flaky test (one failed so at load 17).
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

C = TypeVar("C", bound=MetasoConfig)
Invoke = Callable[..., Any]
"""The ``invoke`` fixture: ``invoke(runnable, input, **kwargs)``, sync or async."""


class Make(Protocol):
    """Builds any ``MetasoConfig`` subclass talking to an emulator in process."""

    def __call__(
        self, cls: type[C], /, *, emulator: MetasoEmulator | None = None, **kwargs: Any
    ) -> C: ...


class Served(Protocol):
    """Builds any ``MetasoConfig`` subclass talking to the emulator over a socket."""

    def __call__(self, cls: type[C], /, **kwargs: Any) -> C: ...


@pytest.fixture(autouse=True)
def _no_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's real key or base URL must never reach a unit test.
    monkeypatch.delenv("METASO_API_KEY", raising=False)
    monkeypatch.delenv("METASO_BASE_URL", raising=False)


@pytest.fixture
def gc_paused() -> Iterator[None]:
    """No garbage collection during the test. One started while a JSON parser is deep in
    its recursion (bodies nested near Python's limit) runs the finalizers of earlier tests'
    objects there, with no stack left: their RecursionError is unraisable, and pytest
    reports it in whatever test runs next on the worker."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
    # Plain HTTP: without verify=False httpx would load the CA bundle, ~30 ms a client.
    with (
        emulator.serve() as base_url,
        httpx.Client(base_url=base_url + "/metaso", headers=headers, verify=False) as client,
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


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[ModuleType]:
    """The ``ray`` module, initialised on a local cluster of the test module's own (see
    ``ray_support``; stopped after it, so its daemons do not slow the tests that follow);
    its address is ``ray_cluster.get_runtime_context().gcs_address``."""
    yield from local_ray()


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


@pytest.fixture
def served(make: Make, emulator_url: str) -> Iterator[Served]:
    """``served(cls, **kwargs)``: as ``make``, but talking to ``emulator`` over a socket on
    127.0.0.1; what it built is closed after the test."""
    built: list[MetasoConfig] = []

    def build(cls: type[C], /, **kwargs: Any) -> C:
        instance = make(cls, **{"transport": None, "base_url": emulator_url, **kwargs})
        built.append(instance)
        return instance

    yield build
    for instance in built:
        instance.close()


@pytest.fixture(params=["sync", "async"])
def invoke(request: pytest.FixtureRequest) -> Invoke:
    """``invoke(runnable, input, **kwargs)``: once through ``invoke``, once through
    ``ainvoke`` on a fresh event loop, so one test body covers both paths."""
    if request.param == "sync":
        return lambda runnable, value, **kwargs: runnable.invoke(value, **kwargs)
    return lambda runnable, value, **kwargs: asyncio.run(runnable.ainvoke(value, **kwargs))


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """``"sync"`` then ``"async"``: for tests that drive other methods than ``invoke``."""
    return str(request.param)


def failure(invoke: Invoke, target: Any, value: Any = "秘塔") -> MetasoError:
    """The typed error ``invoke(target, value)`` raises."""
    with pytest.raises(MetasoError) as caught:
        invoke(target, value)
    return caught.value


def tool_call(tool_name: str, /, **args: Any) -> dict[str, Any]:
    """A model's call of the tool named ``tool_name``, with ``args``."""
    return {"name": tool_name, "args": args, "id": "call-1", "type": "tool_call"}


def tool_message(invoke: Invoke, tool: Any, /, **args: Any) -> ToolMessage:
    """The ``ToolMessage`` answering a model's call of ``tool`` with ``args``."""
    result = invoke(tool, tool_call(tool.name, **args))
    assert isinstance(result, ToolMessage)
    assert result.tool_call_id == "call-1"
    return result


def settle(emulator: MetasoEmulator, at_most: int = 0) -> int:
    """Connections the served emulator holds open once at most ``at_most`` are left, or
    after a bounded wait: a client's close reaches the server a moment later."""
    for _ in range(250):
        if emulator.stats.connections_open <= at_most:
            break
        time.sleep(0.02)
    return emulator.stats.connections_open


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
    """A clock that only moves when told to, or when the HTTP core sleeps; called, it
    reads the time (as the caches' ``clock=`` does)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    __call__ = monotonic

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
    for module in (client_module, retry_module, pool_module, body_module):
        monkeypatch.setattr(module, "time", fake_time)
    monkeypatch.setattr(client_module, "asyncio", _SleepRecorder(asyncio, fake.asleep))
    return fake


class RecordingCache:
    """A dict-backed cache that records every key it is asked about and stores values as
    a JSON backend would."""

    def __init__(self) -> None:
        self.store: dict[str, Any] = {}
        self.keys: list[str] = []

    def get(self, key: str) -> Any | None:
        self.keys.append(key)
        return self.store.get(key)

    def set(self, key: str, value: Any) -> None:
        self.keys.append(key)
        self.store[key] = json.loads(json.dumps(value))
