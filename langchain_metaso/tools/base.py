"""``MetasoTool``: what every Metaso tool shares."""

# No `from __future__ import annotations` in the tool modules: LangChain reads `_run`'s
# type hints on every call, and evaluating string annotations each time costs more than
# the rest of the tool's own work.

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, ToolException
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic.v1 import ValidationError as ValidationErrorV1
from pydantic_core import CoreSchema

from langchain_metaso._http import Call, MetasoClient
from langchain_metaso._parsing import Query, ScopeName
from langchain_metaso.config import MetasoConfig, check_arguments
from langchain_metaso.errors import MetasoError
from langchain_metaso.scopes import SCOPES, describe_scopes

__all__ = [
    "Exchange",
    "MetasoTool",
    "QueryInput",
    "as_tool_error",
    "call_schema",
    "explain_invalid_arguments",
]

T = TypeVar("T")


class QueryInput(BaseModel):
    """The arguments the search and answer tools share: a query, and where to look."""

    # An argument the tool does not take is an error the model can fix, not dropped.
    model_config = ConfigDict(extra="forbid")

    query: Query = Field(description="What to search for, in Chinese or English.")
    scope: ScopeName | None = Field(
        default=None, description=f"Where to look: {describe_scopes()}."
    )


def explain_invalid_arguments(error: ValidationError | ValidationErrorV1) -> str:
    """Turn a validation error into a message a model can act on.

    LangChain's own handler answers a fixed text that names nothing.
    """
    items = error.errors()
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'arguments'}: "
        f"{'not an argument of this tool' if item['type'] == 'extra_forbidden' else item['msg']}"
        for item in items
    )
    scopes = (
        f" Valid scopes are {', '.join(SCOPES)}."
        if any("scope" in item["loc"] for item in items)
        else ""
    )
    return f"Invalid arguments: {problems}.{scopes} Fix the arguments and call the tool again."


_JOINT: dict[type[MetasoError], type[MetasoError]] = {}


def _tool_error_type(error_type: type[MetasoError]) -> type[MetasoError]:
    """``error_type`` that is also a ``ToolException`` (one class each, made on first use).

    LangChain hands a ``ToolException`` to the model as an error ``ToolMessage``
    (``handle_tool_error``); with ``handle_tool_error=False`` it raises it, and a
    program then catches it by its own class (``except MetasoAuthenticationError``).
    """
    joint = _JOINT.get(error_type)
    if joint is None:
        made = type(
            error_type.__name__,
            (error_type, ToolException),
            {
                "__module__": error_type.__module__,
                "__qualname__": error_type.__qualname__,
                "__doc__": error_type.__doc__,
                # Made at run time, it cannot be pickled by name: copies are the plain error.
                "_rebuilt_as": classmethod(lambda cls: error_type),
            },
        )
        joint = _JOINT.setdefault(error_type, made)  # one winner if threads race
    return joint


@contextmanager
def as_tool_error() -> Iterator[None]:
    """Raise our errors as ``ToolException``s too (``_tool_error_type``), the only kind
    LangChain hands back to the agent as an error ``ToolMessage``."""
    try:
        yield
    except MetasoError as exc:
        if not isinstance(exc, ToolException):
            exc.__class__ = _tool_error_type(type(exc))
        raise


@dataclass(frozen=True)
class Exchange(Generic[T]):
    """What one tool call does with the API (``send`` or ``asend``, through a client),
    and how its outcome becomes the text for the model (the ``ToolMessage`` content) and
    the artifact."""

    send: Callable[[MetasoClient], T]
    asend: Callable[[MetasoClient], Awaitable[T]]
    answer: Callable[[T], tuple[str, Any]]

    @classmethod
    def of_call(cls, call: Call[T], answer: Callable[[T], tuple[str, Any]]) -> "Exchange[T]":
        """The exchange of a single API call."""
        return cls(
            lambda client: client.request(call), lambda client: client.arequest(call), answer
        )


@dataclass(frozen=True)
class _ShownMaximum:
    """Shows a bound in the JSON schema without enforcing it: the tool cuts a larger
    value to it, which costs the agent no turn, and says so."""

    value: int

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "integer":
                branch["maximum"] = self.value
        return schema


# Each schema call_schema built, and the whole one it was cut from.
_CUT_FROM: dict[type[BaseModel], type[BaseModel]] = {}


