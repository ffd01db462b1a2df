"""The simulator from a shell, for benchmarks that run it in its own process.

``python -m datamill.llm.simulator --port 8710 --rate refusal_text=0.02 --rate truncation=0.01 --tpm 200000``

Rates can be changed while it runs (``PUT /_sim/behaviours`` with ``{"rates": {...}}``); ``GET /_sim/log`` and
``GET /_sim/stats`` report what it received; ``--log-file`` also appends every request to a JSON-lines file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from datamill.llm import event_loop
from datamill.llm.simulator.behaviours import BEHAVIOURS
from datamill.llm.simulator.server import FAMILIES, ProviderSimulator


def _rate(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or name not in BEHAVIOURS:
        raise argparse.ArgumentTypeError(f"expected NAME=RATE with NAME one of {', '.join(BEHAVIOURS)}")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the rate of {name} must be a number, not {value!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m datamill.llm.simulator",
        description="Loopback server speaking the OpenAI, Anthropic and Gemini APIs, with quirks.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8710)
    p.add_argument("--rate", type=_rate, action="append", default=[], metavar="NAME=RATE", help="repeatable")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    p.add_argument("--slow-first-byte", type=float, default=1.0, help="delay of slow_first_byte, seconds")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of rate_limit, seconds")
    p.add_argument("--tpm", type=int, default=None, help="tokens-per-minute budget")
    p.add_argument("--rpm", type=int, default=None, help="requests-per-minute budget")
    p.add_argument(
        "--window", type=float, default=60.0, help="the budgets' window in seconds (60: a real minute)"
    )
    p.add_argument("--count-rejected", action="store_true", help="a 429 counts against the request budget")
    p.add_argument("--batch-delay", type=float, default=0.0, help="seconds until a batch ends")
    p.add_argument("--log-file", default=None, help="append each request to this JSON-lines file")
    return p


def main(argv: list[str] | None = None) -> None:
    """Serve until killed (Ctrl-C)."""
    args = parser().parse_args(argv)
    simulator = ProviderSimulator(
        rates=dict(args.rate),
        seed=args.seed,
        latency_s=args.latency,
        slow_first_byte_s=args.slow_first_byte,
        retry_after_s=args.retry_after,
        tokens_per_minute=args.tpm,
        requests_per_minute=args.rpm,
        window_s=args.window,
        count_rejected=args.count_rejected,
        batch_delay_s=args.batch_delay,
        log_file=args.log_file,
        host=args.host,
        port=args.port,
    )
    with contextlib.suppress(KeyboardInterrupt):
        event_loop.run(_serve(simulator))


async def _serve(simulator: ProviderSimulator) -> None:
    await simulator.start()
    families = ", ".join(f"{name}/*" for name in FAMILIES.values())
    print(
        f"provider simulator on {simulator.base_url} (OpenAI: {simulator.openai_url}; {families})",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()
