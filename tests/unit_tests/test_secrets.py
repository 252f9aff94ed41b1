"""Issue 6, secrets: every way the API key could leak, swept with a distinctive fake key.

The key must appear in no repr, str, dump or serialization of any public class, in no
exception (message, args, ``__cause__``/``__context__`` chain, formatted traceback), in
no log record at DEBUG of any logger (httpx and httpcore included), in no callback
payload, tool message or document metadata, even when the server echoes it back in its
error bodies. (Cache keys and values are checked in ``test_cache.py``.)

Pickling is the one exception by design: a pickled instance must work after loading,
so its bytes hold the key (pydantic's ``SecretStr`` pickles its value). What must hold
is that it survives the trip, and that the loaded copy still hides it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import pickle
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import tool_call
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.messages import ToolMessage
from redis_support import free_port

from langchain_metaso import (
    MetasoError,
    MetasoRetriever,
    MetasoSearchTool,
    MetasoStoreCache,
    RedisCreditBudget,
    RedisRateLimiter,
)
from langchain_metaso.config import MetasoConfig
from langchain_metaso.document_loaders import MetasoLoader
from langchain_metaso.testing import Fault, MetasoEmulator
from langchain_metaso.toolkits import MetasoToolkit
from langchain_metaso.tools.answer import MetasoAnswerTool
from langchain_metaso.tools.reader import MetasoReaderTool

KEY = "sk-LEAKCANARY-0123456789"
LOGGERS = ("", "httpx", "httpcore", "langchain_metaso", "langchain_core")

# Servers that echo the key back, in every place an error can be read from; True when
# the error's message quotes the server, so the key must show there as redacted.
ECHOES: dict[str, tuple[Callable[[], Fault], bool]] = {
    "401 JSON": (
        lambda: Fault.status(401, body={"error": {"message": f"invalid key {KEY}"}}),
        True,
    ),
    # Web pages are never quoted, so the key cannot show there at all.
    "500 HTML": (
        lambda: Fault.status(500, body=f"<html>Authorization: Bearer {KEY}</html>"),
        False,
    ),
    "429 JSON": (lambda: Fault.status(429, retry_after=3600, body={"message": KEY}), True),
    "business error": (lambda: Fault.business_error(1000, f"key {KEY} is not valid"), True),
    "HTML at HTTP 200": (lambda: Fault.garbage(f"<html>{KEY}</html>".encode()), False),
    "JSON of another shape": (
        lambda: Fault.status(200, body={"echo": KEY, "webpages": KEY}),
        True,
    ),
    "dropped": (Fault.drop, False),
    "dropped mid-body": (Fault.truncated, False),
    "read timeout": (Fault.timeout, False),
}


def assert_clean(value: Any, where: str) -> None:
    if isinstance(value, bytes):
        assert KEY.encode() not in value, f"the key leaked in {where}"
    else:
        assert KEY not in str(value), f"the key leaked in {where}"
        assert KEY not in repr(value), f"the key leaked in the repr of {where}"


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [current.__cause__, current.__context__]


def assert_clean_exception(error: BaseException) -> None:
    """The message, args and public attributes of the error and of every error it was
    raised from, and the traceback as ``logging.exception`` would print it."""
    assert_clean("".join(traceback.format_exception(error)), "a formatted traceback")
    for link in exception_chain(error):
        name = type(link).__name__
        assert_clean(link, name)
        assert_clean(link.args, f"{name}.args")
        if isinstance(link, MetasoError):
            assert_clean(vars(link), f"the attributes of {name}")


class Recorder(BaseCallbackHandler):
    """Keeps everything LangChain hands to callbacks (what a tracer would upload)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: self.events.append((name, args, kwargs))
        return super().__getattribute__(name)


