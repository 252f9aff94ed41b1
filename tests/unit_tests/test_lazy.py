"""Public names imported on first use (``_lazy.py``): what importing costs, and that every
name resolves, once."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import langchain_metaso
from langchain_metaso._lazy import lazy_exports


def test_importing_a_class_loads_only_what_it_needs() -> None:
    code = (
        "import sys, langchain_metaso\n"
        "light = sorted(m for m in sys.modules if m.startswith('langchain_metaso'))\n"
        "from langchain_metaso import MetasoSearchTool, MetasoRetriever\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('langchain_metaso'))\n"
        "print(light); print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    light, loaded = eval(out[0]), eval(out[1])
    assert light == [
        "langchain_metaso",
        "langchain_metaso._lazy",
        "langchain_metaso.errors",
        "langchain_metaso.providers",
    ]
    for optional in (
        "reader",
        "chat",
        "tools.reader",
        "tools.answer",
        "document_loaders",
        "toolkits",
        "testing",
    ):
        assert f"langchain_metaso.{optional}" not in loaded
    assert "langchain_metaso.tools.search" in loaded
    assert "langchain_metaso.retrievers" in loaded


def test_every_public_name_resolves() -> None:
    for name in langchain_metaso.__all__:
        assert getattr(langchain_metaso, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        langchain_metaso.Nope  # noqa: B018


def test_dir_lists_the_public_names() -> None:
    assert set(langchain_metaso.__all__) <= set(dir(langchain_metaso))


def test_a_name_is_imported_once_then_is_an_attribute_of_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = types.ModuleType("lazy_test_package")
    package.__all__ = ["dumps"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lazy_test_package", package)
    monkeypatch.setitem(sys.modules, "lazy_test_package.codec", __import__("json"))
    getattr_, dir_ = lazy_exports("lazy_test_package", {"dumps": "codec"})
    assert "dumps" not in vars(package)
    assert getattr_("dumps") is sys.modules["json"].dumps
    assert vars(package)["dumps"] is sys.modules["json"].dumps  # later lookups skip getattr_
    assert dir_() == ["dumps"]
    with pytest.raises(AttributeError, match="'lazy_test_package' has no attribute 'loads'"):
        getattr_("loads")
