"""What every Metaso tool shares (``tools.base``), checked on each tool of the package.

The tools are found in ``langchain_metaso.tools.__all__``, so a tool added later is
covered without touching this file. The server is the emulator over a socket.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from conftest import TEST_KEY, Invoke, tool_call
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException
from pydantic import ValidationError

import langchain_metaso.errors as errors
import langchain_metaso.tools as tools
from langchain_metaso.errors import MetasoError
from langchain_metaso.testing import Fault, MetasoEmulator
from langchain_metaso.tools import MetasoTool
from langchain_metaso.tools.base import cut_text

# Any: the pydantic plugin would ask MetasoTool itself for the fields its subclasses default.
TOOLS: list[Any] = [
    cls
    for name in tools.__all__
    if isinstance(cls := getattr(tools, name), type)
    and issubclass(cls, MetasoTool)
    and cls is not MetasoTool
]


def arguments(cls: Any) -> dict[str, Any]:
    """A valid call of ``cls``: its first argument (the one a model always gives)."""
    first = next(iter(cls.model_fields["args_schema"].default.model_fields))
    return {first: "https://example.com/article" if first == "url" else "秘塔 AI 搜索"}


def call_of(cls: Any) -> dict[str, Any]:
    """A model's valid call of ``cls``."""
    return tool_call(cls.model_fields["name"].default, **arguments(cls))


def test_cut_text_marks_what_was_left_out() -> None:
    assert cut_text("abcdef", 6) == "abcdef"
    assert cut_text("abcdef", None) == "abcdef"
    assert cut_text("abcdef", 4) == "abcd\n\n[… cut: 2 more characters]"
    assert cut_text("x" * 20_345, 8000).endswith("[… cut: 12,345 more characters]")


def test_every_tool_of_the_package_is_checked() -> None:
    assert {cls.__name__ for cls in TOOLS} >= {
        "MetasoSearchTool",
        "MetasoReaderTool",
        "MetasoAnswerTool",
    }


# --- response_format="content" ------------------------------------------------------------


@pytest.mark.parametrize("cls", TOOLS)
def test_content_format_gives_exactly_the_default_text(
    cls: Any, emulator_url: str, invoke: Invoke
) -> None:
    default = cls(api_key=TEST_KEY, base_url=emulator_url)
    content_only = cls(api_key=TEST_KEY, base_url=emulator_url, response_format="content")

    expected = invoke(default, call_of(cls))
    message = invoke(content_only, call_of(cls))

    assert isinstance(message, ToolMessage)
    assert message.status == "success"
    assert isinstance(message.content, str)
    assert message.content == expected.content
    assert message.artifact is None
    # Called with plain arguments, it answers the same text.
    assert invoke(content_only, arguments(cls)) == expected.content


@pytest.mark.parametrize("cls", TOOLS)
def test_content_format_failures_are_the_same_error_message(
    cls: Any, emulator: MetasoEmulator, emulator_url: str, invoke: Invoke
) -> None:
    settings = {"api_key": TEST_KEY, "base_url": emulator_url, "max_retries": 0}
    default = cls(**settings)
    content_only = cls(**settings, response_format="content")

    emulator.script(Fault.status(402))
    expected = invoke(default, call_of(cls))
    emulator.script(Fault.status(402))
    message = invoke(content_only, call_of(cls))

    assert message.status == expected.status == "error"
    assert message.content == expected.content
    assert "Top up" in message.content


# --- failures as error messages --------------------------------------------------------------

# What a failure's error message says, whichever tool met it.
SAID: list[tuple[Fault, list[str]]] = [
    (Fault.status(401), ["HTTP 401", "METASO_API_KEY"]),
    (Fault.status(402), ["HTTP 402", "credits"]),
    (Fault.status(429, retry_after=120), ["HTTP 429", "wait 120 s"]),
    (Fault.business_error(1000, "参数错误"), ["参数错误", "code 1000"]),
    (Fault.garbage(), ["unusable answer", "HTML page"]),
]


