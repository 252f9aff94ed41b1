"""``MetasoTool``: what every Metaso tool shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_type_hints

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool
from pydantic import (
    BaseModel,
    Field,
    GetJsonSchemaHandler,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic.v1 import ValidationError as ValidationErrorV1
from pydantic_core import CoreSchema
from typing_extensions import Self

from langchain_metaso._http import Call
from langchain_metaso._parsing import Query, ScopeName
from langchain_metaso.config import MetasoConfig, check_arguments, names_of
from langchain_metaso.paged_search import PagedSearch, arun_search, run_search
from langchain_metaso.scopes import SCOPES, describe_scope, describe_scopes

__all__ = [
    "DEFAULT_MAX_CHARS",
    "MetasoTool",
    "QueryInput",
    "call_schema",
    "cut_text",
    "explain_invalid_arguments",
]

DEFAULT_MAX_CHARS = 16_000
"""Longest text a search or answer tool hands the model: 20 results with their summaries
fit (about 600 characters each), a runaway snippet or answer does not."""


# extra="forbid": an argument the tool does not take is an error the model can fix, not dropped.
class QueryInput(BaseModel, extra="forbid"):
    """The arguments the search and answer tools share: a query, and where to look."""

    query: Query = Field(description="What to search for, in Chinese or English.")
    scope: ScopeName | None = Field(
        default=None, description=f"Where to look: {describe_scopes()}."
    )


# The whole argument schema of each tool, by name: a call giving an argument that the
# cut schema (``call_schema``) left out gave one the developer fixed.
_FULL_SCHEMAS: dict[str, type[BaseModel]] = {}


def explain_invalid_arguments(error: ValidationError | ValidationErrorV1) -> str:
    """Turn a validation error into a message a model can act on.

    LangChain's own handler answers a fixed text that names nothing.
    """
    full = _FULL_SCHEMAS.get(getattr(error, "title", ""))
    problems, scope_wrong = [], False
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "arguments"
        if item["type"] != "extra_forbidden":
            problems.append(f"{name}: {item['msg'].removeprefix('Value error, ')}")
            scope_wrong = scope_wrong or name == "scope"
        elif full is not None and name in full.model_fields:
            problems.append(f"{name}: fixed by the developer of this tool, leave it out")
        elif name in (aliases := _other_names(full)):  # given with the name it stands for
            problems.append(f"{name}: another name of {aliases[name]}, give only one of them")
        else:
            problems.append(f"{name}: not an argument of this tool")
    scopes = f" Valid scopes are {', '.join(SCOPES)}." if scope_wrong else ""
    return (
        f"Invalid arguments: {'; '.join(problems)}.{scopes} "
        "Fix the arguments and call the tool again."
    )


def _other_names(schema: type[BaseModel] | None) -> dict[str, str]:
    """Each other name an argument of ``schema`` is accepted by (``max_results``), and its own."""
    fields = schema.model_fields.items() if schema else ()
    return {other: name for name, field in fields for other in names_of(name, field)[1:]}


def cut_text(text: str, max_chars: int | None) -> str:
    """``text`` cut to ``max_chars``, with a marker saying how much was left out."""
    if max_chars is None or len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}\n\n[… cut: {len(text) - max_chars:,} more characters]"


@dataclass(frozen=True)
class _ModelFacing:
    """How an optional argument reads in the schema a model is sent: its own type, not
    ``anyOf`` with ``null`` (which some providers reject), and the bound the tool cuts a
    larger value to, if any (shown, not enforced: a cut costs the agent no turn)."""

    maximum: int | None = None

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            schema.update(branches[0])
        elif branches:
            schema["anyOf"] = branches
        if self.maximum is not None and schema.get("type") == "integer":
            schema["maximum"] = self.maximum
        return schema


@functools.cache  # bounded: a tool's arguments have few subsets and settings
def call_schema(
    full: type[BaseModel], names: tuple[str, ...], notes: tuple[tuple[str, str, int | None], ...]
) -> type[BaseModel]:
    """``full`` with only its fields in ``names``, as a model is shown them.

    ``notes`` are ``(field, description, maximum)``: the description replaces the field's,
    the maximum is shown as its bound. Cached, so tools with the same settings share one class.
    """
    _FULL_SCHEMAS[full.__name__] = full
    noted = {name: (description, maximum) for name, description, maximum in notes}
    fields: dict[str, Any] = {}
    for name in names:
        field = full.model_fields[name]
        if not field.is_required():
            description, maximum = noted.get(name, (field.description, None))
            field = FieldInfo.merge_field_infos(field, description=description)
            field.metadata = [*field.metadata, _ModelFacing(maximum)]
        fields[name] = (field.annotation, field)
    return create_model(
        full.__name__,
        __config__=full.model_config,
        __doc__=full.__doc__,
        __module__=full.__module__,
        **fields,
    )


class MetasoTool(MetasoConfig, BaseTool):
    """What every Metaso tool shares: the settings, a compact answer for the model with
    the full data as the artifact, and failures (bad arguments, a wrong key, rate limits,
    timeouts) handed back as an error ``ToolMessage`` whose text tells the model what to
    do; with ``handle_tool_error=False`` the failures of a call raise the typed error of
    ``langchain_metaso.errors`` (each is a ``ToolException``), and with
    ``handle_validation_error=False`` bad arguments raise pydantic's ``ValidationError``.

    A tool says what it does in ``_plan_call``; ``args_schema`` (a class default) is
    the whole set of call arguments, whose first is always the model's to give. The
    schema the model sees holds it and the ``model_args``; the description speaks of
    those alone (unless the developer gives one).
    """

    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | None = True
    handle_validation_error: (
        bool | str | Callable[[ValidationError | ValidationErrorV1], str] | None
    ) = explain_invalid_arguments
    model_args: tuple[str, ...] | None = None
    """Call arguments besides the first (``query``) that a model may set; ``None``:
    all. The others always take this instance's values."""
    max_chars: int | None = Field(default=DEFAULT_MAX_CHARS, ge=1)
    """Longest text for the model; a longer one is cut, with a marker saying how much
    was left out (the artifact keeps everything). ``None`` never cuts."""

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
        if schema is not full and _FULL_SCHEMAS.get(getattr(schema, "__name__", "")) is not full:
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

    def _given_by_model(self) -> tuple[str, ...]:
        """The call arguments a model may set besides the first."""
        return tuple(self._optional_args()) if self.model_args is None else self.model_args

    def _argument_notes(self) -> tuple[tuple[str, str, int | None], ...]:
        """``call_schema``'s notes where they depend on this instance's settings: by
        default the scope's, naming the tool's own default scope."""
        scope = getattr(self, "scope", None)  # the reader has none
        return (("scope", f"Where to look: {describe_scopes(scope)}.", None),) if scope else ()

    def _describe(self) -> str:
        """The description of the tool for these settings: the class's, naming the default
        scope when it is not the web (the class's text speaks of the web)."""
        text = str(type(self).model_fields["description"].default)
        scope = getattr(self, "scope", "webpage")  # the reader has none
        if scope != "webpage":
            text += f" A call without a scope searches {describe_scope(scope)}."
        return text

    # Also run on every assignment (validate_assignment): the schema and the description
    # follow the settings.
    @model_validator(mode="after")
    def _fit_to_settings(self) -> Self:
        self._fit_schema_and_description()
        return self

    def _fit_schema_and_description(self) -> None:
        full = self._full_schema()
        names = (next(iter(full.model_fields)), *self._given_by_model())
        notes = tuple(note for note in self._argument_notes() if note[0] in names)
        fitted: dict[str, Any] = {"args_schema": call_schema(full, names, notes)}
        if "description" not in self.model_fields_set:
            fitted["description"] = self._describe()
        if any(self.__dict__.get(name) != value for name, value in fitted.items()):
            self.__dict__.update(fitted)
            # Derived, not set: a copy derives them again from its own settings.
            self.__pydantic_fields_set__.discard("args_schema")
            if self.__pydantic_private__ is not None:
                self._tool_call_schema_memo = None  # LangChain's cache of what they shaped

    def __getstate__(self) -> dict[Any, Any]:
        # The schema is a class made by call_schema, which cannot be pickled by name.
        state = super().__getstate__()
        state["__dict__"] = {**state["__dict__"], "args_schema": self._full_schema()}
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._fit_schema_and_description()

    def _plan_call(
        self, *args: Any, **kwargs: Any
    ) -> tuple[Call[Any] | PagedSearch, Callable[[Any], tuple[str, Any]]]:
        """For these (validated) arguments: the API call or the search to make, and how
        its outcome becomes the text for the model and the artifact."""
        raise NotImplementedError

    def _respond(self, content: str, artifact: Any) -> str | tuple[str, Any]:
        content = cut_text(content, self.max_chars)
        # LangChain unpacks a pair with "content_and_artifact", and takes the value as it
        # is for "content": that must be the text alone, never the repr of a pair.
        return (content, artifact) if self.response_format == "content_and_artifact" else content

    def _run(
        self, *args: Any, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any
    ) -> str | tuple[str, Any]:
        work, answer = self._plan_call(*args, **kwargs)
        if isinstance(work, PagedSearch):
            return self._respond(*answer(run_search(self.client, work)))
        return self._respond(*answer(self.client.request(work)))

    async def _arun(
        self,
        *args: Any,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> str | tuple[str, Any]:
        work, answer = self._plan_call(*args, **kwargs)
        if isinstance(work, PagedSearch):
            return self._respond(*answer(await arun_search(self.client, work)))
        return self._respond(*answer(await self.client.arequest(work)))


# LangChain reads these methods' type hints on every call: resolved once, the string
# annotations of ``from __future__ import annotations`` are not evaluated again each time
# (measured: about 50 us, 5% of an in-process search call).
for _method in (MetasoTool._run, MetasoTool._arun):
    _method.__annotations__ = get_type_hints(_method)