@pytest.fixture
def emulator() -> MetasoEmulator:
    return MetasoEmulator(api_key=KEY)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Callable[[], None]:
    """Capture every logger at DEBUG; the returned check formats every record,
    exception text included, as a handler would."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)

    def check() -> None:
        assert caplog.records, "nothing was logged: the sweep would prove nothing"
        for record in caplog.records:
            assert_clean(caplog.handler.format(record), f"a log record of {record.name}")
            assert_clean(record.args, f"the arguments of a log record of {record.name}")

    return check


def invoke(runnable: Any, value: Any, mode: str, config: Any) -> Any:
    """``invoke``, or ``ainvoke`` on a fresh event loop."""
    if mode == "sync":
        return runnable.invoke(value, config=config)
    return asyncio.run(runnable.ainvoke(value, config=config))


def settings(base_url: str) -> dict[str, Any]:
    return {"metaso_api_key": KEY, "base_url": base_url, "retry_backoff": 0.001, "timeout": 2}


INSTANCES: dict[str, Callable[[dict[str, Any]], MetasoConfig]] = {
    "MetasoSearchTool": lambda s: MetasoSearchTool(**s),
    "MetasoRetriever": lambda s: MetasoRetriever(**s),
    "MetasoReaderTool": lambda s: MetasoReaderTool(**s),
    "MetasoAnswerTool": lambda s: MetasoAnswerTool(**s),
    "MetasoLoader": lambda s: MetasoLoader(urls=["https://example.com/"], **s),
    "MetasoToolkit": lambda s: MetasoToolkit(**s),
}


@pytest.mark.parametrize("name", INSTANCES)
def test_instances_never_show_the_key(name: str, emulator_url: str) -> None:
    instance = INSTANCES[name](settings(emulator_url))
    assert_clean(instance, "the instance")
    assert_clean(instance.model_dump(), "model_dump()")
    # A tool's args_schema (a class) and validation-error handler (a function) have no
    # JSON form, as in any LangChain tool that sets them; everything else must serialize.
    unserializable = {"args_schema", "handle_validation_error"}
    as_json = instance.model_dump(mode="json", exclude=unserializable)
    assert_clean(as_json, "model_dump(mode='json')")
    assert_clean(instance.model_dump_json(exclude=unserializable), "model_dump_json()")
    assert_clean(dumps(instance), "langchain_core.load.dumps")
    assert_clean(dumps(instance, pretty=True), "langchain_core.load.dumps(pretty=True)")
    assert_clean(dumpd(instance), "langchain_core.load.dumpd")
    assert_clean(instance.client, "the HTTP core")
    assert_clean(copy.deepcopy(instance), "a deep copy")
    assert instance.metaso_api_key.get_secret_value() == KEY  # hidden, not lost


@pytest.mark.parametrize("name", INSTANCES)
def test_a_pickled_instance_keeps_the_key_hidden_and_usable(name: str, emulator_url: str) -> None:
    # Pickle bytes hold the key by design (see the module docstring); a loaded copy
    # must still hide it and still authenticate.
    loaded = pickle.loads(pickle.dumps(INSTANCES[name](settings(emulator_url))))
    assert_clean(loaded, "an unpickled instance")
    assert loaded.metaso_api_key.get_secret_value() == KEY


def test_an_unpickled_retriever_authenticates(emulator_url: str) -> None:
    retriever = pickle.loads(pickle.dumps(MetasoRetriever(**settings(emulator_url))))
    assert retriever.invoke("秘塔")


@pytest.mark.parametrize("echo", ECHOES)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_errors_never_show_the_key_even_when_the_server_echoes_it(
    echo: str,
    mode: str,
    emulator: MetasoEmulator,
    emulator_url: str,
    debug_logs: Callable[[], None],
) -> None:
    fault, quoted = ECHOES[echo]
    # A short timeout only for the fault that is one (all four requests meet it, none is
    # ever answered): on a loaded machine another answer may take longer than that, and the
    # error would not be the echo's.
    timeout = 0.05 if echo == "read timeout" else 10.0
    retriever = MetasoRetriever(**{**settings(emulator_url), "max_retries": 1, "timeout": timeout})
    tool = MetasoSearchTool(**{**settings(emulator_url), "max_retries": 1, "timeout": timeout})
    callbacks = Recorder()
    emulator.script(*(fault() for _ in range(4)))

    config: Any = {"callbacks": [callbacks]}
    with pytest.raises(MetasoError) as caught:
        invoke(retriever, "q", mode, config)
    message = invoke(tool, tool_call("metaso_search", query="q"), mode, config)

    assert_clean_exception(caught.value)
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert_clean(message.model_dump_json(), "the error ToolMessage")
    assert callbacks.events
    assert_clean(callbacks.events, "the callback payloads")
    debug_logs()
    if quoted:  # the sweep did meet the key: it was redacted where it came through
        assert "***" in str(caught.value)
        assert "***" in str(message.content)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_results_logs_and_callbacks_never_show_the_key(
    mode: str, emulator: MetasoEmulator, emulator_url: str, debug_logs: Callable[[], None]
) -> None:
    callbacks = Recorder()
    config: Any = {"callbacks": [callbacks]}
    retriever = MetasoRetriever(**settings(emulator_url))
    tool = MetasoSearchTool(**settings(emulator_url))
    documents = invoke(retriever, "秘塔", mode, config)
    message = invoke(tool, tool_call("metaso_search", query="秘塔"), mode, config)

    assert documents
    assert message.status == "success"
    for document in [*documents, *message.artifact]:
        assert_clean(json.dumps(document.metadata, ensure_ascii=False), "document metadata")
    assert_clean(message.model_dump_json(), "the ToolMessage")
    assert_clean(callbacks.events, "the callback payloads")
    debug_logs()


# --- a Redis password, wherever redis-py reads one --------------------------------------------

REDIS_PASSWORD = "redis-PASSWORD-canary"
REDIS_URLS = {
    "user info": "redis://:{pw}@127.0.0.1:{port}/0",
    "query": "redis://127.0.0.1:{port}/0?password={pw}",
    "both": "redis://user:{pw}@127.0.0.1:{port}/0?socket_timeout=1&password={pw}",
}


@pytest.mark.parametrize("form", REDIS_URLS)
@pytest.mark.parametrize("name", INSTANCES)
def test_a_redis_password_in_the_url_shows_nowhere(name: str, form: str, emulator_url: str) -> None:
    url = REDIS_URLS[form].format(pw=REDIS_PASSWORD, port=free_port())  # no Redis there
    shared = {
        "cache": MetasoStoreCache.from_redis_url(url),
        "rate_limiter": RedisRateLimiter(url, requests_per_second=100),
        "credit_budget": RedisCreditBudget(url, credits=10),
    }
    instance = INSTANCES[name]({**settings(emulator_url), **shared})
    unserializable = {"args_schema", "handle_validation_error"}
    for shown, where in [
        (repr(instance), "the repr"),
        (dumps(instance), "dumps"),
        (dumpd(instance), "dumpd"),
        (instance.model_dump(), "model_dump()"),
        (instance.model_dump_json(exclude=unserializable), "model_dump_json()"),
        ([repr(piece) for piece in shared.values()], "the shared pieces' reprs"),
    ]:
        assert REDIS_PASSWORD not in str(shown), f"the Redis password leaked in {where}"
        assert "***" in str(shown), f"{where} does not show where the password was"


@pytest.mark.parametrize("form", REDIS_URLS)
def test_a_redis_password_reaches_no_callback_log_or_error(
    form: str, emulator_url: str, debug_logs: Callable[[], None], caplog: pytest.LogCaptureFixture
) -> None:
    url = REDIS_URLS[form].format(pw=REDIS_PASSWORD, port=free_port())  # no Redis there
    pieces = {
        "cache": MetasoStoreCache.from_redis_url(url),
        "rate_limiter": RedisRateLimiter(url, requests_per_second=100),
    }
    callbacks = Recorder()
    config: Any = {"callbacks": [callbacks]}
    tool = MetasoSearchTool(**settings(emulator_url), **pieces)
    retriever = MetasoRetriever(
        **settings(emulator_url), credit_budget=RedisCreditBudget(url, credits=10)
    )
    assert tool.invoke(tool_call("metaso_search", query="秘塔"), config=config).status == "success"
    with pytest.raises(MetasoError) as caught:  # the budget cannot be checked: refused
        retriever.invoke("秘塔", config=config)
    assert callbacks.events
    for text, where in [
        (str(callbacks.events), "the callback payloads"),
        ("".join(traceback.format_exception(caught.value)), "the error"),
        (str(vars(caught.value)), "the error's attributes"),
        ("\n".join(caplog.handler.format(record) for record in caplog.records), "the logs"),
    ]:
        assert REDIS_PASSWORD not in text, f"the Redis password leaked in {where}"
