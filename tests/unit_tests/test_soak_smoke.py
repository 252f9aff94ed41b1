"""Issue 6: the soak run, at its reduced size (``benchmarks/soak.py --quick``).

It runs as a subprocess, as it would by hand, and its reported figures are checked
here rather than trusted from its exit status. The full size (10,000 calls) is run by
hand: ``python benchmarks/soak.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def test_quick_soak_run(tmp_path: Path) -> None:
    figures_path = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, str(SOAK), "--quick", "--json", str(figures_path)],
        capture_output=True,
        text=True,
        timeout=110,  # inside pytest's own 120 s per test
    )
    figures: dict[str, Any] = json.loads(figures_path.read_text(encoding="utf-8"))
    output = done.stdout + done.stderr

    assert figures["calls"] == 1000, output
    assert figures["unhandled"] == 0, output
    assert figures["mismatched_answers"] == 0, output
    assert figures["successes"] + figures["typed_errors"] == figures["calls"], output
    assert figures["successes"] > 0, output
    assert figures["typed_errors"] > 0, output  # the faults did reach the callers
    assert sum(figures["faults_injected"].values()) > 0, output
    assert figures["fds_end"] <= figures["fds_start"], output
    assert figures["sockets_end"] <= figures["sockets_start"], output
    assert (
        figures["sockets_in_use_before_close"] - figures["sockets_start"] <= figures["pool_bound"]
    ), output
    assert figures["server_connections_open_at_end"] == 0, output
    assert done.returncode == 0, output
