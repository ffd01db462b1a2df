"""Gateway throughput against a fake OpenAI-compatible server running in a separate process.

For an API-bound pipeline the bound is C/L: concurrency over latency (512 calls/s at C=256, L=0.5 s). This
runs N calls through a `Gateway` (route max_concurrency C, real HTTP on loopback) and reports calls/s, the
ratio to C/L, client CPU per call (getrusage of the client process) and its peak RSS, for:

- ``sqlite_cache``: the realistic setup, every call a miss written to a SQLite response cache; the caller
  starts all N calls at once (``asyncio.gather``) and the gateway's limiter queues them;
- ``sqlite_cache_bounded_caller``: the same, but the caller runs C workers that each make one call at a time
  (how a pipeline step working through row batches behaves);
- ``no_cache``: ``sqlite_cache`` without a cache;
- ``cache_hits``: the ``sqlite_cache`` requests again on the filled cache (no HTTP at all);
- ``rate_limited``: a server that answers 429 (with ``Retry-After``) above 200 requests in flight, C=256;
  the bound there is 200/L.

The fake server stands for a self-hosted server: no per-minute budget, so the route sets
``initial_concurrency`` to C (no slow start), as the shipped ``vllm/*`` route does;
``--initial-concurrency 0`` leaves it out, and the first round trip then sends 32 calls.

The client runs on the event loop datamill's entry points choose (``--loop auto``: uvloop where it is
installed, `datamill.llm.event_loop`); ``--loop asyncio`` measures the standard loop.

Each scenario runs in its own client process, so CPU and peak RSS are its own; with ``--repeats 3`` each runs
three times and the run with the median calls/s is reported. Usage::

    python -m bench.gateway_throughput [--calls 10240] [--concurrency 256] [--latency 0.5] [--repeats 3]

Writes ``bench/results/gateway_throughput.json`` and prints a Markdown summary. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._support import cpu_s, fake_server, median_run, process_cpu_s, write_result

RESULTS = Path(__file__).parent / "results" / "gateway_throughput.json"
MODEL = "bench/model"
ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("sqlite_cache", "sqlite_cache_bounded_caller", "no_cache", "cache_hits")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        from datamill.llm.event_loop import run

        print(json.dumps(run(_child(args), args.loop)))
        return 0
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()
    scenarios: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with fake_server(args.latency) as (base_url, pid):
            for name in SCENARIOS:
                scenarios[name] = _median(args, name, base_url, pid, Path(tmp), slots=args.concurrency)
        if not args.skip_429:
            cap = args.server_max_concurrent
            with fake_server(args.latency, max_concurrent=cap, retry_after=args.retry_after) as (
                base_url,
                pid,
            ):
                slots = min(args.concurrency, cap)
                scenarios["rate_limited"] = _median(
                    args, "rate_limited", base_url, pid, Path(tmp), slots=slots
                )
    result = {
        "benchmark": "gateway_throughput",
        "run_at": started,
        "params": {
            "calls": args.calls,
            "concurrency": args.concurrency,
            "initial_concurrency": _initial(args),
            "loop": _loop_name(args.loop),
            "latency_s": args.latency,
            "server_max_concurrent_429": args.server_max_concurrent,
            "retry_after_s": args.retry_after,
            "repeats": args.repeats,
        },
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "scenarios": scenarios,
    }
    write_result(RESULTS, result, _markdown)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Gateway throughput against a fake OpenAI server.")
    # A multiple of 256 (40 round trips at C=256), so the bound C/L is reachable without a partial last round.
    parser.add_argument("--calls", type=int, default=10240)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=1, help="runs per scenario; the median is reported")
    parser.add_argument(
        "--initial-concurrency",
        type=int,
        default=None,
        help="the route's initial_concurrency (default: the concurrency; 0: not set, slow start)",
    )
    parser.add_argument("--server-max-concurrent", type=int, default=200, help="429 scenario: server cap")
    parser.add_argument("--retry-after", type=float, default=1.0, help="429 scenario: Retry-After seconds")
    parser.add_argument("--skip-429", action="store_true")
    # Internal: run one scenario in this process and print its JSON.
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="client event loop (auto: uvloop where installed, as datamill's entry points choose)",
    )
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--cache-path", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _loop_name(choice: str) -> str:
    """The event loop a choice gives on this machine."""
    from datamill.llm.event_loop import loop_factory

    return "asyncio" if loop_factory(choice) is None else "uvloop"


def _initial(args: argparse.Namespace) -> int | None:
    """The route's ``initial_concurrency``, or None to leave it out."""
    if args.initial_concurrency is None:
        return int(args.concurrency)
    return int(args.initial_concurrency) or None


def _median(
    args: argparse.Namespace, name: str, base_url: str, pid: int, tmp: Path, *, slots: int
) -> dict[str, Any]:
    """Run a scenario ``--repeats`` times: the run with the median calls/s, plus every run's calls/s."""
    runs = []
    for i in range(max(1, args.repeats)):
        cache = ""
        if name.startswith("sqlite_cache"):
            cache = str(tmp / f"{name}-{i}.sqlite")  # a fresh file: every call a miss
        elif name == "cache_hits":
            cache = str(tmp / "sqlite_cache-0.sqlite")  # filled by the first sqlite_cache run
        runs.append(_scenario(args, name, base_url, pid, cache, slots=slots))
    chosen = median_run(runs, "calls_per_s")
    chosen["all_runs_calls_per_s"] = sorted(round(r["calls_per_s"], 1) for r in runs)
    return chosen


