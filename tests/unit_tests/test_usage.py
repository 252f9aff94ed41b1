"""``metaso_usage``: credits, requests and cache hits counted across threads and tasks,
and the budgets that refuse a call before it is sent."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import itertools
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from conftest import Make, tool_call
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableLambda
from pydantic import ValidationError
from redis_support import free_port

from langchain_metaso import (
    ChatMetaso,
    CreditBudget,
    InMemoryCache,
    MetasoAnswerTool,
    MetasoBudgetExceededError,
    MetasoConnectionError,
    MetasoError,
    MetasoReaderTool,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoToolkit,
    MetasoUsage,
    RedisCreditBudget,
    metaso_usage,
)
from langchain_metaso.testing import Fault, MetasoEmulator
from langchain_metaso.usage import (
    EXPECTED_CREDITS,
    Budget,
    Reservation,
    credits_from,
    record_usage,
)


def search(
    credits: float | None = 10, *, cache_hit: bool = False, budget: Budget | None = None
) -> None:
    """What the HTTP core does around one search call."""
    if cache_hit:
        record_usage("search", None, cache_hit=True)
        return
    with Reservation("search", budget) as reservation:
        reservation.settle(credits)


def test_calls_inside_the_block_are_counted() -> None:
    with metaso_usage() as usage:
        search(10)
        search(4.5)
        search(cache_hit=True)
        with Reservation("reader") as reservation:
            reservation.settle(None)  # a text answer says nothing of its cost
    assert (usage.credits, usage.requests, usage.cache_hits) == (14.5, 3, 1)
    assert usage.unpriced_requests == 1
    assert usage.by_endpoint["search"].credits == 14.5
    assert usage.by_endpoint["search"].cache_hits == 1
    assert usage.by_endpoint["reader"].requests == 1
    assert repr(usage) == "MetasoUsage(credits=14.5, requests=3, cache_hits=1)"


def test_calls_outside_any_block_are_not_counted_and_not_refused() -> None:
    with metaso_usage(credit_budget=0) as usage:
        pass
    search(10)
    assert usage.requests == 0


def test_nested_blocks_all_count() -> None:
    with metaso_usage() as outer:
        search(1)
        with metaso_usage() as inner:
            search(2)
        search(4)
    assert (outer.credits, outer.requests) == (7, 3)
    assert (inner.credits, inner.requests) == (2, 1)


def test_asyncio_tasks_started_inside_count() -> None:
    async def call() -> None:
        await asyncio.sleep(0)
        search(1)

    async def scenario() -> MetasoUsage:
        with metaso_usage() as usage:
            await asyncio.gather(*(call() for _ in range(20)))
            await asyncio.to_thread(search, 1)
        return usage

    usage = asyncio.run(scenario())
    assert (usage.credits, usage.requests) == (21, 21)


def test_threads_count_when_they_run_in_a_copy_of_the_context() -> None:
    with metaso_usage() as usage, ThreadPoolExecutor(4) as pool:
        copied = [pool.submit(contextvars.copy_context().run, search, 1) for _ in range(8)]
        for future in copied:
            future.result()
    assert usage.requests == 8


def test_threads_started_without_the_context_do_not_count() -> None:
    # The documented rule: a plain thread or executor starts with an empty context.
    with metaso_usage() as usage:
        thread = threading.Thread(target=search, args=(1,))
        thread.start()
        thread.join()
        with ThreadPoolExecutor(2) as pool:
            pool.submit(search, 1).result()
    assert usage.requests == 0


def test_langchain_batch_copies_the_context_into_its_threads() -> None:
    runnable: RunnableLambda[float, None] = RunnableLambda(lambda credits: search(credits))
    with metaso_usage() as usage:
        runnable.batch([1, 2, 3, 4], config={"max_concurrency": 4})
    assert (usage.credits, usage.requests) == (10, 4)


def test_counting_from_many_threads_loses_nothing() -> None:
    def work() -> None:
        for _ in range(2000):
            search(1)

    with metaso_usage() as usage:
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(work,)) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert (usage.credits, usage.requests, usage.by_endpoint["search"].requests) == (
        6000,
        6000,
        6000,
    )


# --- budgets --------------------------------------------------------------------------


def test_the_call_after_the_budget_is_spent_is_refused_before_sending() -> None:
    with metaso_usage(credit_budget=20) as usage:
        search(10)
        search(15)  # starts with 10 of 20 spent: allowed, and overspends
        with pytest.raises(MetasoBudgetExceededError) as caught:
            search(10)
    assert usage.requests == 2
    error = caught.value
    assert (error.budget, error.used, error.endpoint) == (20, 25, "search")
    assert isinstance(error, MetasoError)
    assert str(error) == (
        "Metaso search was not sent: the credit budget of 20 credits is spent (25 used), "
        "and no Metaso call can be made until the developer raises it (credit_budget, "
        "metaso_usage). Do not call Metaso again; go on with what you have."
    )


def test_cache_hits_are_free_and_still_served_when_the_budget_is_spent() -> None:
    with metaso_usage(credit_budget=5) as usage:
        search(5)
        search(cache_hit=True)
        search(cache_hit=True)
        with pytest.raises(MetasoBudgetExceededError):
            search(1)
    assert (usage.credits, usage.cache_hits) == (5, 2)


def test_an_inner_block_cannot_lift_the_outer_budget() -> None:
    with metaso_usage(credit_budget=3):
        search(3)
        with metaso_usage(credit_budget=100), pytest.raises(MetasoBudgetExceededError):
            search(1)


def test_a_new_block_starts_a_new_budget() -> None:
    with metaso_usage(credit_budget=3):
        search(3)
    with metaso_usage(credit_budget=3) as usage:
        search(3)
    assert usage.credits == 3


def test_an_instance_budget_is_shared_by_its_copies() -> None:
    budget = CreditBudget(12)
    assert copy.copy(budget) is budget
    assert copy.deepcopy({"budget": budget})["budget"] is budget
    search(5, budget=budget)
    search(cache_hit=True, budget=budget)
    search(7, budget=budget)
    assert budget.spent == 12
    with pytest.raises(MetasoBudgetExceededError, match=r"budget of 12 credits is spent \(12"):
        search(1, budget=budget)
    assert repr(budget) == "CreditBudget(limit=12, spent=12)"


def test_an_instance_budget_and_a_block_budget_both_apply() -> None:
    budget = CreditBudget(100)
    with metaso_usage(credit_budget=5) as usage:
        search(5, budget=budget)
        with pytest.raises(MetasoBudgetExceededError, match="budget of 5 credits"):
            search(1, budget=budget)
    assert budget.spent == usage.credits == 5


def test_a_pickled_budget_keeps_what_was_spent_and_counts_on_its_own() -> None:
    budget = CreditBudget(10)
    search(4, budget=budget)
    clone = pickle.loads(pickle.dumps(budget))
    search(6, budget=clone)
    assert (budget.spent, clone.spent) == (4, 10)
    with pytest.raises(MetasoBudgetExceededError):
        search(1, budget=clone)
    search(1, budget=budget)


@pytest.mark.parametrize("limit", [-1, float("nan")])
def test_a_budget_must_be_a_number_of_credits(limit: float) -> None:
    with pytest.raises(ValueError, match="credit_budget"):
        CreditBudget(limit)
    with pytest.raises(ValueError, match="credit_budget"), metaso_usage(credit_budget=limit):
        pass


@pytest.mark.parametrize(
    ("answer", "credits"),
    [
        ({"credits": 10}, 10.0),
        ({"credits": 2.5}, 2.5),
        ({"credits": "3"}, 3.0),
        ({"credits": None}, None),
        ({"credits": True}, None),
        ({"credits": "lots"}, None),
        ({"credits": -1}, None),
        ({"credits": float("nan")}, None),
        ({"credits": "inf"}, None),
        ({}, None),
        ("the reader's text answer", None),
        ([{"credits": 1}], None),
    ],
)
def test_credits_are_read_from_an_answer_when_it_says(answer: Any, credits: float | None) -> None:
    assert credits_from(answer) == credits


# --- through the whole stack: what the emulator charges, what is recorded -------------------


def test_every_call_of_every_class_is_counted_with_its_credits(
    make: Make, emulator: MetasoEmulator
) -> None:
    with metaso_usage() as usage:
        make(MetasoRetriever, k=3).invoke("秘塔")
        asyncio.run(make(MetasoSearchTool, size=5).ainvoke({"query": "秘塔"}))
        make(MetasoReaderTool).invoke({"url": "https://example.com/"})
        make(MetasoAnswerTool).invoke({"query": "秘塔是什么"})
    assert usage.requests == len(emulator.requests) == 4
    assert set(usage.by_endpoint) == {"search", "reader", "chat/completions"}
    # What the emulator charges: max(3, size) a search, 1 a page, 3 a fast answer.
    assert usage.credits == 3 + 5 + 1 + 3


def test_an_instance_budget_refuses_the_call_after_it_is_spent(
    make: Make, emulator: MetasoEmulator
) -> None:
    retriever = make(MetasoRetriever, k=3, credit_budget=5)  # the emulator charges 3 a search
    retriever.invoke("一")
    retriever.model_copy().invoke("二")  # 3 of 5 spent: allowed, and overspends
    with pytest.raises(MetasoBudgetExceededError, match="budget of 5 credits is spent"):
        retriever.invoke("三")
    assert len(emulator.requests) == 2


def test_an_agent_is_told_its_search_budget_is_spent(make: Make) -> None:
    tool = make(MetasoSearchTool, size=3)
    with metaso_usage(credit_budget=0):
        message = tool.invoke(tool_call(tool.name, query="秘塔"))
    assert message.status == "error"
    assert "credit budget of 0 credits is spent" in message.content
    assert "Do not call Metaso again" in message.content


def test_a_toolkits_tools_share_one_budget(make: Make, emulator: MetasoEmulator) -> None:
    search, reader, _ = make(MetasoToolkit, credit_budget=3).get_tools()
    search.invoke({"query": "秘塔", "size": 3})
    message = reader.invoke(tool_call(reader.name, url="https://a.cn/"))
    assert "budget of 3 credits is spent" in message.content
    assert len(emulator.requests) == 1


def test_cache_hits_cost_nothing_and_are_counted(make: Make, emulator: MetasoEmulator) -> None:
    retriever = make(MetasoRetriever, k=3, cache=InMemoryCache(), credit_budget=3)
    with metaso_usage() as usage:
        for _ in range(3):
            retriever.invoke("秘塔")
    assert (usage.requests, usage.cache_hits, usage.credits) == (1, 2, 3)
    assert len(emulator.requests) == 1


def test_what_a_search_cost_is_summed_once_a_call_not_on_each_document(make: Make) -> None:
    retriever = make(MetasoRetriever, k=4, cache=InMemoryCache())
    with metaso_usage() as usage:
        docs = retriever.invoke("秘塔")
        again = retriever.invoke("秘塔")  # a cache hit costs nothing
    assert usage.credits == 4
    tool = make(MetasoSearchTool, size=5)
    message = tool.invoke(tool_call(tool.name, query="秘塔"))
    # On each Document, summing them would count the call once a result.
    assert not any("credits" in doc.metadata for doc in [*docs, *again, *message.artifact])


# --- a budget holds under concurrency and streams -------------------------------------------


class Gate(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The emulator's transport, holding every request until each of ``calls`` calls was
    either sent or refused: then the requests go on. So every call asks the budget while
    the ones it let through are still in flight, with no sleep racing them."""

    def __init__(self, emulator: MetasoEmulator, calls: int) -> None:
        self._inner = emulator.transport()
        self._calls = calls
        self._seen = 0
        self._lock = threading.Lock()
        self._all_tried = threading.Event()
        self._all_tried_async: asyncio.Event | None = None

    def tried(self) -> None:
        """One call was sent or refused."""
        with self._lock:
            self._seen += 1
            if self._seen == self._calls:
                self._all_tried.set()
                if self._all_tried_async is not None:
                    self._all_tried_async.set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.tried()
        assert self._all_tried.wait(60)
        return self._inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._all_tried_async is None:
            self._all_tried_async = asyncio.Event()
            if self._all_tried.is_set():
                self._all_tried_async.set()
        self.tried()
        await self._all_tried_async.wait()
        return await self._inner.handle_async_request(request)