@functools.cache  # bounded: a tool's arguments have few subsets, a bound 100 values
def call_schema(
    full: type[BaseModel], names: tuple[str, ...], maximums: tuple[tuple[str, int], ...] = ()
) -> type[BaseModel]:
    """``full`` with only its fields in ``names``, each of ``maximums`` showing its bound.

    Cached, so tools with the same settings share one class.
    """
    if set(names) == set(full.model_fields) and not maximums:
        return full
    bounds = dict(maximums)
    fields: dict[str, Any] = {}
    for name, field in full.model_fields.items():
        if name not in names:
            continue
        if name in bounds:
            field = FieldInfo.merge_field_infos(
                field, description=f"{field.description} At most {bounds[name]}."
            )
            field.metadata = [*field.metadata, _ShownMaximum(bounds[name])]
        fields[name] = (field.annotation, field)
    schema: type[BaseModel] = create_model(
        full.__name__,
        __config__=full.model_config,
        __doc__=full.__doc__,
        __module__=full.__module__,
        **fields,
    )
    _CUT_FROM[schema] = full
    return schema


class MetasoTool(MetasoConfig, BaseTool):
    """What every Metaso tool shares: the settings, a compact answer for the model with
    the full data as the artifact, and failures handed back to the agent as an error
    ``ToolMessage`` it can act on rather than as an exception.

    Failures (bad arguments, a wrong key, rate limits, timeouts) come back as an
    error ``ToolMessage`` whose text tells the model what to do; with
    ``handle_tool_error=False`` they raise the typed error of ``langchain_metaso.errors``
    (which is also a ``ToolException``).

    A tool says what it does in ``_exchange``; ``args_schema`` (a class default) is
    the whole set of call arguments, whose first is always the model's to give. The
    schema the model sees holds it and the ``model_args``.
    """

    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | None = True
    handle_validation_error: (
        bool | str | Callable[[ValidationError | ValidationErrorV1], str] | None
    ) = explain_invalid_arguments
    model_args: tuple[str, ...] | None = None
    """Call arguments besides the first (``query``) that a model may set; ``None``:
    all. The others always take this instance's values."""

    @classmethod
    def _full_schema(cls) -> type[BaseModel]:
        schema = cls.model_fields["args_schema"].default
        assert isinstance(schema, type)  # every tool sets it as a class default
        return schema

    @classmethod
    def _optional_args(cls) -> list[str]:
        return list(cls._full_schema().model_fields)[1:]

    @field_validator("args_schema")
    @classmethod
    def _schema_is_built(cls, schema: Any) -> Any:
        full = cls._full_schema()
        if schema is not full and _CUT_FROM.get(schema) is not full:
            raise ValueError(
                f"{cls.__name__} builds its args_schema itself: choose the arguments a "
                f"model may set with model_args (any of {', '.join(cls._optional_args())})"
            )
        return schema

    @field_validator("model_args")
    @classmethod
    def _known_model_args(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if names is None:
            return None
        optional = cls._optional_args()
        check_arguments(f"{cls.__name__}'s model_args", names, {name: [name] for name in optional})
        return tuple(name for name in optional if name in names)  # in the schema's order

    def _maximums(self) -> dict[str, int]:
        """Bounds of call arguments, shown in the schema; the tool cuts a larger value."""
        return {}

    def _fit_schema(self) -> None:
        full = self._full_schema()
        chosen = self._optional_args() if self.model_args is None else self.model_args
        names = (next(iter(full.model_fields)), *chosen)
        maximums = tuple(item for item in self._maximums().items() if item[0] in names)
        schema = call_schema(full, names, maximums)
        if self.__dict__.get("args_schema") is schema:
            return
        if self.__dict__.get("args_schema") is None:  # being made: nothing read it yet
            self.__dict__["args_schema"] = schema
            return
        # Through BaseTool's __setattr__, which forgets its cached tool_call_schema;
        # derived, so not "set" (model_copy rebuilds it rather than passing it on).
        super().__setattr__("args_schema", schema)
        self.__pydantic_fields_set__.discard("args_schema")

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self.__dict__["args_schema"] = None
        self._fit_schema()

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name != "args_schema" and name in type(self).model_fields:
            self._fit_schema()

    def __getstate__(self) -> dict[Any, Any]:
        # The schema may be a class made at run time, which cannot be pickled by name.
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], "args_schema": None}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._fit_schema()

    def _exchange(self, *args: Any, **kwargs: Any) -> Exchange[Any]:
        """The call to make for these (validated) arguments."""
        raise NotImplementedError

    def _respond(self, content: str, artifact: Any) -> str | tuple[str, Any]:
        # LangChain unpacks a pair with "content_and_artifact", and takes the value as it
        # is for "content": that must be the text alone, never the repr of a pair.
        return (content, artifact) if self.response_format == "content_and_artifact" else content

    def _run(
        self, *args: Any, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any
    ) -> str | tuple[str, Any]:
        exchange = self._exchange(*args, **kwargs)
        with as_tool_error():
            return self._respond(*exchange.answer(exchange.send(self.client)))

    async def _arun(
        self,
        *args: Any,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> str | tuple[str, Any]:
        exchange = self._exchange(*args, **kwargs)
        with as_tool_error():
            return self._respond(*exchange.answer(await exchange.asend(self.client)))
