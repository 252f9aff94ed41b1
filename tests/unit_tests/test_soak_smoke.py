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
    output = done.stdout + done.stderr
    rows = json.loads(figures_path.read_text(encoding="utf-8"))["rows"]
    figures: dict[str, Any] = {row["name"].strip(): row["value"] for row in rows if "value" in row}

    assert figures["calls"] == 1000, output
    assert figures["accounted for"] == 1000, output
    assert figures["unhandled exceptions"] == 0, output
    assert figures["answers to another query"] == 0, output
    assert figures["successes"] + figures["typed errors"] == figures["calls"], output
    assert figures["successes"] > 0, output
    assert figures["typed errors"] > 0, output  # the faults did reach the callers
    assert figures["faults injected"] > 0, output
    assert figures["open fds after they closed"] <= figures["open fds before the clients"], output
    assert figures["sockets after closing"] <= figures["sockets before the clients"], output
    assert figures["sockets in use before closing"] <= figures["pools' size (connections)"], output
    assert figures["server: connections open at the end"] == 0, output
    assert done.returncode == 0, output