def race(
    mode: str, gate: Gate, calls: int, run: Callable[[], Any], arun: Callable[[], Any]
) -> list[str]:
    """``calls`` calls at once (``run`` in threads, or ``arun`` in tasks): "sent" or
    "refused" for each."""
    outcomes: list[str] = []

    def refused() -> None:
        outcomes.append("refused")
        gate.tried()

    def call() -> None:
        try:
            run()
            outcomes.append("sent")
        except MetasoBudgetExceededError:
            refused()

    async def acall() -> None:
        try:
            await arun()
            outcomes.append("sent")
        except MetasoBudgetExceededError:
            refused()

    async def all_at_once() -> None:
        await asyncio.gather(*(acall() for _ in range(calls)))

    if mode == "async":
        asyncio.run(all_at_once())
        return outcomes
    with ThreadPoolExecutor(calls) as pool:
        for future in [pool.submit(contextvars.copy_context().run, call) for _ in range(calls)]:
            future.result()
    return outcomes


def held(budget: CreditBudget | RedisCreditBudget) -> float:
    """Credits ``budget`` holds for calls in flight."""
    if isinstance(budget, CreditBudget):
        return budget.held
    return float(budget.connection.client.zcard(f"{budget.key}/held"))


@pytest.fixture(params=["CreditBudget", "RedisCreditBudget"])
def budget_of(request: pytest.FixtureRequest) -> Callable[[float], Budget]:
    """Makes a budget of some credits: in this process, or in the test's Redis."""
    if request.param == "CreditBudget":
        return CreditBudget
    redis_url = request.getfixturevalue("redis_url")
    return lambda credits: RedisCreditBudget(redis_url, credits=credits)