@pytest.mark.parametrize("cls", TOOLS)
@pytest.mark.parametrize(("fault", "words"), SAID, ids=[fault.kind for fault, _ in SAID])
def test_failures_become_error_messages_naming_the_endpoint(
    cls: Any,
    fault: Fault,
    words: list[str],
    emulator: MetasoEmulator,
    emulator_url: str,
    invoke: Invoke,
) -> None:
    emulator.script(fault)
    message = invoke(cls(api_key=TEST_KEY, base_url=emulator_url), call_of(cls))
    [request] = emulator.requests  # none of these is retried
    assert message.status == "error"
    assert message.content.startswith(f"Metaso {request.path.lstrip('/')} ")
    for word in words:
        assert word in message.content
    assert TEST_KEY not in message.content
    assert message.artifact is None


# An answer of another shape for each tool: its body, and what the error message says of it.
UNUSABLE: dict[str, tuple[dict[str, Any], str]] = {
    "metaso_search": ({"data": None}, "'webpages'"),
    "metaso_reader": ({"title": "no markdown"}, "no 'markdown' text"),
    "metaso_answer": ({"data": {"answer": "nested"}}, "expected 'answer'"),
}


@pytest.mark.parametrize("cls", TOOLS)
def test_an_answer_of_another_shape_is_an_error_message(
    cls: Any, emulator: MetasoEmulator, emulator_url: str, invoke: Invoke
) -> None:
    body, says = UNUSABLE[cls.model_fields["name"].default]
    emulator.script(Fault.status(200, body=body))
    message = invoke(cls(api_key=TEST_KEY, base_url=emulator_url), call_of(cls))
    [request] = emulator.requests
    assert (message.status, message.artifact) == ("error", None)
    endpoint = request.path.lstrip("/")
    assert message.content.startswith(f"Metaso {endpoint} returned an unusable answer")
    assert says in message.content
    assert TEST_KEY not in message.content


# --- typed errors ----------------------------------------------------------------------------

# How each error class comes about: a fault of the server, or a setting.
FAILURES: list[tuple[Fault | dict[str, Any], type[MetasoError]]] = [
    (Fault.status(401), errors.MetasoAuthenticationError),
    (Fault.status(402), errors.MetasoInsufficientCreditsError),
    (Fault.status(429), errors.MetasoRateLimitError),
    (Fault.status(503), errors.MetasoServerError),
    (Fault.business_error(1000, "参数错误"), errors.MetasoAPIError),
    (Fault.garbage(), errors.MetasoResponseError),
    (Fault.drop(), errors.MetasoConnectionError),
    (Fault.timeout(), errors.MetasoTimeoutError),
    ({"credit_budget": 0}, errors.MetasoBudgetExceededError),
]


def test_the_failures_cover_every_error_class() -> None:
    covered = {cls for _, expected in FAILURES for cls in expected.__mro__}
    assert {getattr(errors, name) for name in errors.__all__} <= covered


@pytest.mark.parametrize("cls", TOOLS)
@pytest.mark.parametrize(
    ("failure", "expected"), FAILURES, ids=[expected.__name__ for _, expected in FAILURES]
)
def test_without_handle_tool_error_a_program_catches_the_typed_error(
    cls: Any,
    failure: Fault | dict[str, Any],
    expected: type[MetasoError],
    emulator: MetasoEmulator,
    emulator_url: str,
    invoke: Invoke,
) -> None:
    # A short timeout only where the fault is one (every request meets it, none is ever
    # answered): on a loaded machine any other answer may take longer than that.
    timeout = 0.05 if expected is errors.MetasoTimeoutError else 10.0
    settings = {"api_key": TEST_KEY, "base_url": emulator_url, "max_retries": 0, "timeout": timeout}
    if isinstance(failure, dict):
        settings.update(failure)
    program_tool = cls(**settings, handle_tool_error=False)
    agent_tool = cls(**settings)

    if isinstance(failure, Fault):
        emulator.script(failure)
    with pytest.raises(expected) as info:
        invoke(program_tool, call_of(cls))
    if isinstance(failure, Fault):
        emulator.script(failure)
    message = invoke(agent_tool, call_of(cls))

    error = info.value
    assert type(error).__name__ == expected.__name__
    assert isinstance(error, ToolException)  # what LangChain's contract promises, still
    # The default is unchanged: the agent gets the same words as an error message.
    assert message.status == "error"
    assert message.content == str(error)
    # A copy (multiprocessing, a checkpoint) is the plain typed error.
    copied = pickle.loads(pickle.dumps(error))
    assert type(copied) is expected
    assert str(copied) == str(error)


