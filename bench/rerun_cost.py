"""Re-running after changing the last step only: the response cache must answer every unchanged call.

A generated CSV (``--rows``, default 2,000) is adapted three times in one data directory (so one persistent
response cache) through ``adapt_file_async``, with recipes prompt_rephrase + completion (completion is the
last step) and metadata injection off (it would put the blueprint into the rephrase request too):

1. ``first``: blueprint A, a cold cache: every rephrase and completion request is a call;
2. ``blueprint_changed``: blueprint B: the rephrase requests are unchanged (cache hits) and only the
   completion requests change, so the calls sent should equal the rows;
3. ``unchanged``: blueprint B again: every request is a cache hit, no calls.

Each run is a fresh client process against one fake OpenAI server (``--echo``, its own process, L=0.5 s,
C=256). Reports calls sent, cache hits, the expected calls, wall time and peak RSS. Usage::

    python -m bench.rerun_cost [--rows 2000] [--latency 0.5]

Writes ``bench/results/rerun_cost.json`` (with ``summary_md``) and prints the summary. Measures; never
asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._support import cpu_s, fake_server, vm_hwm_mb, write_result
from bench.pipeline_throughput import ECHO, MODEL, write_input
from datamill.cli.process import quiet_gc
from datamill.dataio.memory import use_lean_memory_pool
from datamill.llm import event_loop

RESULTS = Path(__file__).parent / "results" / "rerun_cost.json"
CHANGED = "Formal, precise and complete."
RUNS = (("first", "Friendly and brief."), ("blueprint_changed", CHANGED), ("unchanged", CHANGED))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.child:
        # The child stands for `datamill adapt`, so it opts into what that command does to its process.
        use_lean_memory_pool()
        with quiet_gc():
            print(json.dumps(event_loop.run(_child(args))))
        return 0
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, fake_server(args.latency, extra_args=ECHO) as (base_url, _pid):
        source = Path(tmp) / "rows.csv"
        write_input(source, args.rows)
        for name, blueprint in RUNS:
            cmd = [sys.executable, "-m", "bench.rerun_cost", "--child", name, "--blueprint", blueprint]
            cmd += ["--base-url", base_url, "--input", str(source), "--home", str(Path(tmp) / "home")]
            cmd += ["--concurrency", str(args.concurrency)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[name] = json.loads(out.strip().splitlines()[-1])
            print(f"  {name}: {runs[name]['calls']} calls, {runs[name]['run_s']:.1f} s", file=sys.stderr)
    expected = {"first": 2 * args.rows, "blueprint_changed": args.rows, "unchanged": 0}
    for name, run in runs.items():
        run["expected_calls"] = expected[name]
    result = {
        "benchmark": "rerun_cost",
        "run_at": started,
        "params": {"rows": args.rows, "latency_s": args.latency, "concurrency": args.concurrency},
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "runs": runs,
    }
    write_result(RESULTS, result, _markdown)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Calls sent when only the last step changes.")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=256)
    # Internal: run one adaptation in this process and print its JSON.
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--blueprint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--input", default="", help=argparse.SUPPRESS)
    parser.add_argument("--home", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    from datamill.core.run_options import RunOptions
    from datamill.llm.cache import SqliteResponseCache
    from datamill.llm.gateway import Gateway
    from datamill.llm.routing import Routing
    from datamill.services.adaptation.adapt import AdaptJob, adapt_file_async
    from datamill.services.settings.entry import Settings

    route = {"provider": "openai", "base_url": args.base_url, "max_concurrency": args.concurrency}
    routing = Routing.from_dict({"routes": {"bench/*": route}})
    settings = Settings(data_dir=Path(args.home))
    settings.cache_path.parent.mkdir(parents=True, exist_ok=True)
    recipes = {"deduplication": False, "prompt_metadata_injection": False, "prompt_rephrase": True}
    body = {
        "column_mapping": {"prompt": "question", "context": ["product"]},
        "recipe_specification": {"recipes": {**recipes, "reasoning_traces": False}},
        "brand_controls": {"blueprint": args.blueprint},
    }
    options = RunOptions(evaluate=False, rephrase_check=False, near_dedup=False)
    job = AdaptJob(Path(args.input), Path(args.home) / f"{args.child}.jsonl", model=MODEL, options=options)
    cpu_before, started = cpu_s(), time.perf_counter()
    async with Gateway(routing, cache=SqliteResponseCache(settings.cache_path)) as gateway:
        summary = await adapt_file_async(job, body, settings=settings, gateway=gateway)
    by_step = {
        step: {"calls": u.get("calls", 0), "cache_hits": u.get("cache_hits", 0)}
        for step, u in summary.usage_by_step.items()
    }
    return {
        "run": args.child,
        "blueprint": args.blueprint,
        "steps": summary.steps,
        "rows": summary.rows_in,
        "rows_out": summary.rows_out,
        "calls": summary.calls,
        "cache_hits": summary.cache_hits,
        "by_step": by_step,
        "run_s": time.perf_counter() - started,
        "cpu_s": cpu_s() - cpu_before,
        "peak_rss_mb": vm_hwm_mb(),
    }


def _markdown(result: dict[str, Any]) -> str:
    p, machine = result["params"], result["machine"]
    lines = [
        f"Re-run cost: {p['rows']} rows, prompt_rephrase + completion (the last step), metadata injection "
        f"off, one response cache; fake server L={p['latency_s']} s, C={p['concurrency']}; "
        f"{machine['cpus']} CPUs, load average before {machine['loadavg_before'][0]:.2f}.",
        "",
        "| run | blueprint | calls sent | expected | cache hits | calls by step | wall s | CPU s "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["runs"].items():
        steps = ", ".join(f"{k}: {v['calls']}" for k, v in r["by_step"].items())
        lines.append(
            f"| {name} | {r['blueprint']} | {r['calls']} | {r['expected_calls']} | {r['cache_hits']} "
            f"| {steps} | {r['run_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    lines += ["", "Calls sent exclude cache hits; expected: only the changed step's requests are sent."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
