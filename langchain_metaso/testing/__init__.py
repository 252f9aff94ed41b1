"""An offline emulator of the Metaso (秘塔) search API, for tests and benchmarks.

It needs only the standard library, httpx and the package's scope table
(``langchain_metaso.scopes``, itself standard library only)::

    emu = MetasoEmulator(api_key="test-key")
    client = httpx.Client(transport=emu.transport(), base_url="http://metaso.test/api/v1")
    with emu.serve() as base_url:  # the same behaviour over a real socket
        ...
    with EmulatorProcess(api_key="test-key") as served:  # a socket, from a child process
        served.url
"""

from ._emulator import EmulatorStats, MetasoEmulator, RecordedRequest
from ._faults import Fault
from ._process import EmulatorProcess
from ._seed import SEED_QUERY, load_seed_response
from ._transport import EmulatorTransport

__all__ = [
    "SEED_QUERY",
    "EmulatorProcess",
    "EmulatorStats",
    "EmulatorTransport",
    "Fault",
    "MetasoEmulator",
    "RecordedRequest",
    "load_seed_response",
]
