"""The package's public names (``__init__.py``): each one resolves, and nothing else does."""

from __future__ import annotations

import pytest

import langchain_metaso


def test_every_public_name_resolves() -> None:
    for name in langchain_metaso.__all__:
        assert getattr(langchain_metaso, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        langchain_metaso.Nope  # noqa: B018


def test_dir_lists_the_public_names() -> None:
    assert set(langchain_metaso.__all__) <= set(dir(langchain_metaso))
