"""``metaso_usage``: credits, requests and cache hits counted across threads and tasks,
and the budgets that refuse a call before it is sent."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import Make, tool_call
from langchain_core.runnables import RunnableLambda

from langchain_metaso import (
    CreditBudget,
    InMemoryCache,
    MetasoAnswerTool,
    MetasoBudgetExceededError,
    MetasoError,
    MetasoReaderTool,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoToolkit,
    MetasoUsage,
    metaso_usage,
)
from langchain_metaso.testing import MetasoEmulator
from langchain_metaso.usage import check_budget, credits_from, record_usage


def search(credits: float | None = 10, *, cache_hit: bool = False, **kwargs: Any) -> None:
    """What the HTTP core does around one search call."""
    if not cache_hit:
        check_budget("search", kwargs.get("budget"))
    record_usage("search", credits, cache_hit=cache_hit, **kwargs)


def test_calls_inside_the_block_are_counted() -> None:
    with metaso_usage() as usage:
        search(10)
        search(4.5)
        search(cache_hit=True)
        record_usage("reader", None)  # a text answer says nothing of its cost
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
    budget.add(4)
    clone = pickle.loads(pickle.dumps(budget))
    clone.add(6)
    assert (budget.spent, clone.spent) == (4, 10)
    with pytest.raises(MetasoBudgetExceededError):
        clone.check("search")
    budget.check("search")


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
