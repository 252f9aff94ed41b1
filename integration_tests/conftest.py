"""Where the integration tests send their requests: the real Metaso API, or the emulator.

Every test that uses ``metaso_target`` runs twice: against ``real`` (only when
``METASO_API_KEY`` is set; ``METASO_BASE_URL`` picks the provider) and against ``emulator``
(the bundled ``MetasoEmulator`` served over a real socket on 127.0.0.1). So the suites run
offline in CI and never rot, and ``METASO_API_KEY=... pytest integration_tests`` runs them
for real.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import pytest
from langchain_core.messages import ToolMessage

from langchain_metaso import DEFAULT_BASE_URL, MetasoConfig
from langchain_metaso.testing import MetasoEmulator

REAL_SKIP_REASON = "METASO_API_KEY not set: this target calls the real Metaso API"
EMULATOR_KEY = "test-key"

C = TypeVar("C", bound=MetasoConfig)


@dataclass(frozen=True)
class Target:
    """One API to test against.

    Attributes:
        name: ``"real"`` or ``"emulator"``.
        settings: Connection keyword arguments for any ``langchain_metaso`` class.
        emulator: The emulator behind the target, ``None`` for the real API.
    """

    name: str
    settings: dict[str, Any]
    emulator: MetasoEmulator | None = None

    @property
    def base_url(self) -> str:
        return str(self.settings["base_url"])

    def make(self, cls: type[C], /, **kwargs: Any) -> C:
        """An instance of ``cls`` talking to this target; ``kwargs`` override the settings."""
        return cls(**{**self.settings, **kwargs})

    def __repr__(self) -> str:
        # Spelled out so a failing test never prints the real key.
        return f"Target({self.name!r}, base_url={self.base_url!r})"


@pytest.fixture(scope="session")
def served_emulator() -> Iterator[tuple[MetasoEmulator, str]]:
    """One emulator for the session, served on 127.0.0.1; it accepts ``Bearer test-key``."""
    emulator = MetasoEmulator(api_key=EMULATOR_KEY)
    with emulator.serve() as base_url:
        yield emulator, base_url


@pytest.fixture(scope="session", params=["real", "emulator"])
def metaso_target(request: pytest.FixtureRequest) -> Target:
    """The API under test; the ``real`` one skips when ``METASO_API_KEY`` is not set."""
    if request.param == "real":
        key = os.environ.get("METASO_API_KEY", "").strip()
        if not key:
            pytest.skip(REAL_SKIP_REASON)
        base_url = os.environ.get("METASO_BASE_URL", "").strip() or DEFAULT_BASE_URL
        return Target("real", {"metaso_api_key": key, "base_url": base_url})
    emulator, base_url = request.getfixturevalue("served_emulator")
    return Target(
        "emulator", {"metaso_api_key": EMULATOR_KEY, "base_url": base_url}, emulator=emulator
    )


class OnTarget:
    """Runs a standard suite once per target: the suites read their constructor
    parameters from properties, which read the target this autouse fixture sets."""

    # The suites' async tests carry no asyncio mark, which strict mode needs. Marking the
    # class marks its sync tests too, which pytest-asyncio warns about harmlessly.
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [
        pytest.mark.asyncio,
        pytest.mark.filterwarnings("ignore:The test <Function .* is not an async function"),
    ]
    target: Target

    @pytest.fixture(autouse=True)
    def _on_target(self, metaso_target: Target) -> None:
        self.target = metaso_target


def tool_call(tool_name: str, /, **args: Any) -> dict[str, Any]:
    """A model's call of the tool named ``tool_name``, with ``args``."""
    return {"name": tool_name, "args": args, "id": "1", "type": "tool_call"}


def tool_message(tool: Any, /, **args: Any) -> ToolMessage:
    """The ``ToolMessage`` answering a model's call of ``tool`` with ``args``."""
    message = tool.invoke(tool_call(tool.name, **args))
    assert isinstance(message, ToolMessage)
    return message