@pytest.mark.parametrize("where", ["instance", "metaso_usage"])
def test_concurrent_calls_start_only_while_the_budget_can_pay(
    make: Make,
    emulator: MetasoEmulator,
    mode: str,
    where: str,
    budget_of: Callable[[float], CreditBudget | RedisCreditBudget],
) -> None:
    """Limit 10, 3 credits a call: of 50 calls, 4 are sent (at 0, 3, 6 and 9 committed),
    however many run at once."""
    budget = budget_of(10)
    instance_budget = {"credit_budget": budget} if where == "instance" else {}
    gate = Gate(emulator, calls=49)
    retriever = make(MetasoRetriever, k=3, transport=gate, max_concurrency=64, **instance_budget)
    with metaso_usage(credit_budget=budget if where == "metaso_usage" else None) as usage:
        # One call first, so the budget has seen that a search costs 3 (it expects 10).
        make(MetasoRetriever, k=3, **instance_budget).invoke("primer")
        outcomes = race(
            mode, gate, 49, lambda: retriever.invoke("秘塔"), lambda: retriever.ainvoke("秘塔")
        )
    assert outcomes.count("sent") == 3
    assert len(emulator.requests) == 4
    assert (budget.spent, held(budget)) == (12, 0)
    if where == "metaso_usage":
        assert (usage.requests, usage.credits) == (4, 12)