def _scenario(
    args: argparse.Namespace, name: str, base_url: str, server_pid: int, cache_path: str, *, slots: int
) -> dict[str, Any]:
    """One client process for one scenario; adds the bound and the server's CPU."""
    server_cpu_before = process_cpu_s(server_pid)
    cmd = [sys.executable, "-m", "bench.gateway_throughput", "--child", name, "--base-url", base_url]
    cmd += [
        "--calls",
        str(args.calls),
        "--concurrency",
        str(args.concurrency),
        "--latency",
        str(args.latency),
    ]
    cmd += ["--cache-path", cache_path, "--loop", args.loop]
    cmd += ["--initial-concurrency", str(_initial(args) or 0)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    server_cpu = process_cpu_s(server_pid) - server_cpu_before
    hits_only = name == "cache_hits"
    bound = slots / args.latency
    # With `slots` calls in flight, each taking L, N calls need at least ceil(N / slots) * L seconds.
    best = args.calls / (math.ceil(args.calls / slots) * args.latency)
    data["bound_calls_per_s"] = bound
    data["ratio_to_bound"] = None if hits_only else data["calls_per_s"] / bound
    data["ratio_to_best_possible"] = None if hits_only else data["calls_per_s"] / best
    data["server_cpu_ms_per_call"] = 1000 * server_cpu / args.calls if server_cpu >= 0 else None
    print(f"  {name}: {data['calls_per_s']:.0f} calls/s", file=sys.stderr, flush=True)
    return data


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    from datamill.llm.cache import SqliteResponseCache
    from datamill.llm.gateway import Gateway
    from datamill.llm.retry import RetryPolicy
    from datamill.llm.routing import Routing
    from datamill.llm.types import ChatRequest, Message

    route = {
        "provider": "openai",
        "base_url": args.base_url,
        "max_concurrency": args.concurrency,
        "timeout_s": 60,
        "input_price": 0.5,
        "output_price": 1.5,
    }
    if _initial(args):
        route["initial_concurrency"] = _initial(args)
    routing = Routing.from_dict({"routes": {"bench/*": route}})
    cache = SqliteResponseCache(args.cache_path) if args.cache_path else None
    requests = [
        ChatRequest(
            (Message("system", "Rewrite the user's text."), Message("user", f"row {i}: the quick fox"))
        )
        for i in range(args.calls)
    ]
    async with Gateway(routing, cache=cache, retry=RetryPolicy(max_rate_limit_retries=10_000)) as gateway:
        cpu_before, started = cpu_s(), time.perf_counter()
        if args.child.endswith("bounded_caller"):
            results = await _bounded(gateway, requests, args.concurrency)
        else:
            results = await asyncio.gather(*(gateway.chat(MODEL, r, tag="bench") for r in requests))
        wall, cpu = time.perf_counter() - started, cpu_s() - cpu_before
        limiter = gateway.limiter(MODEL)
        totals = gateway.usage.total
    return {
        "scenario": args.child,
        "calls": len(results),
        "wall_s": wall,
        "calls_per_s": len(results) / wall,
        "client_cpu_ms_per_call": 1000 * cpu / len(results),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cache_hits": totals.cache_hits,
        "rate_limited_429s": limiter.rate_limited,
        "limiter_decreases": limiter.decreases,
        "limiter_final_limit": limiter.limit,
    }


async def _bounded(gateway: Any, requests: list[Any], workers: int) -> list[Any]:
    """``workers`` coroutines, each making one call at a time until the requests run out."""
    pending = iter(requests)
    results: list[Any] = []

    async def worker() -> None:
        for request in pending:
            results.append(await gateway.chat(MODEL, request, tag="bench"))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return results


def _markdown(result: dict[str, Any]) -> str:
    p, machine = result["params"], result["machine"]
    lines = [
        f"Gateway throughput: {p['calls']} calls, C={p['concurrency']}, L={p['latency_s']} s, "
        f"initial_concurrency {p.get('initial_concurrency') or 'not set'}, {p.get('loop', 'asyncio')} event "
        "loop in the client, fake OpenAI "
        f"server in a separate process; {machine['cpus']} CPUs, load average before "
        f"{machine['loadavg_before'][0]:.2f}; median of {p['repeats']} run(s) per scenario.",
        "",
        "| scenario | calls/s | bound | ratio to bound | ratio to best for N | client CPU ms/call "
        "| server CPU ms/call | peak RSS MB | 429s | final limit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in result["scenarios"].items():
        lines.append(
            f"| {name} | {s['calls_per_s']:.0f} | {s['bound_calls_per_s']:.0f} | {_fmt(s['ratio_to_bound'])} "
            f"| {_fmt(s['ratio_to_best_possible'])} | {s['client_cpu_ms_per_call']:.3f} "
            f"| {_fmt(s['server_cpu_ms_per_call'])} | {s['peak_rss_mb']:.0f} | {s['rate_limited_429s']} "
            f"| {s['limiter_final_limit']} |"
        )
    lines += [
        "",
        "Bound: C/L (rate_limited: min(C, server cap)/L). Best for N: N / (ceil(N/C) * L), the most N calls",
        "can reach when each takes L. cache_hits replays the sqlite_cache requests on the filled cache.",
    ]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
