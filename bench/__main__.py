"""Run every benchmark in its own process, then write bench/results/summary.md from their JSON results.

Each benchmark runs in a fresh interpreter so its peak RSS is its own. Benchmarks measure; they never assert.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BENCHMARKS = [
    "gateway_throughput",
    "pipeline_throughput",
    "rerun_cost",
    "read_memory",
    "dedup",
    "estimate_accuracy",
    "compare_tools",
]


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    lines = ["# datamill benchmark results", "", f"Run at {time.strftime('%Y-%m-%d %H:%M:%S')}.", ""]
    for name in BENCHMARKS:
        print(f"== bench.{name}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"])
        result_file = RESULTS / f"{name}.json"
        lines.append(f"## {name}")
        lines.append("")
        if code != 0 or not result_file.exists():
            lines.append(f"failed (exit code {code})")
        else:
            data = json.loads(result_file.read_text())
            lines.append(data.get("summary_md") or "```json\n" + json.dumps(data, indent=2) + "\n```")
        lines.append("")
    (RESULTS / "summary.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / 'summary.md'}")


if __name__ == "__main__":
    main()
