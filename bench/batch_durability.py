"""Batch mode under kill -9: a run killed again and again while its batches are in flight loses no row,
repeats no row and submits no request in two batches.

For each provider, ``datamill adapt --batch`` (rephrase and completion, ``--rows`` rows in batches of 20)
runs as a subprocess against the provider simulator (in this process, batches ending ``--batch-delay``
seconds after they are created). It is killed with SIGKILL ``--kills`` times, each once it has created a
new batch, at a seeded random moment before that batch ends, then run once more to the end. Reported from
the simulator's log: the batches created, the model requests answered in a batch and how many of them were
in an earlier batch too (resubmitted), requests sent online, and whether the output holds every input row
exactly once.

    python -m bench.batch_durability [--rows 200] [--kills 10] [--providers openai anthropic gemini]

Writes ``bench/results/batch_durability.json`` (with ``summary_md``). Measures; never asserts.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bench._support import write_result

RESULTS = Path(__file__).parent / "results" / "batch_durability.json"
FAMILY = {"openai": "sim-openai", "anthropic": "sim-anthropic", "gemini": "sim-gemini"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Batch mode runs killed with SIGKILL while batches are in flight."
    )
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--batch-delay", type=float, default=3.0)
    parser.add_argument("--providers", nargs="+", choices=sorted(FAMILY), default=sorted(FAMILY))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    runs = [_provider(provider, args) for provider in args.providers]
    result = {
        "benchmark": "batch_durability",
        "run_at": started,
        "params": {
            "rows": args.rows,
            "kills": args.kills,
            "batch_delay_s": args.batch_delay,
            "seed": args.seed,
        },
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "runs": runs,
    }
    write_result(RESULTS, result, _markdown)
    return 0


def _provider(provider: str, args: argparse.Namespace) -> dict[str, Any]:
    from datamill.llm.simulator import serve_in_thread

    draw = random.Random(f"{args.seed}/{provider}")
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(seed=1, batch_delay_s=args.batch_delay) as sim:
        root = Path(tmp)
        source = root / "in.jsonl"
        rows = [{"id": i, "question": f"How do I reset device {i}?"} for i in range(args.rows)]
        source.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
        routes = sim.write_routes(root / "routes.yaml", input_price=1.0, output_price=2.0, batch_poll_s=0.2)
        out = root / "out.jsonl"
        command = [
            sys.executable, "-m", "datamill.cli.main", "adapt", str(source), "--prompt", "question",
            "--recipes", "prompt_rephrase", "--model", f"{FAMILY[provider]}/m", "--routes", str(routes),
            "--batch", "--batch-size", "20", "--no-eval", "--no-cache", "--json", "-q", "-o", str(out),
        ]  # fmt: skip
        env = dict(os.environ, DATAMILL_HOME=str(root / "home"))
        env.pop("DATAMILL_ROUTES", None)
        env.pop("DATAMILL_MODEL", None)
        kills = kills_in_flight = 0
        started = time.perf_counter()
        for _ in range(args.kills):
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Wait for a batch in flight (created, not ended), then kill at a random moment of its life.
            seen = len(sim.log.operations("batch_create"))
            while process.poll() is None and len(sim.log.operations("batch_create")) == seen:
                time.sleep(0.005)
            time.sleep(draw.uniform(0.0, args.batch_delay * 0.9))
            if process.poll() is None:
                in_flight = [b for b in list(sim.batches.batches.values()) if not b.ended]
                process.send_signal(signal.SIGKILL)
                kills += 1
                kills_in_flight += bool(in_flight)
            process.wait()
        final = subprocess.run(command, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        output = [orjson.loads(line) for line in out.read_bytes().splitlines()] if out.is_file() else []
        items = [e for e in sim.log if e.batch and e.operation is None]
        bodies = Counter(orjson.dumps(e.body, option=orjson.OPT_SORT_KEYS) for e in items)
        ids = Counter(row["id"] for row in output)
        return {
            "provider": provider,
            "kills": kills,
            "kills_with_batches_in_flight": kills_in_flight,
            "final_exit_code": final.returncode,
            "rows_out": len(output),
            "every_row_once": sorted(ids) == list(range(args.rows)) and max(ids.values(), default=0) == 1,
            "batches_created": len(sim.log.operations("batch_create")),
            "batches_with_requests": len({e.batch for e in items}),
            "batched_requests": len(items),
            "resubmitted_requests": sum(count - 1 for count in bodies.values()),
            "online_requests": sum(1 for e in sim.log.answered() if e.batch is None),
            "elapsed_s": round(elapsed, 1),
        }


def _markdown(result: dict[str, Any]) -> str:
    params = result["params"]
    lines = [
        f"`datamill adapt --batch` (rephrase + completion) on {params['rows']} rows, killed with SIGKILL "
        f"{params['kills']} times, each at a seeded random moment while its newest batch is in flight, "
        "then run to the end; "
        f"simulator batches end {params['batch_delay_s']:g} s after they are created.",
        "",
        "| provider | kills | kills with batches in flight | rows out | every row once | batches created "
        "| batched requests | resubmitted | online |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['provider']} | {run['kills']} | {run['kills_with_batches_in_flight']} | "
            f"{run['rows_out']} | "
            f"{'yes' if run['every_row_once'] else 'no'} | {run['batches_created']} | "
            f"{run['batched_requests']} | {run['resubmitted_requests']} | {run['online_requests']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