def test_credits_only_held_by_calls_in_flight_do_not_refuse_for_good(
    budget_of: Callable[[float], CreditBudget | RedisCreditBudget],
) -> None:
    """Limit 10: a first search holds the 10 a search is expected to cost."""
    budget = budget_of(10)
    search = budget.reserve("search")
    with pytest.raises(MetasoBudgetExceededError) as caught:
        budget.reserve("reader")
    held_only = caught.value
    assert (held_only.spent, held_only.held, held_only.used) == (0, 10, 10)
    assert not held_only.fails_every_request
    assert "calls still running hold the 10 credits left" in str(held_only)
    assert "Do not call" not in str(held_only)
    budget.release(search)  # the search failed before an answer (a 500): nothing spent
    reader = budget.reserve("reader")  # holds 1
    budget.settle(budget.reserve("search"), 10)
    with pytest.raises(MetasoBudgetExceededError) as caught:
        budget.reserve("reader")
    spent = caught.value
    assert (spent.spent, spent.held, spent.fails_every_request) == (10, 1, True)
    assert "budget of 10 credits is spent (10 used)" in str(spent)
    budget.release(reader)


def test_parallel_tool_calls_refused_for_held_credits_are_told_to_try_again(
    make: Make, emulator: MetasoEmulator, mode: str
) -> None:
    """Budget 30, searches of 3: four first calls at once each hold the 10 a search is
    expected to cost, so one is refused while nothing is spent."""
    gate = Gate(emulator, calls=4)
    tool = make(MetasoSearchTool, size=3, credit_budget=30, transport=gate)
    call = tool_call(tool.name, query="秘塔")

    def told(message: ToolMessage) -> ToolMessage:
        if message.status == "error":
            gate.tried()  # refused: the requests sent may go on
        return message

    async def all_at_once() -> list[ToolMessage]:
        async def one() -> ToolMessage:
            return told(await tool.ainvoke(call))

        return await asyncio.gather(*(one() for _ in range(4)))

    if mode == "async":
        messages = asyncio.run(all_at_once())
    else:
        with ThreadPoolExecutor(4) as pool:
            messages = list(pool.map(lambda _: told(tool.invoke(call)), range(4)))
    [refused] = [message for message in messages if message.status == "error"]
    assert refused.content == (
        "Metaso search was not sent: calls still running hold the 30 credits left of the "
        "credit budget of 30 (0 are spent); this call may go through once they finish: try "
        "again after them."
    )
    budget = tool._credit_budget()
    assert isinstance(budget, CreditBudget)
    assert (budget.spent, budget.held) == (9, 0)
    assert tool.invoke(call).status == "success"  # trying again after them went through
    assert len(emulator.requests) == 4


