"""CPU per call of the gateway's limiter against the maintained Python rate limiters, on one event loop.

Each candidate lets N calls through a tokens budget large enough never to make them wait (so the figure is the
bookkeeping, not the pacing), one call at a time, each weighing 500 tokens:

- ``datamill``: `AdaptiveLimiter` with a `Pacer` (requests and tokens buckets): acquire, then release with the
  call's usage and a reply's rate-limit reading, as the gateway does;
- ``datamill_unpaced``: the same limiter with no budget (the fast path of a model without one);
- ``aiolimiter``: ``AsyncLimiter.acquire(500)`` (no way to give back or settle);
- ``pyrate_limiter``: ``Limiter.try_acquire_async(weight=500)`` on an in-memory bucket.

A library that is not installed is skipped. Usage::

    python -m bench.limiter_overhead [--calls 20000]

Writes ``bench/results/limiter_overhead.json`` and prints a Markdown table. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "limiter_overhead.json"
WEIGHT = 500
BUDGET = 10**12  # tokens a minute: never binding


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU per call of rate limiters.")
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for name, make in CANDIDATES.items():
        try:
            run = make()
        except ImportError:
            continue
        results[name] = asyncio.run(_measure(run, args.calls))
    out = {
        "benchmark": "limiter_overhead",
        "run_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "params": {"calls": args.calls, "weight": WEIGHT},
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "candidates": results,
    }
    lines = ["| limiter | CPU µs per call |", "|---|---|"]
    lines += [f"| {name} | {r['cpu_us_per_call']:.1f} |" for name, r in results.items()]
    out["summary_md"] = "\n".join(lines)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(out["summary_md"])
    return 0


async def _measure(make_call: Callable[[], Callable[[], Awaitable[None]]], calls: int) -> dict[str, float]:
    call = make_call()
    for _ in range(200):  # warm up
        await call()
    start = time.process_time()
    for _ in range(calls):
        await call()
    cpu = time.process_time() - start
    return {"cpu_us_per_call": 1e6 * cpu / calls}


def _datamill(paced: bool) -> Callable[[], Callable[[], Awaitable[None]]]:
    from datamill.llm.limits.concurrency import AdaptiveLimiter
    from datamill.llm.limits.pacing import Pacer
    from datamill.llm.types import BudgetReading, ChatRequest, Message, RateLimits, Usage

    request = ChatRequest((Message("user", "x" * 1200),), max_tokens=200)
    usage = Usage(300, 200)
    reading = RateLimits(BudgetReading(10**9, 10**9, 0.001), BudgetReading(10**12, BUDGET, 0.001))

    def make() -> Callable[[], Awaitable[None]]:
        now = asyncio.get_running_loop().time()
        pacer = Pacer(tokens_per_minute=BUDGET, requests_per_minute=10**9, now=now) if paced else None
        limiter = AdaptiveLimiter(64, pacer=pacer)

        async def call() -> None:
            ticket = await limiter.acquire(request)
            limiter.release_ok(ticket, usage, reading if paced else None)

        return call

    return make


def _aiolimiter() -> Callable[[], Callable[[], Awaitable[None]]]:
    from aiolimiter import AsyncLimiter

    def make() -> Callable[[], Awaitable[None]]:
        limiter = AsyncLimiter(BUDGET, 60)

        async def call() -> None:
            await limiter.acquire(WEIGHT)

        return call

    return make


def _pyrate_limiter() -> Callable[[], Callable[[], Awaitable[None]]]:
    from pyrate_limiter import Duration, Limiter, Rate

    def make() -> Callable[[], Awaitable[None]]:
        limiter = Limiter(Rate(BUDGET, Duration.MINUTE))

        async def call() -> None:
            await limiter.try_acquire_async("model", weight=WEIGHT)

        return call

    return make


CANDIDATES: dict[str, Callable[[], Callable[[], Callable[[], Awaitable[None]]]]] = {
    "datamill": lambda: _datamill(True),
    "datamill_unpaced": lambda: _datamill(False),
    "aiolimiter": _aiolimiter,
    "pyrate_limiter": _pyrate_limiter,
}


if __name__ == "__main__":
    sys.exit(main())
