"""Latency of the server's estimate: ``POST /datasets/{id}/adapt`` with ``estimate: true`` on a 50k-row csv.

``datamill serve`` runs in its own process (SQLite, the built-in fake model, so nothing is called); one
official Adaption SDK client uploads a csv of ``--rows`` distinct question/answer rows, waits until it is
read, then asks for the estimate ``--repeats`` times (the first ask is reported on its own: it is the one a
user waits for after an upload). Reported: the first ask's latency and the median and maximum of the others,
in seconds, as the client sees them (HTTP included), and the server process's CPU seconds over the asks.
Usage::

    python -m bench.server_estimate [--rows 50000] [--repeats 5] [--label after] [--out FILE]

Writes ``bench/results/server_estimate.json`` (one entry per ``--label``, so a before and an after sit side
by side) and prints a Markdown table. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._support import process_cpu_s, start_serve, tenant_keys

RESULTS = Path(__file__).parent / "results" / "server_estimate.json"
MODEL = "fake/bench-model"
MAPPING: Any = {"prompt": "question", "completion": "answer"}


def write_csv(path: Path, rows: int) -> None:
    """``rows`` rows of distinct questions (no two are near-duplicates) with an answer each."""
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "question", "answer"])
        for i in range(rows):
            words = " ".join("".join(rng.choices(alphabet, k=rng.randint(3, 9))) for _ in range(12))
            writer.writerow([i, f"Question {i}: why does the {words} work?", f"Answer {i}, in a sentence."])


def _measure(base_url: str, key: str, path: Path, repeats: int, server_pid: int) -> dict[str, Any]:
    import adaption

    sdk = adaption.Adaption(api_key=key, base_url=base_url, max_retries=0, timeout=300)
    dataset_id = sdk.datasets.upload_file(path).dataset_id
    deadline = time.monotonic() + 600
    while sdk.datasets.get_status(dataset_id).status == "pending":
        if time.monotonic() > deadline:
            raise TimeoutError("the upload was not read within 600 s")
        time.sleep(0.2)
    latencies: list[float] = []
    answer: Any = None
    cpu_before = process_cpu_s(server_pid)
    for _ in range(repeats):
        started = time.perf_counter()
        answer = sdk.datasets.adapt(dataset_id, column_mapping=MAPPING, estimate=True)
        latencies.append(time.perf_counter() - started)
    cpu = process_cpu_s(server_pid) - cpu_before
    rest = latencies[1:] or latencies
    return {
        "first_s": round(latencies[0], 3),
        "median_s": round(statistics.median(rest), 3),
        "max_s": round(max(rest), 3),
        "server_cpu_s_per_estimate": round(cpu / repeats, 3),
        "estimated_credits": answer.estimated_credits_consumed if answer is not None else None,
    }


def _table(runs: dict[str, dict[str, Any]]) -> str:
    lines = [
        "Server estimate (`POST /datasets/{id}/adapt`, `estimate: true`), seconds as the SDK client sees:",
        "",
        "| measurement | rows | csv MB | first | median | max | server CPU s / estimate | load (1 min) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in runs.items():
        lines.append(
            f"| {label} | {r['rows']} | {r['csv_mb']} | {r['first_s']} | {r['median_s']} | {r['max_s']} | "
            f"{r['server_cpu_s_per_estimate']} | {r['load_avg_1m']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--label", default="current", help="name of this measurement (e.g. before, after)")
    parser.add_argument("--out", help="result file (default bench/results/server_estimate.json)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        path = Path(tmp) / "questions.csv"
        write_csv(path, args.rows)
        csv_mb = round(path.stat().st_size / 1e6, 1)
        database_url = f"sqlite:///{data_dir / 'datamill.db'}"
        env = os.environ | {
            "DATAMILL_HOME": str(data_dir),
            "DATAMILL_DATABASE_URL": database_url,
            "DATAMILL_MODEL": MODEL,
        }
        key = tenant_keys(database_url, 1)[0]
        base_url, server = start_serve(data_dir, env)
        try:
            measured = _measure(base_url, key, path, args.repeats, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
    entry = {
        "rows": args.rows,
        "csv_mb": csv_mb,
        "repeats": args.repeats,
        **measured,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }
    out = Path(args.out) if args.out else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(out.read_text()).get("runs", {}) if out.is_file() else {}
    runs[args.label] = entry
    result = {"runs": runs, "summary_md": _table(runs)}
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(result["summary_md"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
