"""What the files running LangChain's standard suites share: an emulator served on
127.0.0.1 for each test class, and the marks those suites need here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

from langchain_metaso.testing import MetasoEmulator

KEY = "test-key"
T = TypeVar("T")

# The standard async tests carry no asyncio mark and may not be overridden, while the
# project runs pytest-asyncio in strict mode: mark the whole class, and silence the
# warning that the mark gets on the class's sync tests.
ASYNC_IN_STRICT_MODE = (
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:.*is marked with '@pytest.mark.asyncio' but it is not"),
)


def standard_suite(cls: type[T]) -> type[T]:
    for mark in ASYNC_IN_STRICT_MODE:
        cls = mark(cls)
    return cls


class OnEmulator:
    """Serves a fresh emulator on 127.0.0.1 for the whole class; the suites' constructor
    parameters point at it."""

    emulator: MetasoEmulator
    base_url: str

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _serve(cls) -> Iterator[None]:
        cls.emulator = MetasoEmulator(api_key=KEY)
        with cls.emulator.serve() as base_url:
            cls.base_url = base_url
            yield

    @property
    def constructor_params(self) -> dict[str, Any]:
        return {"metaso_api_key": KEY, "base_url": self.base_url, "retry_backoff": 0.01}

    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return self.constructor_params

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"METASO_API_KEY": "test-key-from-env", "METASO_BASE_URL": "https://metaso.cn/api/v1/"},
            {},
            {"metaso_api_key": "test-key-from-env", "base_url": "https://metaso.cn/api/v1"},
        )
