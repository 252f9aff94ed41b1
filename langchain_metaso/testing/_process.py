"""The emulator in a child process, driven over the child's stdin and stdout.

A server in the measuring process would have its handler threads compete with the measured
client for the GIL (and Python's 5 ms switch interval shows up as client latency); in its
own process it costs the client nothing. Commands travel as one JSON object a line, so
configuring the emulator or reading its statistics opens no connection and counts no request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, fields
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from ._emulator import EmulatorStats, MetasoEmulator
from ._faults import Fault

# Settings ``set`` may change: the emulator's constructor arguments.
_SETTINGS = frozenset(f.name for f in fields(MetasoEmulator) if f.init)
# Those whose JSON form is text: back to what the emulator holds.
_DECODE: dict[str, Callable[[Any], Any]] = {
    "fixed_answers": lambda answers: {path: text.encode() for path, text in answers.items()},
    "today": date.fromisoformat,
}


def _encode(value: object) -> str:
    """JSON for what has no JSON form: bytes as UTF-8 text, dates in ISO form."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be sent to the emulator process")


def run_command(emulator: MetasoEmulator, line: str) -> dict[str, Any]:
    """Apply one command line to ``emulator``; the reply is its statistics, or an error.

    A command is a JSON object with any of, applied in this order: ``"reset": true``;
    ``"set": {setting: value}`` (``fixed_answers`` values as text, ``today`` in ISO form);
    ``"script": [{"fault": "status", "code": 503}, ...]`` (each calls that ``Fault``
    constructor with the other keys). ``{}`` only reads the statistics.
    """
    try:
        command = json.loads(line)
        if command.get("reset"):
            emulator.reset()
        for name, value in command.get("set", {}).items():
            if name not in _SETTINGS:
                raise ValueError(f"unknown setting {name!r}; expected one of {sorted(_SETTINGS)}")
            setattr(emulator, name, _DECODE.get(name, lambda same: same)(value))
        emulator.script(*(_fault(dict(spec)) for spec in command.get("script", ())))
    except (ValueError, TypeError, AttributeError) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    # Nobody reads recorded requests across the pipe; a long run would grow them without bound.
    emulator.requests.clear()
    return asdict(emulator.stats)


def _fault(spec: dict[str, Any]) -> Fault:
    name = spec.pop("fault")
    if name.startswith("_") or not isinstance(getattr(Fault, name, None), types.MethodType):
        raise ValueError(f"no Fault constructor {name!r}")
    fault: Fault = getattr(Fault, name)(**spec)
    return fault


def control(emulator: MetasoEmulator, lines: Iterable[str], out: TextIO) -> None:
    """Answer each command line with one JSON line, until the lines end."""
    for line in lines:
        print(json.dumps(run_command(emulator, line), ensure_ascii=False), file=out, flush=True)


class EmulatorProcess:
    """A :class:`MetasoEmulator` served over HTTP from a child process.

    ``python -m langchain_metaso.testing serve`` runs in the child (with this process's copy
    of the package) and stops when this object closes, or after ``max_seconds`` whatever
    happens::

        with EmulatorProcess(api_key="test-key", latency=0.02) as emu:
            tool = MetasoSearchTool(metaso_api_key="test-key", base_url=emu.url)
            emu.set(max_in_flight=16)
            emu.stats.requests

    Settings are the emulator's constructor arguments; faults are scripted as mappings
    naming a ``Fault`` constructor: ``emu.script({"fault": "status", "code": 503})``.
    """

    def __init__(self, *, max_seconds: float = 900, **settings: Any) -> None:
        # The child imports the package from where this process did.
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))
        command = [sys.executable, "-m", "langchain_metaso.testing", "serve"]
        # The command is this interpreter and fixed arguments: no outside input.
        self._process = subprocess.Popen(  # noqa: S603
            [*command, "--max-seconds", str(max_seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env={**os.environ, "PYTHONPATH": path},
        )
        try:
            self.url: str = self._read_line()
            if settings:
                self.set(**settings)
        except BaseException:
            self.close()
            raise

    def set(self, **settings: Any) -> EmulatorStats:
        """Change settings; the statistics after the change."""
        return self._send({"set": settings})

    def reset(self) -> EmulatorStats:
        """Forget pending faults and totals, as ``MetasoEmulator.reset``."""
        return self._send({"reset": True})

    def script(self, *faults: Mapping[str, Any]) -> EmulatorStats:
        """Queue faults, each ``{"fault": constructor name, **its arguments}``."""
        return self._send({"script": list(faults)})

    @property
    def stats(self) -> EmulatorStats:
        """The emulator's statistics now."""
        return self._send({})

    def close(self) -> None:
        """Stop the child: closing its stdin ends it; killed if it does not end in 10 s."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, command: dict[str, Any]) -> EmulatorStats:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command, ensure_ascii=False, default=_encode) + "\n")
        self._process.stdin.flush()
        reply = json.loads(self._read_line())
        if "error" in reply:
            # Not the command itself: it may hold the emulator's key.
            raise ValueError(f"the emulator process refused a command: {reply['error']}")
        return EmulatorStats(**reply)

    def _read_line(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"the emulator process ended (exit status {self._process.poll()}); "
                "its error, if any, is on this process's stderr"
            )
        return line.strip()
