"""The benchmarks' harness: interleaved timing, medians and p90s, one side-by-side table.

A benchmark is a list of steps, functions of a :class:`Report` and the emulator, which
:func:`run` serves from a child process: in this one, its threads would compete with the
measured client for the GIL. Steps add measurements (a contender's samples, then each
baseline's median, the ratio and, where a target is set, ``PASS`` or ``MISS``) and facts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from langchain_metaso.testing import EmulatorProcess

# Tracing would add network calls to every measured call.
for _variable in ("LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING", "LANGSMITH_TRACING"):
    os.environ.pop(_variable, None)


@dataclass
class Measure:
    """Samples of one contender: seconds (``unit="s"``), bytes (``"B"``) or ``"instructions"``."""

    name: str
    samples: list[float] = field(default_factory=list)
    unit: str = "s"
    failures: int = 0  # calls whose answer failed its check

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return sorted(self.samples)[math.ceil(0.9 * len(self.samples)) - 1]

    def show(self, value: float) -> str:
        if self.unit == "B":
            return f"{value / 1e6:.2f} MB"
        if self.unit == "instructions":
            return f"{value / 1e6:.3f} M instr."
        return f"{value * 1000:.3f} ms" if value < 0.01 else f"{value * 1000:.1f} ms"


def schedule(contenders: Mapping[str, Any], warmup: int, calls: int) -> Iterator[tuple[str, Any]]:
    """``warmup`` calls of each contender (named "": not measured; connections open and
    caches warm for everyone), then ``calls`` rounds of one call each, the order rotating,
    so drift and other load on the machine spread over every contender alike."""
    for function in contenders.values():
        yield from [("", function)] * warmup
    gc.collect()
    order = list(contenders.items())
    for round_ in range(calls):
        yield from order[round_ % len(order) :] + order[: round_ % len(order)]


def _record(measures: dict[str, Measure], name: str, seconds: float, ok: bool) -> None:
    if name:
        measures[name].samples.append(seconds)
        measures[name].failures += not ok


def interleave(
    contenders: Mapping[str, Callable[[], Any]],
    check: Callable[[Any], bool],
    warmup: int,
    calls: int,
) -> dict[str, Measure]:
    """Time the contenders' calls as ``schedule`` orders them; ``check`` tells a good
    answer from a failed call."""
    measures = {name: Measure(name) for name in contenders}
    for name, function in schedule(contenders, warmup, calls):
        start = time.perf_counter()
        result = function()
        _record(measures, name, time.perf_counter() - start, check(result))
    return measures


async def ainterleave(
    contenders: Mapping[str, Callable[[], Awaitable[Any]]],
    check: Callable[[Any], bool],
    warmup: int,
    calls: int,
) -> dict[str, Measure]:
    """:func:`interleave` for coroutines, one call at a time on the running loop."""
    measures = {name: Measure(name) for name in contenders}
    for name, function in schedule(contenders, warmup, calls):
        start = time.perf_counter()
        result = await function()
        _record(measures, name, time.perf_counter() - start, check(result))
    return measures


HEAD = ["measurement", "median|value", "p90", "against", "its median", "ratio", "target", ""]


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


@dataclass
class Report:
    """The table's rows, as data (what ``--json`` writes) and as text (``render``)."""

    args: argparse.Namespace
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # printed under the table
    _lines: list[list[str]] = field(default_factory=list)

    def count(self, full: int, quick: int) -> int:
        return quick if self.args.quick else full

    def section(self, title: str) -> None:
        self.rows.append({"section": title})
        self._lines.append([title])

    def measure(self, measure: Measure, *against: tuple[Measure, float | None]) -> None:
        """``measure``, then side by side each baseline's median, the ratio and, where a
        limit is given, the target ``ratio <= limit`` (missed whenever a call failed)."""
        name = measure.name + (f" [{measure.failures} FAILED]" if measure.failures else "")
        cells = [name, measure.show(measure.median), measure.show(measure.p90)]
        row = {"name": measure.name, "unit": measure.unit, "median": measure.median}
        self.rows.append(row | {"p90": measure.p90, "failures": measure.failures, "against": []})
        if not against:
            self._lines.append([*cells, "", "", "", "", ""])
        for baseline, limit in against:
            ratio = measure.median / baseline.median
            failed = measure.failures or baseline.failures  # a fast error is no fast answer
            ok = None if limit is None else ratio <= limit and not failed
            target = "" if limit is None else f"<= {limit:g}x"
            side = [baseline.name, baseline.show(baseline.median), f"{ratio:.2f}x", target]
            self._lines.append([*cells, *side, _verdict(ok)])
            cells = ["", "", ""]
            comparison = {"name": baseline.name, "median": baseline.median, "ratio": ratio}
            self.rows[-1]["against"].append(comparison | {"verdict": _verdict(ok)})

    def fact(self, name: str, value: Any, target: str = "", ok: bool | None = None) -> None:
        """A counted outcome; ``ok`` (when given) is whether it meets ``target``."""
        self.rows.append({"name": name, "value": value, "target": target, "verdict": _verdict(ok)})
        self._lines.append([name, str(value), "", "", "", "", target, _verdict(ok)])

    def verdicts(self) -> list[str]:
        found = [row.get("verdict") for row in self.rows]
        found += [c["verdict"] for row in self.rows for c in row.get("against", ())]
        return [verdict for verdict in found if verdict]

    def render(self) -> str:
        lines = [HEAD, *self._lines]
        widths = [max(len(line[i]) for line in lines if len(line) > 1) for i in range(len(HEAD))]
        return "\n".join(
            f"\n{line[0]}"  # a section's title
            if len(line) == 1
            else "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        )


def parser(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark takes: ``--quick`` and ``--json PATH``."""
    options = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument("--quick", action="store_true", help="smaller counts, a shorter run")
    options.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    return options


Step = Callable[[Report, EmulatorProcess], None]


def run(args: argparse.Namespace, steps: Sequence[Step], **settings: Any) -> int:
    """Run ``steps`` against one emulator in a child process (``settings``: its settings)
    and print the table; the exit status is 1 when a target is missed."""
    versions = [f"{name} {metadata.version(name)}" for name in ("langchain-core", "httpx")]
    # The load average shows the other work on the machine: the rows are only as quiet.
    machine = f"Python {platform.python_version()}, {', '.join(versions)}, {os.cpu_count()} CPUs"
    print(f"{machine}, load average {os.getloadavg()[0]:.2f}", flush=True)
    report, started = Report(args), time.perf_counter()
    with EmulatorProcess(**settings) as server:
        for step in steps:
            step_start = time.perf_counter()
            step(report, server)
            print(f"  {step.__name__}: {time.perf_counter() - step_start:.1f} s", file=sys.stderr)
    verdicts, elapsed = report.verdicts(), time.perf_counter() - started
    print(report.render(), *report.notes, sep="\n")
    print(
        f"\ntargets: {verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS; "
        f"{elapsed:.1f} s; load average at the end {os.getloadavg()[0]:.2f}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            data = {"machine": machine, "rows": report.rows, "notes": report.notes}
            json.dump(data, out, ensure_ascii=False, indent=1)
    return 1 if "MISS" in verdicts else 0


def run_async(step: Callable[[Report, EmulatorProcess], Coroutine[Any, Any, None]]) -> Step:
    """A coroutine step as a plain one (on a fresh event loop), keeping its name."""

    def run(report: Report, server: EmulatorProcess) -> None:
        asyncio.run(step(report, server))

    run.__name__ = step.__name__
    return run