def test_a_budget_raised_later_keeps_what_was_spent_for_every_copy(
    make: Make, emulator: MetasoEmulator
) -> None:
    retriever = make(MetasoRetriever, k=3, credit_budget=5)  # the emulator charges 3 a search
    copied = retriever.model_copy()
    retriever.invoke("一")
    retriever.invoke("二")  # 6 spent
    with pytest.raises(ValidationError):
        retriever.credit_budget = -1  # rejected: changes nothing
    with pytest.raises(MetasoBudgetExceededError, match="budget of 5 credits"):
        copied.invoke("三")
    retriever.credit_budget = 9  # 3 more, for the copy too: not 9 afresh
    copied.invoke("三")
    with pytest.raises(MetasoBudgetExceededError, match=r"budget of 9 credits is spent \(9"):
        retriever.invoke("四")
    assert len(emulator.requests) == 3


def test_a_budget_raised_on_a_toolkit_or_one_tool_is_raised_for_all_its_tools(
    make: Make, emulator: MetasoEmulator
) -> None:
    toolkit = make(MetasoToolkit, credit_budget=3)
    search, reader, answer = toolkit.get_tools()
    read = tool_call(reader.name, url="https://a.cn/")  # a page costs 1
    ask = tool_call(answer.name, query="秘塔是什么")  # an answer costs 3
    search.invoke({"query": "秘塔", "size": 3})
    assert "budget of 3 credits is spent" in reader.invoke(read).content
    toolkit.credit_budget = 4  # the tools handed out already take it
    assert reader.invoke(read).status == "success"
    assert "budget of 4 credits is spent" in answer.invoke(ask).content
    search.credit_budget = 7
    assert answer.invoke(ask).status == "success"
    assert len(emulator.requests) == 3


