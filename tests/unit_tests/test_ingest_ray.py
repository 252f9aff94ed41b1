"""``examples/ingest_ray.py --offline``: a corpus built twice on one Ray cluster the test
started (``--ray-address``, as on an existing cluster: starting one takes seconds); the
second run finds everything already indexed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from redis_support import REPO, redis_server_binary


def ingest(state: Path, *args: str) -> dict[str, float]:
    """Run the example offline, keeping its index in ``state``: its summary's figures."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("METASO_", "RAY_ADDRESS"))},
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "PYTHONIOENCODING": "utf-8",
    }
    result = subprocess.run(
        [sys.executable, "examples/ingest_ray.py", "--offline", "--state", str(state), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "Searching 5 queries on 2 CPUs of Ray..." in result.stdout  # progress as it goes
    summary = result.stdout.split("\nSummary\n", 1)[1]
    return {
        name.strip(): float(value)
        for name, value in re.findall(r"^\s+([a-z ]+):\s+([\d.]+)$", summary, re.MULTILINE)
    }


@pytest.mark.timeout(900)
def test_a_second_run_indexes_nothing_new(tmp_path: Path, ray_cluster: ModuleType) -> None:
    redis_server_binary()
    cluster = ("--ray-address", ray_cluster.get_runtime_context().gcs_address)
    first = ingest(tmp_path / "state", *cluster)
    # 5 queries, one of them twice, 3 pages each; no page is found by two queries.
    assert first["queries"] == 5
    assert first["duplicates skipped"] == 3
    assert first["documents indexed"] == 12
    assert first["already indexed"] == 0
    # Every call was answered by the emulator or by the cache: a search a query, a read a page.
    assert first["requests"] + first["cache hits"] == 5 + 15 - first["duplicates skipped"]
    # The emulator charges 3 a search of 3 results and 1 a page.
    assert first["credits spent"] == 3 * (first["requests"] - 12) + 12
    second = ingest(tmp_path / "state", *cluster)
    assert second["documents indexed"] == 0
    assert second["already indexed"] == 12
