"""``MetasoTool``: what every Metaso tool shares."""

# No `from __future__ import annotations` in the tool modules: LangChain reads `_run`'s
# type hints on every call, and evaluating string annotations each time costs more than
# the rest of the tool's own work.

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from langchain_core.tools import BaseTool, ToolException
from pydantic import ValidationError
from pydantic.v1 import ValidationError as ValidationErrorV1

from langchain_metaso.config import MetasoConfig
from langchain_metaso.errors import MetasoError
from langchain_metaso.scopes import SCOPES

__all__ = ["MetasoTool", "as_tool_error", "explain_invalid_arguments"]


def explain_invalid_arguments(error: ValidationError | ValidationErrorV1) -> str:
    """Turn a validation error into a message a model can act on.

    LangChain's own handler answers a fixed text that names nothing.
    """
    items = error.errors()
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'arguments'}: {item['msg']}"
        for item in items
    )
    scopes = (
        f" Valid scopes are {', '.join(SCOPES)}."
        if any("scope" in item["loc"] for item in items)
        else ""
    )
    return f"Invalid arguments: {problems}.{scopes} Fix the arguments and call the tool again."


@contextmanager
def as_tool_error() -> Iterator[None]:
    """Re-raise our errors as ``ToolException``, the only kind LangChain hands back
    to the agent as an error ``ToolMessage`` (``handle_tool_error``)."""
    try:
        yield
    except MetasoError as exc:
        raise ToolException(str(exc)) from exc


class MetasoTool(MetasoConfig, BaseTool):
    """What every Metaso tool shares: the settings, a compact answer for the model with
    the full data as the artifact, and failures handed back to the agent as an error
    ``ToolMessage`` it can act on rather than as an exception."""

    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | None = True
    handle_validation_error: (
        bool | str | Callable[[ValidationError | ValidationErrorV1], str] | None
    ) = explain_invalid_arguments
