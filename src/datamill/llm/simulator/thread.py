"""The simulator on an event loop of its own thread, for code that blocks (a CLI run, a synchronous test)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from datamill.llm.simulator.server import ProviderSimulator


@contextmanager
def serve_in_thread(**options: Any) -> Iterator[ProviderSimulator]:
    """A started `ProviderSimulator` (built with ``options``), serving from a daemon thread until the end.

    Its settings (``set``, ``set_rates``) may be changed from the caller's thread between requests.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="provider-simulator", daemon=True)
    thread.start()
    simulator = ProviderSimulator(**options)
    try:
        asyncio.run_coroutine_threadsafe(simulator.start(), loop).result(30)
        yield simulator
    finally:
        asyncio.run_coroutine_threadsafe(simulator.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
