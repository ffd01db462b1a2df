"""How long ``datamill --help`` spends importing, and its peak memory.

Each run is a fresh interpreter running what the console script runs, under ``python -X importtime``; the
import time is the sum of the top-level imports the interpreter reports (its own start-up modules
included), so it leaves out the printing of the help. ``--src`` measures another source tree the same way
(an older checkout, to compare on one machine). Writes bench/results/cli_startup.json.

    python -m bench.cli_startup
    python -m bench.cli_startup --src /path/to/older/checkout/src --label before
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "cli_startup.json"
SRC = Path(__file__).resolve().parent.parent / "src"
#: What the ``datamill`` console script runs.
CONSOLE_SCRIPT = "import sys; from datamill.cli.main import main; sys.argv[0] = 'datamill'; main()"
_TOP_LEVEL = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=SRC, help="the source tree to measure")
    parser.add_argument("--label", default="current", help="the name of this measurement in the results")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--command", nargs="+", default=["--help"], help="the arguments of `datamill`")
    args = parser.parse_args(argv)
    runs = [_once(args.src, args.command) for _ in range(args.runs)]
    key = " ".join(["datamill", *args.command])
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.setdefault("scenarios", {}).setdefault(key, {})[args.label] = {
        "import_s_median": round(statistics.median(r["import_s"] for r in runs), 4),
        "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 4),
        "max_rss_mb": round(max(r["max_rss_mb"] for r in runs), 1),
        "modules_imported": runs[0]["modules"],
        "runs": args.runs,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    data["summary_md"] = _summary(data["scenarios"])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(data["summary_md"])
    return 0


def _once(src: Path, command: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-X", "importtime", "-c", CONSOLE_SCRIPT, *command]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    proc.stderr.close()
    _, status, usage = os.wait4(proc.pid, 0)  # reaps the child, with its own peak memory
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {code}: {stderr[-2000:]}")
    top = [int(m.group(1)) for line in stderr.splitlines() if (m := _TOP_LEVEL.match(line))]
    return {
        "import_s": sum(top) / 1e6,
        "wall_s": wall,
        "max_rss_mb": usage.ru_maxrss / 1024,
        "modules": stderr.count("import time:") - 1,
    }


def _summary(scenarios: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = ["| command | tree | imports (s, median) | wall (s, median) | peak RSS (MB) | modules |"]
    lines.append("|---|---|---|---|---|---|")
    for key, labels in scenarios.items():
        for label, r in labels.items():
            lines.append(
                f"| `{key}` | {label} | {r['import_s_median']} | {r['wall_s_median']} | {r['max_rss_mb']} "
                f"| {r['modules_imported']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
