"""The search scopes, written once: their names, where an answer lists their results, and
how a model should read them. Standard library only, so the emulator can import it."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "SCOPES",
    "SCOPE_ALIASES",
    "Scope",
    "describe_scope",
    "describe_scopes",
    "normalize_scope",
    "result_key",
]

Scope = Literal["webpage", "document", "scholar", "podcast", "video", "image"]
"""What to search: web pages, documents (文库), papers (学术), podcasts, videos, images."""

SCOPES: tuple[str, ...] = get_args(Scope)

_DESCRIPTIONS: dict[str, str] = {
    "webpage": "the web",
    "document": "documents, 文库",
    "scholar": "academic papers, 学术",
    "podcast": "podcasts",
    "video": "videos",
    "image": "images",
}

SCOPE_ALIASES: dict[str, str] = {"paper": "scholar"}
"""Other names users and models give a scope: Metaso's own MCP server calls the
academic scope ``paper``, while the REST API only answers ``scholar``."""


def result_key(scope: str) -> str:
    """The key of an answer's result list: the scope's plural (``webpages``, ``scholars``...)."""
    return f"{scope}s"


def normalize_scope(value: object) -> object:
    """``value`` lower-cased and stripped, with aliases resolved; anything else unchanged
    (so the caller's validation reports it)."""
    if not isinstance(value, str):
        return value
    name = value.strip().lower()
    return SCOPE_ALIASES.get(name, name)


def describe_scopes(default: str = "webpage") -> str:
    """The scopes as a model should read them, e.g. for an argument's description."""
    return ", ".join(
        f"'{scope}' ({_DESCRIPTIONS[scope]}{', default' if scope == default else ''})"
        for scope in SCOPES
    )


def describe_scope(scope: str) -> str:
    """What ``scope`` searches, as a phrase: ``"academic papers (学术)"``."""
    what, _, native = _DESCRIPTIONS[scope].partition(", ")
    return f"{what} ({native})" if native else what