@pytest.mark.parametrize("cls", [cls for cls in TOOLS if "scope" in cls.model_fields])
def test_a_description_names_a_default_scope_other_than_the_web(cls: Any) -> None:
    # The class's text speaks of the web; a model that may leave out scope must know
    # where such a call looks.
    assert "without a scope" not in cls(api_key=TEST_KEY).description
    tool = cls(api_key=TEST_KEY, scope="scholar")
    assert tool.description.endswith(" A call without a scope searches academic papers (学术).")
    tool.scope = "video"
    assert tool.description.endswith(" A call without a scope searches videos.")


@pytest.mark.parametrize("cls", TOOLS)
def test_bad_arguments_raise_only_without_handle_validation_error(
    cls: Any, emulator: MetasoEmulator, invoke: Invoke
) -> None:
    # What the README's settings table says: handle_tool_error=False alone still hands
    # invalid arguments back as a message; handle_validation_error=False raises them.
    settings = {"api_key": TEST_KEY, "transport": emulator.transport()}
    first = next(iter(arguments(cls)))
    bad = tool_call(cls.model_fields["name"].default, **{first: " "})
    message = invoke(cls(**settings, handle_tool_error=False), bad)
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.content.startswith(f"Invalid arguments: {first}: ")
    with pytest.raises(ValidationError):
        invoke(cls(**settings, handle_tool_error=False, handle_validation_error=False), bad)
    assert emulator.requests == []


def test_every_error_is_a_tool_exception_of_its_own_class() -> None:
    # Static classes: LangChain hands them to the model, a program catches them by name.
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), ToolException)
    error = errors.MetasoRateLimitError("slow", status_code=429, endpoint="search")
    assert type(pickle.loads(pickle.dumps(error))) is errors.MetasoRateLimitError


# --- schemas every provider takes --------------------------------------------------------------

# What a model may set, shaping a schema: every argument, the first optional one, none.
SHAPES: list[slice | None] = [None, slice(1, 2), slice(0)]


def nulls(schema: Any) -> list[Any]:
    """Every ``anyOf`` that holds a ``null`` branch, anywhere in ``schema``."""
    if isinstance(schema, list):
        return [found for item in schema for found in nulls(item)]
    if not isinstance(schema, dict):
        return []
    own = [schema] if {"type": "null"} in schema.get("anyOf", []) else []
    return own + [found for value in schema.values() for found in nulls(value)]


@pytest.mark.parametrize("cls", TOOLS)
@pytest.mark.parametrize("shape", SHAPES, ids=["all", "one", "none"])
def test_schemas_have_no_null_branch_and_convert_for_every_provider(
    cls: Any, shape: slice | None
) -> None:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    anthropic = pytest.importorskip("langchain_anthropic.chat_models")
    genai = pytest.importorskip("langchain_google_genai._function_utils")
    ollama = pytest.importorskip("langchain_ollama")

    optional = list(cls.model_fields["args_schema"].default.model_fields)[1:]
    tool = cls(api_key=TEST_KEY, model_args=None if shape is None else optional[shape])
    shown = tool.tool_call_schema.model_json_schema()
    assert nulls(shown) == []
    assert nulls(tool.args_schema.model_json_schema()) == []  # what Gemini is sent
    names = list(shown["properties"])

    openai = convert_to_openai_tool(tool)["function"]["parameters"]
    strict = convert_to_openai_tool(tool, strict=True)["function"]["parameters"]
    assert list(openai["properties"]) == list(strict["properties"]) == names
    assert strict["additionalProperties"] is False
    assert nulls([openai, strict]) == []
    claude = anthropic.convert_to_anthropic_tool(tool)
    assert list(claude["input_schema"]["properties"]) == names
    assert nulls(claude) == []
    [gemini] = genai.convert_to_genai_function_declarations([tool])
    [declaration] = gemini.function_declarations
    assert list(declaration.parameters.properties) == names
    bound = ollama.ChatOllama(model="any").bind_tools([tool])
    assert list(bound.kwargs["tools"][0]["function"]["parameters"]["properties"]) == names
