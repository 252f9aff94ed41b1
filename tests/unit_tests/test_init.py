"""The package's public names (``__init__.py``): imported on first use, each one resolves,
and nothing else does."""

from __future__ import annotations

import subprocess
import sys

import pytest

import langchain_metaso


def test_importing_the_package_loads_nothing_until_a_name_is_used() -> None:
    code = (
        "import sys, langchain_metaso\n"
        "print(sorted(m for m in sys.modules if m.startswith(('langchain', 'pydantic'))))\n"
        "from langchain_metaso import MetasoSearchTool\n"
        "print('langchain_metaso.tools.search' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["['langchain_metaso']", "True"]


def test_every_public_name_resolves() -> None:
    for name in langchain_metaso.__all__:
        assert getattr(langchain_metaso, name) is not None
    assert langchain_metaso.Scope is langchain_metaso.scopes.Scope
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        langchain_metaso.Nope  # noqa: B018


def test_dir_lists_the_public_names() -> None:
    assert set(langchain_metaso.__all__) <= set(dir(langchain_metaso))
