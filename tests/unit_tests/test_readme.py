"""Every ```python block of README.md runs as written: in order in one namespace, as a reader
pasting them into one session does, and each on its own, as a reader trying one does.

Offline: ``METASO_API_KEY`` and ``METASO_BASE_URL`` point at the emulator served on
127.0.0.1, and ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` at a stand-in model provider that
calls the tools it is given (``model_provider.py``), so the blocks that build a provider's
model (``ChatOpenAI(...)``, ``create_agent("openai:...", ...)``) run unchanged. A block may use
top-level ``await``, as in a notebook.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from model_provider import ModelProvider, model_provider

from langchain_metaso.testing import MetasoEmulator

README = Path(__file__).resolve().parents[2] / "README.md"
KEY = "readme-key"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[int, str]]:
    """Each ```python block's first line number in README.md, and its code."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m[1]) for m in _BLOCK.finditer(text)]


BLOCKS = python_blocks()


def run_block(code: str, namespace: dict[str, Any], line: int) -> None:
    """Run ``code`` in ``namespace``; top-level ``await`` runs on a fresh event loop."""
    compiled = compile(
        code, f"README.md:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    result = eval(compiled, namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelProvider]:
    """The emulator and the model provider stand-in, where the README's settings point."""
    with MetasoEmulator(api_key=KEY).serve() as base_url, model_provider() as provider:
        monkeypatch.setenv("METASO_API_KEY", KEY)
        monkeypatch.setenv("METASO_BASE_URL", base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-model-key")
        monkeypatch.setenv("OPENAI_BASE_URL", provider.url)
        yield provider


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 15


def test_every_block_runs_in_order_in_one_namespace(offline: ModelProvider) -> None:
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    for line, code in BLOCKS:
        run_block(code, namespace, line)


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"line-{line}" for line, _ in BLOCKS])
def test_each_block_runs_on_its_own(offline: ModelProvider, line: int, code: str) -> None:
    run_block(code, {"__name__": "__readme__"}, line)


# --- facts that must agree across the documents ---------------------------------------------

REPO = README.parent


def test_the_runtime_dependencies_named_are_the_packages() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=\[ ]", dependency)[0] for dependency in project["dependencies"]}
    stated = next(
        line
        for line in README.read_text(encoding="utf-8").split("\n\n")
        if line.startswith("Runtime dependencies:")
    )
    assert {name for name in re.findall(r"`([a-z][a-z-]*)`", stated)} >= names
    assert len(names) == stated.split("nothing")[0].count("`") // 2


def test_benchmarks_readme_names_every_benchmark() -> None:
    text = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    scripts = [path.name for path in (REPO / "benchmarks").glob("*.py")]
    assert scripts
    missing = [name for name in scripts if f"benchmarks/{name}" not in text and name not in text]
    assert missing == []


def test_contributing_maps_every_module() -> None:
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    package = REPO / "langchain_metaso"
    # Modules of the package and of _http/ by file name; other subpackages by folder.
    expected = [
        path.name
        for folder in (package, package / "_http")
        for path in folder.glob("*.py")
        if path.name != "__init__.py" or folder == package
    ] + [f"{path.name}/" for path in package.iterdir() if (path / "__init__.py").exists()]
    assert [name for name in expected if name not in text] == []


def help_texts(path: Path) -> list[str]:
    """What ``--help`` shows of a script: every constant ``help=`` and ``description=`` it
    passes, and its docstring when it is the description (``parser(__doc__)``)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    texts = [ast.get_docstring(tree) or ""] if "(__doc__)" in source else []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("help", "description"):
            texts += [str(c.value) for c in ast.walk(node.value) if isinstance(c, ast.Constant)]
    return texts


SCRIPTS = [
    *sorted((REPO / "benchmarks").glob("[!_]*.py")),
    *sorted((REPO / "examples").glob("[!_]*.py")),
    REPO / "langchain_metaso" / "testing" / "__main__.py",
    REPO / "langchain_metaso" / "mcp" / "server.py",
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_help_texts_are_plain_text_without_issue_numbers(script: Path) -> None:
    texts = help_texts(script)
    assert texts
    for text in texts:
        assert "``" not in text, text
        assert not re.search(r"\b[Ii]ssue \d", text), text


def test_the_search_schemas_argument_count_is_the_schemas() -> None:
    from langchain_metaso.tools.search import MetasoSearchInput

    text = README.read_text(encoding="utf-8")
    words = {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
    stated = [int(n) for n in re.findall(r"(\d+)-argument schema", text)] + [
        words[w] for w in re.findall(r"schema has (\w+) arguments", text)
    ]
    assert stated
    assert set(stated) == {len(MetasoSearchInput.model_fields)}


def test_the_tool_output_shown_is_what_the_tool_prints(offline: ModelProvider) -> None:
    from langchain_metaso import MetasoSearchTool
    from langchain_metaso.testing import SEED_QUERY

    text = README.read_text(encoding="utf-8")
    shown = next(
        block
        for block in re.findall(r"^```text\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
        if block.startswith("Metaso webpage search for")
    )
    # The seed query is the one the API reference shows: the emulator answers it verbatim.
    assert f"'{SEED_QUERY}'" in shown
    printed = MetasoSearchTool().invoke({"query": SEED_QUERY}).splitlines()
    for number, line in enumerate(shown.rstrip("\n").splitlines()):
        # A line shortened in the README ends with "...": the start is what is printed.
        if line.endswith("..."):
            assert printed[number].startswith(line[:-3])
        else:
            assert printed[number] == line
