"""The fake OpenAI-compatible server as a separate process that reports how many calls it answered.

``datamill.llm.fake_server``'s CLI serves until killed and keeps its counters to itself; the side-by-side
benchmark needs the calls each tool really sent (a tool that retries or skips rows shows here), so this
wrapper prints ``{"calls": ..., "statuses": ..., "max_in_flight": ...}`` as one JSON line on SIGTERM.
It runs with whichever interpreter has datamill (the project venv), never the peers' venv.

    python -m bench.compare_server --port 8711 --latency 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from datamill.llm.fake_server import FakeOpenAIServer

# Long enough that every tool parses it as a real answer, short enough to cost nothing to send.
REPLY = "A rewritten text that keeps the meaning of the original and reads naturally."


async def _serve(port: int, latency: float) -> None:
    server = FakeOpenAIServer(latency_s=latency, reply=REPLY, record=False, port=port)
    await server.start()
    print(f"listening on {server.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    stats = {
        "calls": server.count,
        "statuses": {str(k): v for k, v in server.statuses.items()},
        "max_in_flight": server.max_in_flight,
    }
    print(json.dumps(stats), flush=True)
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve on loopback until SIGTERM, then print the counters as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.5)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.latency))


if __name__ == "__main__":
    main()
