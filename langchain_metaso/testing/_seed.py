"""The one real search response the API reference documents, kept as a fixture."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

SEED_QUERY = "谁是这个世界上最美丽的女人"


@functools.cache  # read once: a benchmark's server answers it thousands of times
def seed_response_bytes() -> bytes:
    """The seed response exactly as stored, so the emulator can serve it byte for byte."""
    return (resources.files(__package__) / "seed_search_response.json").read_bytes()


def load_seed_response() -> dict[str, Any]:
    """The seed search response, parsed; a fresh copy on each call so callers may mutate it."""
    value: dict[str, Any] = json.loads(seed_response_bytes())
    return value
