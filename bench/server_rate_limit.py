"""What the server's rate limit costs per request, by storage: in memory, or in the metadata database.

Each storage counts N requests of one key through `datamill.server.ratelimit.RateLimiter` (the fixed-window
strategy of `limits`), one at a time, with a limit that never binds, so the figure is the counting alone:

- ``memory``: `limits`' in-memory storage (each API process counts on its own);
- ``database``: `datamill.store.ratelimit_storage.DatabaseStorage` on a SQLite file (one upsert a request;
  every API process on the database counts together). PostgreSQL adds a network round trip.

Usage::

    python -m bench.server_rate_limit [--requests 5000]

Writes ``bench/results/server_rate_limit.json`` and prints a Markdown table. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._support import write_result
from datamill.server.ratelimit import RateLimiter
from datamill.store import Store
from datamill.store.ratelimit_storage import DatabaseStorage

RESULTS = Path(__file__).parent / "results" / "server_rate_limit.json"


def _measure(limiter: RateLimiter, requests: int) -> dict[str, float]:
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        limiter.acquire("key_1")
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    return {"us_per_request": wall / requests * 1e6, "cpu_us_per_request": used / requests * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cost per request of the server's rate limit.")
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args(argv)
    never = 10**9
    results: dict[str, Any] = {"memory": _measure(RateLimiter(never), args.requests)}
    with tempfile.TemporaryDirectory() as folder:
        store = Store.from_url(f"sqlite:///{folder}/bench.db")
        store.migrate()
        limiter = RateLimiter(never, storage=DatabaseStorage(store))
        results["database (SQLite)"] = _measure(limiter, args.requests)
        store.close()
    out = {"benchmark": "server_rate_limit", "params": {"requests": args.requests}, "results": results}
    write_result(RESULTS, out, _markdown)
    return 0


def _markdown(result: dict[str, Any]) -> str:
    lines = ["| storage | µs per request | CPU µs per request |", "|---|---:|---:|"]
    for name, row in result["results"].items():
        lines.append(f"| {name} | {row['us_per_request']:.1f} | {row['cpu_us_per_request']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
