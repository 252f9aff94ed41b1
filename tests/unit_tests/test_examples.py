"""Every example and the notebook run offline, as a user runs them, and say the right things.

The expected titles and URLs come from the emulator called in process, so these tests check
that each example shows what the API answered, not a copy of today's output.

Each example's main offline run is a process of its own (``run_as_program``), as a user
starts it: quickstart, the agent, the RAG chain and chat with the ``fast`` model; the
notebook runs in a Jupyter kernel. The other tests check what an example says for given
arguments and settings, so they run it in this process (``run_example``), sparing each
an interpreter start and the imports (~1.5 s) for ~0.1 s of work: same arguments, same
environment, the same exit status and output.
"""

from __future__ import annotations

import io
import os
import re
import runpy
import subprocess
import sys
import traceback
import types
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest
from conftest import TEST_KEY
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from model_provider import ANSWER, ModelProvider, model_provider
from pydantic import Field

from langchain_metaso import ChatMetaso, MetasoRetriever
from langchain_metaso.testing import MetasoEmulator, load_seed_response

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
# Settings a developer may have exported: the examples must not see them unless a test says so.
_USER_SETTINGS = ("METASO_API_KEY", "METASO_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL")
# "  3. Title" then "     https://..." as quickstart and rag_chain print them.
_NUMBERED = re.compile(r"^\s*\[?(\d+)[.\]] (.+)\n\s+(https?://\S+)$", re.MULTILINE)


