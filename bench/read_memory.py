"""Peak memory of streaming a large csv and jsonl through `open_dataset`, against file size.

Generates a csv and a jsonl file at two sizes (a quarter of --size-mb, and --size-mb) in a temporary
directory, then counts their rows through `open_dataset` in a fresh interpreter each, recording the peak
resident set size (VmHWM from /proc/self/status) before and after reading. If reading streams, the peak stays
flat while the file grows fourfold. Writes bench/results/read_memory.json and prints a one-line markdown
summary.

    python -m bench.read_memory --size-mb 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "read_memory.json"
_MB = 1024 * 1024
# Growth of the peak RSS (MB) between the two sizes that still counts as "bounded": allocator noise, not data.
_BOUNDED_SLACK_MB = 64


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rows(start: int, count: int) -> list[dict[str, object]]:
    """Rows shaped like training data: an id, a prompt, a completion with a comma and a quote, a chat list."""
    return [
        {
            "id": i,
            "prompt": f"Question {i}: how would you explain topic number {i % 977} to a new colleague?",
            "completion": f'Start from the basics, then "show, don\'t tell" with example {i % 31}. ' * 2,
            "chat": [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": "hello"}],
        }
        for i in range(start, start + count)
    ]


def _csv_lines(rows: list[dict[str, object]]) -> str:
    out = []
    for row in rows:
        completion = str(row["completion"]).replace('"', '""')
        out.append(f'{row["id"]},"{row["prompt"]}","{completion}"\n')
    return "".join(out)


def _jsonl_lines(rows: list[dict[str, object]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def generate(path: Path, size_mb: float) -> int:
    """Write a csv or jsonl file (by extension) of about `size_mb` MB; return its row count."""
    target = int(size_mb * _MB)
    chunk_rows, written, rows = 2000, 0, 0
    with path.open("w", encoding="utf-8") as f:
        if path.suffix == ".csv":
            written += f.write("id,prompt,completion\n")
        while written < target:
            block = _rows(rows, chunk_rows)
            text = _csv_lines(block) if path.suffix == ".csv" else _jsonl_lines(block)
            written += f.write(text)
            rows += chunk_rows
    return rows


def measure(path: Path) -> dict[str, float | int]:
    """Count the rows of `path` through `open_dataset` in this process; return rows, seconds, peak RSS."""
    import pyarrow as pa

    from datamill.dataio import open_dataset

    baseline = _peak_rss_mb()
    start = time.perf_counter()
    rows = 0
    with open_dataset(path) as reader:
        for batch in reader:
            rows += batch.num_rows
    return {
        "rows": rows,
        "seconds": round(time.perf_counter() - start, 2),
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        # Arrow's own allocations are not all in RSS growth (and vice versa): report its high-water mark too.
        "arrow_pool_peak_mb": round(pa.default_memory_pool().max_memory() / _MB, 1),
    }


def _measure_in_child(path: Path) -> dict[str, float | int]:
    # A fresh interpreter per file, so each peak is that file's own and not the high-water mark of the last.
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(path)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float | int] = json.loads(out.strip().splitlines()[-1])
    return result


def run(size_mb: float) -> dict[str, Any]:
    """Generate, measure and summarise; returns the JSON-ready result."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="datamill-read-memory-") as tmp:
        for fmt in ("csv", "jsonl"):
            for size in (size_mb / 4, size_mb):
                path = Path(tmp) / f"data-{size:g}mb.{fmt}"
                expected = generate(path, size)
                file_mb = path.stat().st_size / _MB
                measured = _measure_in_child(path)
                path.unlink()
                if measured["rows"] != expected:
                    raise SystemExit(f"{path.name}: read {measured['rows']} rows, wrote {expected}")
                results.append({"format": fmt, "file_mb": round(file_mb, 1), **measured})
    bounded = all(
        big["peak_rss_mb"] - small["peak_rss_mb"] < _BOUNDED_SLACK_MB
        for small, big in zip(results[::2], results[1::2], strict=True)
    )
    return {
        "size_mb": size_mb,
        "results": results,
        "bounded": bounded,
        "summary_md": summary(results, bounded),
    }


def summary(results: list[dict[str, Any]], bounded: bool) -> str:
    """One markdown line: peak RSS per format and size, and whether it stayed flat."""
    parts = [
        f"{r['format']} {r['file_mb']} MB: {r['rows']:,} rows in {r['seconds']} s, "
        f"peak RSS {r['peak_rss_mb']} MB"
        for r in results
    ]
    verdict = "bounded" if bounded else "NOT bounded"
    return f"**read_memory** ({verdict}): " + "; ".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=300.0, help="size of the larger file of each format")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: the child process's job
    args = parser.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(measure(args.measure)))
        return
    data = run(args.size_mb)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(data["summary_md"])


if __name__ == "__main__":
    main()