def test_a_copy_given_its_own_budget_counts_on_its_own(make: Make) -> None:
    retriever = make(MetasoRetriever, k=3, credit_budget=3)
    retriever.invoke("一")
    own = retriever.model_copy(update={"credit_budget": 3})
    sibling = retriever.share_connections(MetasoSearchTool, credit_budget=3)
    own.invoke("二")
    assert sibling.invoke(tool_call(sibling.name, query="三", size=3)).status == "success"
    for spent in (retriever, own):
        with pytest.raises(MetasoBudgetExceededError, match="budget of 3 credits"):
            spent.invoke("四")


def answers_until_refused(model: ChatMetaso, mode: str, leave_early: bool) -> int:
    """How many answers ``model`` gives before its budget refuses one: whole (``invoke``)
    or streamed (``stream``, ``astream``), read to the end or left after the first chunk."""
    read = 1 if leave_early else None

    async def astream() -> None:
        chunks = model.astream("秘塔是什么")
        async for _ in chunks:
            if leave_early:
                break
        await chunks.aclose()

    answers = 0
    for _ in range(10):
        try:
            if mode == "invoke":
                model.invoke("秘塔是什么")
            elif mode == "stream":
                chunks = model.stream("秘塔是什么")
                for _ in itertools.islice(chunks, read):
                    pass
                chunks.close()
            else:
                asyncio.run(astream())
        except MetasoBudgetExceededError:
            return answers
        answers += 1
    return answers


@pytest.mark.parametrize("mode", ["invoke", "stream", "astream"])
@pytest.mark.parametrize("leave_early", [False, True])
def test_a_stream_is_charged_its_expected_price_even_when_left_early(
    make: Make, emulator: MetasoEmulator, mode: str, leave_early: bool
) -> None:
    # Streams report no credits; a fast answer costs 3, as EXPECTED_CREDITS expects.
    model = make(ChatMetaso, credit_budget=5)
    assert answers_until_refused(model, mode, leave_early) == 2
    assert len(emulator.requests) == 2
    budget = model._credit_budget()
    assert isinstance(budget, CreditBudget)
    assert (budget.spent, budget.held) == (6, 0)


def test_a_stream_is_charged_the_last_price_its_budget_saw(make: Make) -> None:
    budget = CreditBudget(12)
    make(ChatMetaso, model="ds-r1", credit_budget=budget).invoke("秘塔是什么")  # costs 10
    with metaso_usage() as usage:
        list(make(ChatMetaso, model="fast", credit_budget=budget).stream("秘塔是什么"))
    assert budget.spent == 20
    assert (usage.requests, usage.unpriced_requests, usage.credits) == (1, 1, 0)


@pytest.mark.parametrize("use_stream", [False, True])
def test_a_call_that_fails_before_an_answer_is_not_charged(
    make: Make, emulator: MetasoEmulator, use_stream: bool
) -> None:
    emulator.script(*[Fault.status(500)] * 3)
    budget = CreditBudget(3)
    model = make(ChatMetaso, credit_budget=budget, max_retries=2)
    with pytest.raises(MetasoError):
        list(model.stream("秘塔")) if use_stream else model.invoke("秘塔")
    assert (budget.spent, budget.held) == (0, 0)
    model.invoke("秘塔")
    assert budget.spent == 3


def test_an_answer_without_credits_is_charged_what_was_held(make: Make) -> None:
    budget = CreditBudget(10)
    reader = make(MetasoReaderTool, credit_budget=budget)  # the text format reports none
    reader.invoke({"url": "https://example.com/"})
    assert budget.spent == EXPECTED_CREDITS["reader"]


# --- RedisCreditBudget: one budget for every process ------------------------------------