def run_as_program(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python examples/<script> args...`` with the settings ``env``."""
    clean = {name: value for name, value in os.environ.items() if name not in _USER_SETTINGS}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=REPO,
        env={**clean, "PYTHONIOENCODING": "utf-8", **env},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=90,
        check=False,
    )


def run_example(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``run_as_program`` in this process: the script runs as ``__main__`` with the same
    arguments, environment and ``sys.path``, all restored after; its exit status is what
    the interpreter would have ended with. (``_common`` stays imported: it holds no state.)
    """
    path = str(EXAMPLES / script)
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(stdout), redirect_stderr(stderr):
        for name in _USER_SETTINGS:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.syspath_prepend(str(EXAMPLES))  # Python puts a script's folder first
        patch.setattr(sys, "argv", [path, *args])
        try:
            runpy.run_path(path, run_name="__main__")
            returncode = 0
        except SystemExit as stop:
            # As the interpreter ends: None is success, a number the status, anything
            # else a message on stderr and status 1.
            code = stop.code
            if code is None or isinstance(code, int):
                returncode = code or 0
            else:
                print(code, file=sys.stderr)
                returncode = 1
        except Exception:
            traceback.print_exc()
            returncode = 1
    return subprocess.CompletedProcess(
        [path, *args], returncode, stdout.getvalue(), stderr.getvalue()
    )


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def expected_docs(query: str, **kwargs: Any) -> list[Document]:
    """What the examples' offline emulator answers for ``query``."""
    retriever = MetasoRetriever(
        metaso_api_key=TEST_KEY, transport=MetasoEmulator(api_key=TEST_KEY).transport(), **kwargs
    )
    return retriever.invoke(query)


def numbered(output: str) -> list[tuple[int, str, str]]:
    return [(int(n), title, url) for n, title, url in _NUMBERED.findall(output)]


# --- quickstart ---------------------------------------------------------------------------


def test_quickstart_offline_prints_the_seed_results() -> None:
    output = succeeded(run_as_program("quickstart.py", "--offline"))

    first_line = output.splitlines()[0]
    assert first_line.startswith("Offline:")
    assert "emulator" in first_line
    seed = load_seed_response()["webpages"]
    assert numbered(output) == [
        (n, item["title"], item["link"]) for n, item in enumerate(seed, start=1)
    ]
    # Each result's date and the start of its summary (or snippet) are shown too.
    for item in seed:
        assert item["date"] in output
        text = " ".join((item.get("summary") or item["snippet"]).split())
        assert text[:60] in output


def test_quickstart_scope_and_k() -> None:
    query = "大语言模型 幻觉"
    output = succeeded(
        run_example("quickstart.py", query, "--scope", "scholar", "--k", "3", "--offline")
    )

    docs = expected_docs(query, scope="scholar", k=3)
    assert numbered(output) == [
        (n, doc.metadata["title"], doc.metadata["source"]) for n, doc in enumerate(docs, start=1)
    ]
    assert f"Metaso scholar search for {query!r}" in output
    # Papers carry authors: each appears on its result's details line.
    for doc in docs:
        assert ", ".join(doc.metadata["authors"]) in output


@pytest.mark.parametrize("script", ["quickstart.py", "agent.py", "rag_chain.py", "chat.py"])
def test_without_key_or_offline_exits_2_with_one_message(script: str) -> None:
    result = run_example(script)

    assert result.returncode == 2
    assert result.stdout == ""
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for needed in ("METASO_API_KEY", "--offline", "302.ai", "metaso.cn"):
        assert needed in message
    assert "Traceback" not in result.stderr


def test_quickstart_with_a_key_uses_the_api_at_metaso_base_url(
    emulator: MetasoEmulator, emulator_url: str
) -> None:
    output = succeeded(
        run_example(
            "quickstart.py",
            "秘塔",
            "--k",
            "2",
            METASO_API_KEY=TEST_KEY,
            METASO_BASE_URL=emulator_url,
        )
    )

    assert not output.startswith("Offline")
    assert [title for _, title, _ in numbered(output)] == [
        doc.metadata["title"] for doc in expected_docs("秘塔", k=2)
    ]
    [request] = emulator.requests
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.json() == {"q": "秘塔", "scope": "webpage", "includeSummary": True, "size": 2}


def test_quickstart_api_error_prints_the_message_and_exits_1(
    emulator_url: str,
) -> None:
    wrong_key = "wrong-test-key"
    result = run_example("quickstart.py", METASO_API_KEY=wrong_key, METASO_BASE_URL=emulator_url)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith("Error: Metaso search failed with HTTP 401")
    assert "METASO_API_KEY" in message
    assert wrong_key not in message


@pytest.mark.parametrize(
    ("script", "value", "expected"),
    [
        ("quickstart.py", "0", "0 is not between 1 and 100"),
        ("rag_chain.py", "101", "101 is not between 1 and 100"),
        ("quickstart.py", "many", "'many' is not a whole number"),
    ],
)
def test_invalid_command_line_value_is_a_one_line_usage_error(
    script: str, value: str, expected: str
) -> None:
    result = run_example(script, "--k", value, "--offline")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"{script}: error: argument --k: {expected} (see --help)\n"


# --- agent and chain -----------------------------------------------------------------------


class UnreachableChatOpenAI(BaseChatModel):
    """Stands in for langchain-openai's ``ChatOpenAI`` when its provider cannot be reached,
    as with a wrong ``OPENAI_BASE_URL`` or no network: it fails at once, with a message of
    two lines."""

    model: str
    # As langchain-openai does: the provider's settings from the environment.
    api_key: str = Field(default_factory=lambda: os.environ["OPENAI_API_KEY"])
    base_url: str = Field(default_factory=lambda: os.environ["OPENAI_BASE_URL"])
    temperature: float

    @property
    def _llm_type(self) -> str:
        return "unreachable"

    def bind_tools(self, tools: Any, **kwargs: Any) -> UnreachableChatOpenAI:
        return self

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError(f"Connection refused by {self.base_url}\nretried twice")


def failed_with_one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The message of an example that failed as a program does: exit 1, one line, no trace."""
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    return message


@pytest.mark.parametrize("script", ["agent.py", "rag_chain.py"])
def test_unreachable_chat_model_says_what_to_set(
    script: str, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    langchain_openai = types.ModuleType("langchain_openai")
    langchain_openai.ChatOpenAI = UnreachableChatOpenAI  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain_openai", langchain_openai)
    chat_url = "http://127.0.0.1:9/v1"
    result = run_example(
        script,
        METASO_API_KEY=TEST_KEY,
        METASO_BASE_URL=emulator_url,
        OPENAI_API_KEY="sk-model-key",
        OPENAI_BASE_URL=chat_url,
    )

    message = failed_with_one_line(result)
    assert message.startswith(f"Error: the chat model 'gpt-4o-mini' at {chat_url} did not answer")
    assert f"ConnectionError: Connection refused by {chat_url} retried twice" in message
    for needed in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "--model", "--offline"):
        assert needed in message


# --- the model's key: never the Metaso key, unless asked for 302.AI's own chat API -----------

METASO_KEY = "mk-metaso-key-NOT-FOR-THE-MODEL"


@pytest.fixture
def metaso_url() -> Iterator[str]:
    """An emulator served on 127.0.0.1 that accepts ``METASO_KEY``."""
    with MetasoEmulator(api_key=METASO_KEY).serve() as base_url:
        yield base_url


@pytest.fixture
def provider() -> Iterator[ModelProvider]:
    with model_provider() as served:
        yield served


@pytest.fixture
def settings(metaso_url: str, provider: ModelProvider) -> dict[str, str]:
    """A Metaso key and the model provider's address, but no model key."""
    return {
        "METASO_API_KEY": METASO_KEY,
        "METASO_BASE_URL": metaso_url,
        "OPENAI_BASE_URL": provider.url,
    }


@pytest.mark.parametrize("script", ["agent.py", "rag_chain.py"])
def test_without_a_model_key_the_metaso_key_is_not_sent_to_the_model_provider(
    script: str, settings: dict[str, str], provider: ModelProvider
) -> None:
    result = run_example(script, **settings)
    message = failed_with_one_line(result)
    for needed in ("OPENAI_API_KEY", "--model-via-302ai", "--offline"):
        assert needed in message
    assert METASO_KEY not in message
    assert provider.authorizations == []


@pytest.mark.parametrize("script", ["agent.py", "rag_chain.py"])
def test_the_model_key_comes_from_the_model_providers_own_settings(
    script: str, settings: dict[str, str], provider: ModelProvider
) -> None:
    output = succeeded(run_example(script, **settings, OPENAI_API_KEY="sk-model-key"))
    assert ANSWER in output
    assert provider.authorizations
    assert set(provider.authorizations) == {"Bearer sk-model-key"}


def test_a_metaso_cn_key_is_refused_for_302ais_chat_api(
    settings: dict[str, str], provider: ModelProvider
) -> None:
    result = run_example("agent.py", "--model-via-302ai", **settings)
    message = failed_with_one_line(result)
    assert "needs a 302.AI key" in message
    assert provider.authorizations == []


def test_asked_for_302ais_chat_api_the_302ai_key_goes_to_302ai_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from _common import real_chat_model

    for name in _USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("METASO_API_KEY", "sk-302ai-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # not where it goes
    model = real_chat_model("gpt-4o-mini", via_302ai=True)
    assert model.openai_api_key.get_secret_value() == "sk-302ai-key"  # type: ignore[attr-defined]
    assert model.openai_api_base == "https://api.302.ai/v1"  # type: ignore[attr-defined]


def test_agent_without_langchain_openai_says_what_to_install(
    emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules: importing it fails as if it were not installed.
    monkeypatch.setitem(sys.modules, "langchain_openai", None)
    result = run_example("agent.py", METASO_API_KEY=TEST_KEY, METASO_BASE_URL=emulator_url)

    message = failed_with_one_line(result)
    assert 'pip install -e ".[examples]"' in message
    assert "--offline" in message


def test_agent_offline_runs_the_tool_loop_and_answers_from_the_results() -> None:
    question = "秘塔 AI 搜索有哪些特点?"
    output = succeeded(run_as_program("agent.py", question, "--offline"))

    assert output.splitlines()[0].startswith("Offline:")
    assert f'Tool call: metaso_search({{"query": "{question}"}})' in output
    assert "Tool result (metaso_search, success):" in output
    answer = output.split("\nAnswer:\n", 1)[1]
    # The scripted model answers from the tool's real output: the top three results, cited.
    docs = expected_docs(question, k=5)
    for number, doc in enumerate(docs[:3], start=1):
        assert f"{doc.metadata['title']} [{number}] {doc.metadata['source']}" in answer
    assert docs[3].metadata["source"] not in answer


def test_rag_chain_offline_prints_sources_and_an_answer_citing_them() -> None:
    question = "什么是向量数据库?"
    output = succeeded(run_as_program("rag_chain.py", question, "--k", "3", "--offline"))

    assert output.splitlines()[0].startswith("Offline:")
    sources, answer = output.split("\nAnswer:\n", 1)
    docs = expected_docs(question, k=3)
    expected = [
        (n, doc.metadata["title"], doc.metadata["source"]) for n, doc in enumerate(docs, start=1)
    ]
    assert numbered(sources) == expected
    # The stand-in model only sees the prompt: finding every source in its answer proves
    # the formatted documents reached the model.
    assert question in answer
    for number, title, url in expected:
        assert f"{title} [{number}] ({url})" in answer


# --- chat ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["fast", "fast_thinking"])
def test_chat_offline_streams_the_answer_then_its_numbered_sources(model: str) -> None:
    question = "大语言模型的幻觉是什么?"
    run = run_as_program if model == "fast" else run_example  # one run as a user starts it
    output = succeeded(
        run("chat.py", question, "--scope", "scholar", "--model", model, "--offline")
    )

    chat = ChatMetaso(
        metaso_api_key=TEST_KEY,
        transport=MetasoEmulator(api_key=TEST_KEY).transport(),
        scope="scholar",
        model=model,
    )
    expected = chat.invoke(question)
    sources = expected.response_metadata["citations"]
    assert len(sources) >= 3
    first_line, shown = output.split("\n", 1)
    assert first_line.startswith("Offline:")
    reasoning = expected.additional_kwargs.get("reasoning_content")
    assert bool(reasoning) == (model == "fast_thinking")
    if reasoning:  # the thinking model's reasoning comes first, apart from the answer
        assert shown.startswith(f"Reasoning:\n{reasoning}\n\nAnswer:\n")
    else:
        assert shown.startswith("Answer:\n")
    answer, listed = shown.split("Answer:\n", 1)[1].split("\n\nSources:\n", 1)
    assert answer == expected.text
    assert numbered(listed) == [
        (n, source["title"], source["link"]) for n, source in enumerate(sources, start=1)
    ]
    tokens = expected.usage_metadata["total_tokens"] if expected.usage_metadata else None
    assert listed.rstrip().endswith(f"({model}, {tokens} tokens)")


# --- notebook ------------------------------------------------------------------------------

NOTEBOOK = EXAMPLES / "rag_notebook.ipynb"


def test_notebook_is_committed_valid_and_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code_cells)


def _text(output: dict[str, Any]) -> str:
    # A stream's text may come in several outputs, split anywhere (even mid-line): they
    # carry their own newlines. A result's text ends its line.
    if output["output_type"] == "stream":
        return str(output["text"])
    return str(output.get("data", {}).get("text/plain", "")) + "\n"


@pytest.mark.parametrize("folder", [EXAMPLES, REPO], ids=["from-examples", "from-the-root"])
def test_notebook_runs_offline(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    for name in _USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Appended here only: proves the kernel is this interpreter, so it tests this install.
    notebook.cells.append(nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        # Jupyter starts a kernel in the notebook's folder, or where it was started.
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()

    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"]
    text = "".join(_text(output) for output in outputs)
    assert text.splitlines()[0].startswith("Offline:")
    assert text.rstrip().endswith(sys.prefix)
    # Search results, the metadata of every scope, the async batch and the chain's answer.
    for doc in expected_docs("秘塔 AI 搜索", k=3):
        assert (
            f"{doc.metadata['position']} {doc.metadata['title']} {doc.metadata['source']}" in text
        )
    for scope, field in [("document", "authors"), ("podcast", "duration"), ("image", "imageUrl")]:
        assert re.search(rf"^{scope} +https://\S+\n +metadata: \[.*'{field}'", text, re.MULTILINE)
    for query in ("RAG 评测", "向量数据库", "重排序 reranker"):
        assert f"{query}: {[d.metadata['title'] for d in expected_docs(query, k=2)]}" in text
    papers = expected_docs("大语言模型的幻觉问题有哪些研究?", k=4, scope="scholar")
    for number, paper in enumerate(papers, start=1):
        assert f"[{number}] ({paper.metadata['source']})" in text
