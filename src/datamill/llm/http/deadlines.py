"""Request deadlines for the HTTP transport: one sweeping timer instead of a timer per request.

``asyncio.timeout`` arms and cancels a timer per request; at hundreds of requests in flight the event loop's
timer heap fills with cancelled timers and the cost shows (about 4 µs a request plus heap upkeep, measured in
``bench/pipeline_throughput.py`` profiles). Here a request registers its connection and deadline in a dict,
and one timer, armed only while requests are in flight, fails the connections whose deadline has passed every
`SWEEP_S` seconds: a request times out between its deadline and `SWEEP_S` later.
"""

from __future__ import annotations

import asyncio

from datamill.llm.http.http1 import Http1Connection

#: How often in-flight requests are checked against their deadlines, in seconds.
SWEEP_S = 0.05


class Deadlines:
    """The deadlines of the requests in flight on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._due: dict[Http1Connection, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, conn: Http1Connection, deadline: float) -> None:
        """Fail ``conn``'s request with TimeoutError if it is still running at ``deadline`` (loop time)."""
        self._due[conn] = deadline
        if self._timer is None:
            self._timer = self.loop.call_later(SWEEP_S, self._sweep)

    def done(self, conn: Http1Connection) -> None:
        self._due.pop(conn, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due.clear()

    def _sweep(self) -> None:
        now = self.loop.time()
        late = [conn for conn, deadline in self._due.items() if deadline <= now]
        for conn in late:
            del self._due[conn]
            conn.expire()
        self._timer = self.loop.call_later(SWEEP_S, self._sweep) if self._due else None
