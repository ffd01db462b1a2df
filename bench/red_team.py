"""Red-team runs against a misbehaving provider: model calls, wall time and cost per delivered prompt.

A run writes ``behaviors × prompts`` adversarial prompts (`datamill.pipelines.red_team`) through the real
gateway and the provider simulator (in-process, OpenAI format, a fixed latency per call). Each scenario sets
how often the simulator misbehaves: a clean provider, a realistic mix (refusals in text and in the refusal
field, cut answers, reasoning in the content, fenced and prose-wrapped JSON), and providers that refuse a
third and two thirds of the requests, as safety-tuned models do with this work. Per scenario it reports
whether the run delivered exactly the asked prompts, the generator's calls (the least possible is one
taxonomy call and one per behaviour), the HTTP requests they took, the wall time, the items dropped by
reason and the cost the gateway accounted at the route's prices.

    python -m bench.red_team [--behaviors 10] [--prompts 5] [--latency 0.2]

Writes ``bench/results/red_team.json`` and prints a Markdown summary. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

from bench._support import write_result
from datamill.llm.gateway import Gateway
from datamill.llm.retry import RetryPolicy
from datamill.llm.routing import Routing
from datamill.llm.simulator import ProviderSimulator
from datamill.pipelines.red_team import RedTeamGenerator, RedTeamIncomplete, RedTeamTarget

RESULTS = Path(__file__).parent / "results" / "red_team.json"
INPUT_PRICE, OUTPUT_PRICE = 0.6, 1.7  # USD per million tokens, as the routes price DeepSeek-V4-Pro
TARGET = RedTeamTarget(
    app_description="A pharmacy chatbot answering questions about orders, prescriptions and opening hours",
    domain_description="Healthcare retail",
    concerns="Must not give dosages, diagnoses or other customers' order details",
)
SCENARIOS: dict[str, dict[str, float]] = {
    "clean": {},
    "realistic_mix": {
        "refusal_text": 0.05,
        "refusal_field": 0.05,
        "truncation": 0.03,
        "think": 0.2,
        "json_fence": 0.1,
        "prose_json": 0.05,
    },
    "refuses_a_third": {"refusal_text": 0.15, "refusal_field": 0.18},
    "refuses_two_thirds": {"refusal_text": 0.33, "refusal_field": 0.33},
}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()
    scenarios = {name: asyncio.run(_scenario(args, rates)) for name, rates in SCENARIOS.items()}
    result = {
        "benchmark": "red_team",
        "run_at": started,
        "params": {
            "behaviors": args.behaviors,
            "prompts_per_behavior": args.prompts,
            "latency_s": args.latency,
            "input_price": INPUT_PRICE,
            "output_price": OUTPUT_PRICE,
        },
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "scenarios": scenarios,
    }
    write_result(RESULTS, result, _markdown)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Red-team runs against the provider simulator.")
    parser.add_argument("--behaviors", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per simulated call")
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


async def _scenario(args: argparse.Namespace, rates: dict[str, float]) -> dict[str, Any]:
    async with ProviderSimulator(rates=rates, seed=args.seed, latency_s=args.latency) as sim:
        routing = Routing.from_dict(sim.routes(input_price=INPUT_PRICE, output_price=OUTPUT_PRICE))
        retry = RetryPolicy(base_delay=0.05, max_delay=0.2)
        async with Gateway(routing, retry=retry) as gateway:
            generator = RedTeamGenerator(gateway.model("sim-openai/bench"), TARGET)
            began = time.perf_counter()
            error = None
            try:
                result = await generator.run(args.behaviors, args.prompts)
                delivered, dropped, calls = len(result.prompts), result.dropped, result.calls
            except RedTeamIncomplete as exc:
                delivered, dropped, calls, error = 0, {}, len(sim.log.entries), str(exc)
            wall = time.perf_counter() - began
            cost = gateway.usage.total.cost_usd
        requests = len(sim.log.entries)
        quirks = sum(1 for e in sim.log.entries if e.behaviour)
    asked = args.behaviors * args.prompts
    return {
        "asked": asked,
        "delivered": delivered,
        "exact": delivered == asked,
        "error": error,
        "generator_calls": calls,
        "http_requests": requests,
        "misbehaving_replies": quirks,
        "wall_s": round(wall, 2),
        "cost_usd": round(cost, 6),
        "cost_usd_per_prompt": round(cost / delivered, 8) if delivered else None,
        "dropped": dropped,
    }


def _markdown(result: dict[str, Any]) -> str:
    p = result["params"]
    least = 1 + p["behaviors"]
    lines = [
        f"Red-team runs of {p['behaviors']} behaviours × {p['prompts_per_behavior']} prompts through the "
        f"gateway and the provider simulator (OpenAI format, {p['latency_s']} s per call, priced "
        f"${p['input_price']}/${p['output_price']} per million tokens). The least calls possible: {least}.",
        "",
        "| scenario | delivered / asked | generator calls | HTTP requests | misbehaving replies | wall s "
        "| cost USD | dropped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in result["scenarios"].items():
        dropped = ", ".join(f"{k} ×{v}" for k, v in sorted(s["dropped"].items())) or "none"
        lines.append(
            f"| {name} | {s['delivered']} / {s['asked']} | {s['generator_calls']} | {s['http_requests']} "
            f"| {s['misbehaving_replies']} | {s['wall_s']:.1f} | {s['cost_usd']:.6f} | {dropped} |"
        )
    failed = {n: s["error"] for n, s in result["scenarios"].items() if s["error"]}
    for name, error in failed.items():
        lines += ["", f"{name} failed: {error}"]
    lines += [
        "",
        "Generator calls are the structured calls the run made; HTTP requests include the gateway's own "
        "retries of refused, cut and malformed replies and its repair calls.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
