"""Issue 6, cancellation and concurrency, against the emulator over a real socket.

- A cancelled ``ainvoke`` (``task.cancel()``, an ``asyncio.wait_for`` timeout), while the
  request is in flight, waits for a connection or sleeps before a retry, leaks no
  connection, and the same instance serves the next call. (Event loops that end without
  closing are in ``test_http_pool.py``.)
- 8 threads sharing one tool and 8 tasks sharing one retriever, with seeded random
  faults: every call ends in a result or a typed error, each answer is its own query's,
  and the connections opened stay within the pool plus one per connection a fault broke.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import TEST_KEY, settle, tool_call
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage

from langchain_metaso import MetasoError, MetasoRetriever, MetasoSearchTool, MetasoTimeoutError
from langchain_metaso.testing import Fault, MetasoEmulator

WORKERS = 8
CALLS_PER_WORKER = 500
FAULT_RATE = 0.05
TIMEOUT = 0.3
# How long a "slow" fault holds its answer: past the client's timeout, so the client
# gives up (a read timeout) and the server lets go of the connection soon after.
SLOW = 2 * TIMEOUT
DELAY = 0.5  # a request kept in flight while the test cancels it
# Bounded waits: poll this often, at most this many times.
POLL = 0.02
POLLS = 250


FAULTS: dict[str, Callable[[], Fault]] = {
    "503": lambda: Fault.status(503),
    "502": lambda: Fault.status(502),
    "429": lambda: Fault.status(429, retry_after=0),
    "drop": Fault.drop,
    "truncated": Fault.truncated,
    "slow": lambda: Fault.delay(SLOW),
    "business error": lambda: Fault.business_error(1000, "参数错误"),
    "garbage": Fault.garbage,
}


# Faults after which the connection is gone: the client must open another. A "slow" one
# breaks it by a client timeout, counted with every other timeout (see TimedOut).
BREAKING = {"drop", "truncated"}


def random_script(seed: int, length: int) -> list[str]:
    """Fault names (or "" for a normal answer) for ``length`` requests, reproducibly."""
    rng = random.Random(seed)
    kinds = sorted(FAULTS)
    return [rng.choice(kinds) if rng.random() < FAULT_RATE else "" for _ in range(length)]


def script(emulator: MetasoEmulator, names: list[str]) -> None:
    emulator.script(*(FAULTS[name]() if name else Fault.delay(0) for name in names))


async def asettle(emulator: MetasoEmulator, at_most: int) -> int:
    for _ in range(POLLS):
        if emulator.stats.connections_open <= at_most:
            break
        await asyncio.sleep(POLL)
    return emulator.stats.connections_open


async def until_in_flight(emulator: MetasoEmulator, count: int) -> None:
    for _ in range(POLLS):
        if emulator.stats.in_flight >= count:
            return
        await asyncio.sleep(POLL / 4)
    raise AssertionError(f"never saw {count} requests in flight")


def settings(emulator_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "metaso_api_key": TEST_KEY,
        "base_url": emulator_url,
        "timeout": TIMEOUT,
        "retry_backoff": 0.001,
        **overrides,
    }


def titled(query: str, documents: list[Document]) -> bool:
    return bool(documents) and all(query in doc.metadata["title"] for doc in documents)


# --- cancellation -----------------------------------------------------------------------


@dataclass(frozen=True)
class AsyncCaller:
    name: str
    build: Callable[..., Any]
    call: Callable[[Any, str], Awaitable[Any]]
    answered: Callable[[str, Any], bool]


async def retriever_call(retriever: MetasoRetriever, query: str) -> Any:
    return await retriever.ainvoke(query)


async def tool_ainvoke(tool: MetasoSearchTool, query: str) -> Any:
    return await tool.ainvoke(tool_call(tool.name, query=query))


def tool_answered(query: str, message: ToolMessage) -> bool:
    return message.status == "success" and titled(query, message.artifact)


ASYNC_CALLERS = [
    AsyncCaller("retriever", MetasoRetriever, retriever_call, titled),
    AsyncCaller("tool", MetasoSearchTool, tool_ainvoke, tool_answered),
]


@pytest.fixture(params=ASYNC_CALLERS, ids=[caller.name for caller in ASYNC_CALLERS])
def caller(request: pytest.FixtureRequest) -> AsyncCaller:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def instance(caller: AsyncCaller, emulator_url: str) -> Any:
    """An instance of ``caller`` allowed one connection, patient enough to outwait ``DELAY``."""
    return caller.build(**settings(emulator_url, max_concurrency=1, timeout=DELAY * 10))


async def cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task``, and see it end cancelled."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def then_works_and_closes(
    caller: AsyncCaller, instance: Any, emulator: MetasoEmulator
) -> None:
    """The instance answers the next call, then closing it leaves no connection open."""
    answer = await asyncio.wait_for(caller.call(instance, "下一个"), DELAY * 20)
    assert caller.answered("下一个", answer)
    # Its one connection, and the cancelled call's until the server notices it is gone.
    assert emulator.stats.connections_open <= 2
    await instance.aclose()
    assert await asettle(emulator, 0) == 0


async def by_cancel(emulator: MetasoEmulator, call: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(call)
    await until_in_flight(emulator, 1)
    await cancel(task)


async def by_wait_for(emulator: MetasoEmulator, call: Awaitable[Any]) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(call, DELAY / 5)


@pytest.mark.asyncio
@pytest.mark.parametrize("stop", [by_cancel, by_wait_for], ids=["cancel", "wait_for"])
async def test_a_call_stopped_in_flight_keeps_no_slot(
    caller: AsyncCaller,
    instance: Any,
    emulator: MetasoEmulator,
    stop: Callable[[MetasoEmulator, Awaitable[Any]], Awaitable[None]],
) -> None:
    emulator.script(Fault.delay(DELAY))
    await stop(emulator, caller.call(instance, "慢"))
    assert emulator.stats.requests == 1
    # With one connection allowed, a slot kept by the stopped call would hang this one.
    await then_works_and_closes(caller, instance, emulator)


@pytest.mark.asyncio
async def test_cancel_while_waiting_for_a_connection(
    caller: AsyncCaller, instance: Any, emulator: MetasoEmulator
) -> None:
    emulator.script(Fault.delay(DELAY))
    first = asyncio.ensure_future(caller.call(instance, "第一"))
    await until_in_flight(emulator, 1)
    waiting = asyncio.ensure_future(caller.call(instance, "第二"))
    await asyncio.sleep(DELAY / 10)
    await cancel(waiting)
    assert caller.answered("第一", await first)
    assert emulator.stats.requests == 1  # the cancelled call never reached the server
    await then_works_and_closes(caller, instance, emulator)


@pytest.mark.asyncio
async def test_cancel_while_sleeping_before_a_retry(
    caller: AsyncCaller, instance: Any, emulator: MetasoEmulator
) -> None:
    # Short: the cooldown the 429 asks for also holds back the instance's next call.
    emulator.script(Fault.status(429, retry_after=2))
    task = asyncio.ensure_future(caller.call(instance, "重试"))
    for _ in range(POLLS):
        if emulator.stats.requests == 1 and emulator.stats.in_flight == 0:
            break
        await asyncio.sleep(POLL / 4)
    await asyncio.sleep(POLL)
    await cancel(task)
    assert emulator.stats.requests == 1
    await then_works_and_closes(caller, instance, emulator)


# --- many calls at once, with random faults ---------------------------------------------


@dataclass
class Tally:
    """How calls ended; ``unhandled`` holds anything but a result or a typed error."""

    successes: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    mismatched: list[str] = field(default_factory=list)
    unhandled: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def calls(self) -> int:
        return self.successes + sum(self.errors.values()) + len(self.unhandled)

    def answer(self, query: str, answered: bool) -> None:
        with self.lock:
            if answered:
                self.successes += 1
            else:
                self.mismatched.append(query)

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    def crash(self, error: BaseException) -> None:
        with self.lock:
            self.unhandled.append(error)


def call_tool(tally: Tally, tool: MetasoSearchTool, query: str) -> None:
    try:
        message = tool.invoke(tool_call(tool.name, query=query))
    except Exception as exc:  # a tool must never raise
        tally.crash(exc)
        return
    if message.status == "success":
        tally.answer(query, tool_answered(query, message))
    elif str(message.content).startswith("Metaso search"):  # our errors' text
        timeout = "ReadTimeout" in str(message.content)
        tally.error("timeout" if timeout else str(message.content).split(":")[0])
    else:
        tally.crash(AssertionError(f"not a typed error: {message.content}"))


async def call_retriever(tally: Tally, retriever: MetasoRetriever, query: str) -> None:
    try:
        documents = await retriever.ainvoke(query)
    except MetasoError as exc:
        tally.error("timeout" if isinstance(exc, MetasoTimeoutError) else type(exc).__name__)
    except Exception as exc:
        tally.crash(exc)
    else:
        tally.answer(query, titled(query, documents))


class TimedOut(logging.Handler):
    """Counts the attempts that timed out: the client hung up on each, so each cost a
    connection. A slow fault always does; on a loaded machine an ordinary answer may too."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._logger = logging.getLogger("langchain_metaso")

    def emit(self, record: logging.LogRecord) -> None:
        if "MetasoTimeoutError" in record.getMessage():  # a retried attempt
            self.count += 1

    def __enter__(self) -> TimedOut:
        self._level = self._logger.level
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