def test_a_redis_budget_is_read_from_redis_by_every_copy(redis_url: str) -> None:
    budget = RedisCreditBudget(redis_url, credits=10, key="app/budget")
    with Reservation("search", budget) as reservation:
        reservation.settle(4)
    clone = pickle.loads(pickle.dumps(budget))  # as Ray ships it to a worker
    assert clone is not budget
    with Reservation("search", clone) as reservation:
        reservation.settle(5)
    assert (budget.spent, budget.remaining, clone.spent) == (9, 1, 9)
    with Reservation("reader", budget) as reservation:
        reservation.settle(None)  # unpriced: charged what was held, a page's price
    with pytest.raises(MetasoBudgetExceededError, match=r"budget of 10 credits is spent \(10"):
        clone.reserve("search")
    assert copy.deepcopy({"b": budget})["b"] is budget
    assert repr(clone) == (
        f"RedisCreditBudget(RedisConnection({redis_url!r}), credits=10, key='app/budget')"
    )


def test_a_redis_budget_learns_prices_for_every_process(redis_url: str) -> None:
    budget = RedisCreditBudget(redis_url, credits=100)
    with Reservation("search", budget) as reservation:
        assert held(budget) == 1
        reservation.settle(3)
    other = pickle.loads(pickle.dumps(budget))
    hold = other.reserve("search")
    assert hold[2] == 3  # not the 10 expected of a first search
    other.release(hold)
    assert (budget.spent, held(budget)) == (3, 0)


def test_a_hold_left_by_a_dead_worker_lapses(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import langchain_metaso.usage as usage_module

    budget = RedisCreditBudget(redis_url, credits=5)
    budget.reserve("search")  # holds 10, and is never settled: its worker died
    with pytest.raises(MetasoBudgetExceededError):
        budget.reserve("search")
    monkeypatch.setattr(usage_module, "HOLD_LEASE", -1.0)  # a lease over at once
    budget = RedisCreditBudget(redis_url, credits=5, key="another")
    budget.reserve("search")  # holds 10, never settled
    budget.release(budget.reserve("search"))  # allowed: the first hold lapsed with its lease


def test_an_unreachable_redis_budget_refuses_the_call_before_sending(
    make: Make, emulator: MetasoEmulator
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nobody listens there
    retriever = make(MetasoRetriever, credit_budget=RedisCreditBudget(url, credits=100))
    with pytest.raises(MetasoConnectionError, match="credit budget is kept in this Redis") as e:
        retriever.invoke("秘塔")
    assert emulator.requests == []
    assert "hunter2" not in str(e.value)
    message = make(MetasoSearchTool, credit_budget=retriever.credit_budget).invoke(
        tool_call("metaso_search", query="秘塔")
    )
    assert message.status == "error"
    assert "credit budget is kept in this Redis" in message.content


class RemoteBudget:
    """A budget as a server would keep it (not a ``CreditBudget``): it notes the thread
    each of its methods ran in."""

    def __init__(self, limit: float) -> None:
        self.local = CreditBudget(limit)
        self.limit = limit
        self.threads: list[str] = []

    def reserve(self, endpoint: str) -> Any:
        self.threads.append(threading.current_thread().name)
        return self.local.reserve(endpoint)

    def settle(self, hold: Any, credits: float | None) -> None:
        self.threads.append(threading.current_thread().name)
        self.local.settle(hold, credits)

    def release(self, hold: Any) -> None:
        self.threads.append(threading.current_thread().name)
        self.local.release(hold)


@pytest.mark.parametrize("use_stream", [False, True])
def test_the_event_loop_never_waits_for_a_budget_on_a_server(make: Make, use_stream: bool) -> None:
    budget = RemoteBudget(10)
    assert isinstance(budget, Budget)
    model = make(ChatMetaso, credit_budget=budget)

    async def call() -> str:
        if use_stream:
            async for _ in model.astream("秘塔"):
                pass
        else:
            await model.ainvoke("秘塔")
        return threading.current_thread().name

    loop_thread = asyncio.run(call())
    assert budget.local.spent == 3
    assert len(budget.threads) == 2  # reserved, then settled
    assert loop_thread not in budget.threads
