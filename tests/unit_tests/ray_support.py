"""A local Ray cluster for the tests: conftest's ``ray_cluster`` starts one for a test
module.

Without Ray the tests that use it skip, saying how to install it; under ``CI=true`` they
fail. The cluster is the module's own (``address="local"``: never one that
``RAY_ADDRESS`` points at), on free ports, so two pytest-xdist workers each start theirs.
Its workers find the package and these helpers through ``PYTHONPATH``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
RAY_HINT = 'Ray not installed: pip install "langchain-metaso[ray]"'


def import_ray() -> ModuleType:
    """The ``ray`` module; skip the test without it (fail under ``CI=true``)."""
    try:
        import ray
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{RAY_HINT}; CI must run the Ray tests", pytrace=False)
        pytest.skip(RAY_HINT)
    return ray


def local_ray() -> Iterator[ModuleType]:
    """A local Ray of 2 CPUs, without a dashboard, until the generator is closed."""
    ray = import_ray()
    path = os.pathsep.join([str(HERE.parents[1]), str(HERE), os.environ.get("PYTHONPATH", "")])
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