def check_run(
    tally: Tally, emulator: MetasoEmulator, names: list[str], timed_out: TimedOut
) -> None:
    assert tally.unhandled == []
    assert tally.mismatched == []
    assert tally.calls == WORKERS * CALLS_PER_WORKER
    assert tally.successes > 0
    assert tally.errors
    served = emulator.stats.requests
    assert served < len(names)  # so every request consumed one scripted entry
    broken = sum(name in BREAKING for name in names[:served])
    # Timeouts: the retried ones (logged) and the ones that ended a call.
    timeouts = timed_out.count + tally.errors["timeout"]
    assert timeouts >= sum(name == "slow" for name in names[:served])  # each one timed out
    assert emulator.stats.connections_opened <= WORKERS + broken + timeouts


def test_threads_share_one_tool(emulator: MetasoEmulator, emulator_url: str) -> None:
    tool = MetasoSearchTool(**settings(emulator_url, size=3))
    names = random_script(seed=6, length=WORKERS * CALLS_PER_WORKER * 2)
    script(emulator, names)
    tally = Tally()

    def work(worker: int) -> None:
        for number in range(CALLS_PER_WORKER):
            # Bracketed, so no query is a part of another ("[t1-1]" is not in "[t1-10]").
            call_tool(tally, tool, f"[t{worker}-{number}] 秘塔")

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(WORKERS)]
    with TimedOut() as timed_out:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    check_run(tally, emulator, names, timed_out)
    tool.close()
    assert settle(emulator, 0) == 0


@pytest.mark.asyncio
async def test_tasks_share_one_retriever(emulator: MetasoEmulator, emulator_url: str) -> None:
    retriever = MetasoRetriever(**settings(emulator_url, k=3))
    names = random_script(seed=60, length=WORKERS * CALLS_PER_WORKER * 2)
    script(emulator, names)
    tally = Tally()

    async def work(worker: int) -> None:
        for number in range(CALLS_PER_WORKER):
            await call_retriever(tally, retriever, f"[a{worker}-{number}] 秘塔")

    with TimedOut() as timed_out:
        await asyncio.gather(*(work(worker) for worker in range(WORKERS)))

    check_run(tally, emulator, names, timed_out)
    await retriever.aclose()
    assert await asettle(emulator, 0) == 0
