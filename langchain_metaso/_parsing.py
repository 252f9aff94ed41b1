"""Lenient field types shared by the endpoint modules, and the checks every request makes.

Answers are parsed leniently: any field may be missing, null or of an unexpected type (it
then reads as ``None``), and unknown fields are kept. Requests are validated strictly.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError

from langchain_metaso.scopes import Scope, normalize_scope

__all__ = [
    "Int",
    "JsonObject",
    "Query",
    "ScopeName",
    "Text",
    "TextList",
    "as_int",
    "check_query",
    "is_text",
    "lenient",
    "stable_id",
]


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    # Numbers sometimes come where text is documented (e.g. a numeric title).
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:  # not a number, or digits int() rejects (e.g. "²")
            return None
    return None


def _as_text_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return None


def _as_dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


Text = Annotated[str | None, BeforeValidator(_as_text)]
Int = Annotated[int | None, BeforeValidator(as_int)]
TextList = Annotated[list[str] | None, BeforeValidator(_as_text_list)]
# dict[Any, Any]: its keys are not re-validated, so one that is not valid text passes.
JsonObject = Annotated[dict[Any, Any] | None, BeforeValidator(_as_dict)]
ScopeName = Annotated[Scope, BeforeValidator(normalize_scope)]
"""A scope as users and models write it: any case, and aliases (``paper``) resolved."""

M = TypeVar("M", bound=BaseModel)


def lenient(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data``, whose every field is lenient, so that only a key that is not
    valid text (a lone surrogate, which JSON can carry) can fail: such keys are dropped."""
    try:
        return model.model_validate(data)
    except ValidationError:
        return model.model_validate({k: v for k, v in data.items() if is_text(k)})


def is_text(value: str) -> bool:
    """Whether ``value`` can be encoded as UTF-8 (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_query(value: str) -> str:
    """Return the query stripped, or raise ``ValueError`` if nothing is left."""
    stripped = value.strip()
    if not stripped:
        raise ValueError("query must not be empty or only whitespace")
    if not is_text(stripped):
        raise ValueError("query holds a character that is not valid text (a lone surrogate)")
    return stripped


Query = Annotated[str, AfterValidator(check_query)]
"""A query, stripped, never empty: the check travels with the type (into the subsets of
a tool's arguments that a model sees)."""


def stable_id(identity: str) -> str:
    """A ``Document.id`` every vector store accepts, the same for the same ``identity`` (a
    URL) on every call. A lone surrogate, which JSON can carry, is hashed as its escape."""
    name = identity.encode("utf-8", "backslashreplace").decode("utf-8")
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))
