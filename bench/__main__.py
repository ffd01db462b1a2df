"""Run every benchmark in its own process, then write bench/results/summary.md from their JSON results.

Each benchmark runs in a fresh interpreter so its peak RSS is its own. Benchmarks measure; they never assert.

    python -m bench                      # every benchmark, then the summary
    python -m bench --only dedup         # some of them (the summary still lists every result on disk)
    python -m bench --summary-only       # rebuild the summary from the results on disk
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BENCHMARKS = [
    "gateway_throughput",
    "token_limits",
    "limiter_overhead",
    "pipeline_throughput",
    "rerun_cost",
    "prompt_cache_cost",
    "batch_durability",
    "read_memory",
    "url_import_memory",
    "server_rate_limit",
    "dedup",
    "estimate_accuracy",
    "compare_tools",
    "server_load",
    "server_estimate",
    "cli_startup",
    "pii_detection",
    "red_team",
    "run_memory",
    "autoscientist_raw_vs_adapted",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run datamill's benchmarks.")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these benchmarks")
    parser.add_argument("--summary-only", action="store_true", help="only rebuild summary.md")
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    failed: dict[str, int] = {}
    if not args.summary_only:
        for name in args.only or BENCHMARKS:
            print(f"== bench.{name}", flush=True)
            code = subprocess.call([sys.executable, "-m", f"bench.{name}"])
            if code != 0:
                failed[name] = code
    (RESULTS / "summary.md").write_text(summary(failed))
    print(f"wrote {RESULTS / 'summary.md'}")


def summary(failed: dict[str, int]) -> str:
    lines = ["# datamill benchmark results", "", machine(), ""]
    for name in BENCHMARKS:
        result_file = RESULTS / f"{name}.json"
        lines += [f"## {name}", ""]
        if name in failed:
            lines.append(f"failed (exit code {failed[name]})")
        elif not result_file.exists():
            lines.append("not run yet")
        else:
            data = json.loads(result_file.read_text())
            # A file's date in a fresh clone is the clone's: only a date the benchmark wrote is its own.
            when = next((data[k] for k in ("run_at", "measured_at", "started") if data.get(k)), None)
            lines.append(f"Measured {str(when)[:16]} UTC." if when else "Date of measurement not recorded.")
            lines.append("")
            shown = str(data.get("summary_md") or "").strip()
            lines.append(shown or "```json\n" + json.dumps(data, indent=2) + "\n```")
        lines.append("")
    return "\n".join(lines)


def machine() -> str:
    """The machine the numbers come from: they only compare with numbers from the same kind of machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()}. "
        "Each benchmark ran in its own process; results are single runs unless a table says otherwise."
    )


if __name__ == "__main__":
    main()
