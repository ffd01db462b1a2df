"""Pacing to a provider's per-minute budgets: token throughput and 429s against the provider simulator.

The simulator (``python -m datamill.llm.simulator``, in its own process) enforces a tokens-per-minute and a
requests-per-minute budget over a sliding window, counts each request's prompt tokens plus its answer cap
against the tokens budget (as OpenAI does), counts refused requests against the requests budget
(``--count-rejected``, as OpenAI documents), and sends OpenAI's rate-limit headers. The gateway's route
declares the same budgets. Each scenario makes calls of varied prompt lengths at concurrency C (the route's
``max_concurrency``; the caller starts every call at once) and reports:

- token throughput: the budget tokens (prompt + cap) of the calls answered, per second, over the run;
  divided by the budget's rate it is the share of the budget used;
- the share of requests answered 429, from the simulator's own count.

A last scenario (``retry_after``) measures what one 429 costs the other calls: no budget, but 1% of requests
answered 429 with ``Retry-After: 20`` (real seconds, not scaled). The calls that were refused wait their 20 s;
the others should finish as if nothing happened. It reports when the last call that was never refused
finished, against the same calls with no 429 at all.

**Time is scaled**: the budgets' window is ``--window`` seconds (default 6) instead of a minute, and the
latency is scaled alike, so ten windows take a minute. The route declares the budgets per real minute (the
simulator's budget times 60 / window), which is what the simulator enforces in real time. Usage::

    python -m bench.token_limits [--concurrency 32 256] [--windows 10] [--window 6] [--latency 0.2]

Writes ``bench/results/token_limits.json`` and prints a Markdown summary. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench._support import free_port, write_result

RESULTS = Path(__file__).parent / "results" / "token_limits.json"
MODEL = "sim-openai/bench"
CAP = 200  # answer cap of every call (counted against the tokens budget, whatever the answer uses)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()
    scenarios = {} if args.only_retry_after else {f"C={c}": _scenario(args, c) for c in args.concurrency}
    if not args.skip_retry_after:
        scenarios["retry_after"] = _retry_after(args)
    result = {
        "benchmark": "token_limits",
        "run_at": started,
        "params": {
            "tokens_per_window": args.tpm,
            "requests_per_window": args.rpm,
            "window_s": args.window,
            "windows": args.windows,
            "latency_s": args.latency,
            "answer_cap": CAP,
        },
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "scenarios": scenarios,
    }
    write_result(RESULTS, result, _markdown)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Token and request budgets against the provider simulator.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--tpm", type=int, default=200_000, help="tokens budget per window")
    parser.add_argument("--rpm", type=int, default=600, help="requests budget per window")
    parser.add_argument("--window", type=float, default=6.0, help="the budgets' window in seconds")
    parser.add_argument("--windows", type=float, default=10.0, help="run length in windows (sets the calls)")
    parser.add_argument("--latency", type=float, default=0.2, help="simulator latency in seconds")
    parser.add_argument("--skip-retry-after", action="store_true", help="skip the 1%% 429 scenario")
    parser.add_argument("--only-retry-after", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _scenario(args: argparse.Namespace, concurrency: int) -> dict[str, Any]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "datamill.llm.simulator",
        "--port",
        str(port),
        "--latency",
        str(args.latency),
    ]
    cmd += ["--tpm", str(args.tpm), "--rpm", str(args.rpm), "--window", str(args.window), "--count-rejected"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, proc)
        data = asyncio.run(_client(args, base, concurrency))
        stats = json.loads(urllib.request.urlopen(base + "/_sim/stats", timeout=30).read())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    statuses = {int(k): v for k, v in stats["statuses"].items()}
    total = sum(statuses.values())
    budget_rate = args.tpm / args.window
    data["sim_requests"] = total
    data["sim_429s"] = statuses.get(429, 0)
    data["share_429"] = statuses.get(429, 0) / total if total else 0.0
    data["budget_tokens_per_s"] = budget_rate
    data["share_of_token_budget"] = data["tokens_per_s"] / budget_rate
    data["share_of_request_budget"] = data["calls_per_s"] / (args.rpm / args.window)
    print(
        f"  C={concurrency}: {data['share_of_token_budget']:.3f} of the budget", file=sys.stderr, flush=True
    )
    return data


async def _client(args: argparse.Namespace, base: str, concurrency: int) -> dict[str, Any]:
    from datamill.llm.gateway import Gateway
    from datamill.llm.retry import RetryPolicy
    from datamill.llm.routing import Routing
    from datamill.llm.types import ChatRequest, Message

    per_minute = 60.0 / args.window
    route = {
        "provider": "openai",
        "base_url": base + "/v1",
        "api_key_env": None,
        "max_concurrency": concurrency,
        "timeout_s": 60,
        "tokens_per_minute": int(args.tpm * per_minute),
        "requests_per_minute": int(args.rpm * per_minute),
    }
    routing = Routing.from_dict({"routes": {"sim-openai/*": route}})
    rng = random.Random(7)
    # Prompts of 100 to 600 tokens (the simulator counts four characters a token): 550 budget tokens a call
    # on average with the cap, so the tokens budget binds before the requests budget (333 a call).
    expected_calls = int(args.tpm * args.windows / (350 + CAP))
    requests = [
        ChatRequest((Message("user", f"row {i} " + "word " * rng.randint(80, 480)),), max_tokens=CAP)
        for i in range(expected_calls)
    ]
    async with Gateway(routing, retry=RetryPolicy(max_rate_limit_retries=10_000)) as gateway:
        started = time.perf_counter()
        results = await asyncio.gather(*(gateway.chat(MODEL, r, tag="bench") for r in requests))
        wall = time.perf_counter() - started
        limiter = gateway.limiter(MODEL)
    budget_tokens = sum(r.usage.input_tokens + CAP for r in results)
    return {
        "concurrency": concurrency,
        "calls": len(results),
        "wall_s": wall,
        "calls_per_s": len(results) / wall,
        "tokens_per_s": budget_tokens / wall,
        "client_429s": limiter.rate_limited,
        "limiter_pauses": limiter.pauses,
    }


def _retry_after(args: argparse.Namespace) -> dict[str, Any]:
    """5,000 calls at C=256 with no 429, then with 1% of them refused with ``Retry-After: 20``."""
    out: dict[str, Any] = {}
    for rate in (0.0, 0.01):
        port = free_port()
        cmd = [sys.executable, "-m", "datamill.llm.simulator", "--port", str(port)]
        cmd += [
            "--latency",
            str(args.latency),
            "--rate",
            f"rate_limit={rate}",
            "--retry-after",
            "20",
            "--seed",
            "3",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_up(base, proc)
            out["clean" if rate == 0 else "one_percent_429"] = asyncio.run(_finish_times(base))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    clean, hit = out["clean"], out["one_percent_429"]
    out["slowdown_of_calls_never_refused"] = hit["last_unrefused_s"] / clean["last_unrefused_s"]
    print(f"  retry_after: x{out['slowdown_of_calls_never_refused']:.2f} for the others", file=sys.stderr)
    return out


async def _finish_times(base: str) -> dict[str, Any]:
    from datamill.llm.gateway import Gateway
    from datamill.llm.routing import Routing
    from datamill.llm.types import ChatRequest, Message

    route = {"provider": "openai", "base_url": base + "/v1", "api_key_env": None, "max_concurrency": 256}
    routing = Routing.from_dict({"routes": {"sim-openai/*": route}})
    finished: list[tuple[float, float]] = []
    async with Gateway(routing) as gateway:
        started = time.perf_counter()

        async def call(i: int) -> None:
            result = await gateway.chat(MODEL, ChatRequest((Message("user", f"row {i}"),), max_tokens=50))
            finished.append((time.perf_counter() - started, result.latency_s))

        await asyncio.gather(*(call(i) for i in range(5000)))
        limiter = gateway.limiter(MODEL)
    unrefused = [at for at, latency in finished if latency < 20]
    return {
        "calls": len(finished),
        "refused_calls": len(finished) - len(unrefused),
        "wall_s": max(at for at, _ in finished),
        "last_unrefused_s": max(unrefused),
        "limiter_pauses": limiter.pauses,
    }


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/_sim/stats", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"simulator at {base} did not answer within 60 s")


def _markdown(result: dict[str, Any]) -> str:
    p = result["params"]
    lines = [
        f"Token limits: simulator budget {p['tokens_per_window']:,} tokens and "
        f"{p['requests_per_window']} requests per {p['window_s']:g}-s window (a scaled minute), "
        f"latency {p['latency_s']} s, {p['windows']:g} windows of calls; 429s count against the requests "
        "budget; the route declares the budgets.",
        "",
        "| scenario | calls | wall s | share of token budget | share of request budget | 429s | share 429 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in result["scenarios"].items():
        if name == "retry_after":
            continue
        lines.append(
            f"| {name} | {s['calls']} | {s['wall_s']:.1f} | {s['share_of_token_budget']:.3f} "
            f"| {s['share_of_request_budget']:.3f} | {s['sim_429s']} | {s['share_429']:.4f} |"
        )
    retry = result["scenarios"].get("retry_after")
    if retry:
        clean, hit = retry["clean"], retry["one_percent_429"]
        unrefused = hit["calls"] - hit["refused_calls"]
        lines += [
            "",
            f"1% of 5,000 calls answered 429 with Retry-After 20 s (C=256, no budget): the {unrefused} "
            f"calls never refused finished by {hit['last_unrefused_s']:.1f} s "
            f"(×{retry['slowdown_of_calls_never_refused']:.2f} of the {clean['last_unrefused_s']:.1f} s "
            f"with no 429); the {hit['refused_calls']} refused ones by {hit['wall_s']:.1f} s; "
            f"{hit['limiter_pauses']} pauses of the whole model.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
