"""Peak memory of a server run against its row count: the worker's run executor on the built-in fake model.

For each row count, a fresh interpreter makes a jsonl dataset of that many distinct question/answer rows
(one tenant, one dataset in a SQLite database, its file in a local blob store), plans an adapt run with the
default recipes as a launch does, and executes it with the server's `RunExecutor` (the code the worker
runs: checkpoint, dedup, rejections, usage, grading, report) on the deterministic fake model. It records
the peak resident set size (``VmHWM``) before and after. If nothing of the run grows with its rows but the
documented O(rows) structures (the dedup indexes: exact dedup's digest dictionary, about 150 bytes a kept
row, and near dedup's MinHash LSH arrays, 500–750 bytes a kept row), the peak stays nearly flat as the rows
grow. Their sizes, taken as the run drops them, are reported apart (``near_dedup_index_mb``,
``exact_dedup_index_mb``), with the growth less them.

``--tracemalloc`` also takes a `tracemalloc` snapshot at a quarter, half and all of the rows and prints
the allocation sites that grew most between them: the tool for finding what grows.

    python -m bench.run_memory                     # 10,000 and 50,000 rows
    python -m bench.run_memory --rows 10000,50000,200000
    python -m bench.run_memory --rows 20000 --tracemalloc

Writes ``bench/results/run_memory.json`` (or ``--out``) and prints a Markdown summary. Measures; never
asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import datetime
import gc
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "run_memory.json"
MODEL = "fake/bench-model"
_MB = 1024 * 1024
_TOPICS = ("router", "printer", "laptop", "phone", "camera", "monitor", "keyboard", "speaker", "tablet")
_VERBS = ("reset", "update", "clean", "pair", "calibrate", "restart", "configure", "repair", "replace")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Give freed memory back to the system and restart the peak (``VmHWM``) from the current size.

    The launch's estimate reads up to 10,000 rows for its dedup sample (`DEDUP_SAMPLE_ROWS`), so its peak,
    reported as ``plan_peak_rss_mb``, grows up to that many rows; the run's own peak is measured from here.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def write_rows(path: Path, rows: int) -> None:
    """`rows` distinct question/answer rows as jsonl (numbers in words and digits keep them apart)."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            topic, verb = _TOPICS[i % len(_TOPICS)], _VERBS[(i // len(_TOPICS)) % len(_VERBS)]
            row = {
                "id": i,
                "question": f"How do I {verb} the {topic} with serial {i * 7919 % 1000003} in room {i}?",
                "answer": f"Open the {topic} settings, choose {verb}, confirm code {i * 104729 % 999983}.",
            }
            out.write(json.dumps(row) + "\n")


def _dataset(tmp: Path, data_file: Path) -> tuple[Any, Any, str, str]:
    """A store with a tenant and a dataset whose one file is `data_file`: (store, blobs, tenant, dataset)."""
    from datamill.services.tenants import TenantService
    from datamill.store import Store
    from datamill.store.blobs.local import LocalBlobStore
    from datamill.store.datasets import StoredFile, add_dataset_with_file

    store = Store.from_url(f"sqlite:///{tmp / 'datamill.db'}")
    store.migrate()
    blobs = LocalBlobStore(tmp / "blobs")
    (tmp / "blobs" / "uploads").mkdir(parents=True)
    data_file.rename(tmp / "blobs" / "uploads" / "rows.jsonl")
    tenant_id = TenantService(store).create_key("bench").tenant.id
    size = (tmp / "blobs" / "uploads" / "rows.jsonl").stat().st_size
    with store.session() as session:
        dataset = add_dataset_with_file(
            session,
            tenant_id=tenant_id,
            name="rows",
            file=StoredFile("rows.jsonl", "jsonl", "uploads/rows.jsonl", size, "0" * 64),
            status="succeeded",
            ingest_state="ready",
        )
    return store, blobs, tenant_id, str(dataset.id)


async def _measure(rows: int, trace: bool, check: bool) -> dict[str, Any]:
    """Plan and execute one run of `rows` rows in this process; its peak memory and (optionally) growth."""
    from datamill.core.adapt_request import parse_adapt_request
    from datamill.dataio.memory import POOL_ENV, use_lean_memory_pool
    from datamill.runners.execution import LiveRun, RunTicket
    from datamill.services.adaptation.adapt import make_gateway
    from datamill.services.adaptation.prepare import RunSource, plan_run
    from datamill.services.jobs.adaptation import RunExecutor
    from datamill.services.settings.runs import RunSettings

    use_lean_memory_pool(os.environ.get(POOL_ENV))  # as `datamill serve` and `datamill worker` do
    with tempfile.TemporaryDirectory(prefix="datamill-run-memory-") as name:
        tmp = Path(name)
        data = tmp / "data"
        data.mkdir()
        write_rows(tmp / "rows.jsonl", rows)
        store, blobs, tenant_id, dataset_id = _dataset(tmp, tmp / "rows.jsonl")
        settings = RunSettings(model=MODEL)
        request = parse_adapt_request({"column_mapping": {"prompt": "question", "completion": "answer"}})
        source = RunSource(tmp / "blobs" / "uploads" / "rows.jsonl", "jsonl", local_image_files=False)
        gateway = make_gateway(settings.llm_settings(data), use_cache=False)
        try:
            options = dataclasses.replace(settings.run_options(), rephrase_check=check)
            quote = await plan_run("adapt", source, request, MODEL, options, gateway, data)
        finally:
            await gateway.aclose()
        assert quote.estimate is not None
        ticket = RunTicket(
            id="run_bench",
            tenant_id=tenant_id,
            dataset_id=dataset_id,
            source_dataset_id=dataset_id,
            kind="adapt",
            request=quote.plan.request.to_dict(),
            options=quote.plan.options_record(),
            model=MODEL,
            cost_usd=0.0,
            attempts=1,
            total_rows=rows,
            estimate=quote.estimate.to_dict(),
        )
        live = LiveRun(total_rows=rows)
        dedup: dict[str, float] = {}
        _record_dedup_indexes(dedup)
        snapshots: list[tuple[int, tracemalloc.Snapshot]] = []
        plan_peak = _peak_rss_mb()
        _reset_peak()
        if trace:
            tracemalloc.start(12)
        baseline = _rss_mb()
        started = time.perf_counter()
        phases: dict[str, float] = {}
        watch = asyncio.ensure_future(_watch(live, rows, snapshots, trace))
        phase = asyncio.ensure_future(_phase_peak(live, phases))
        try:
            outcome = await RunExecutor(store, blobs, settings, data)(ticket, live)
        finally:
            watch.cancel()
            phase.cancel()
        seconds = time.perf_counter() - started
        result: dict[str, Any] = {
            "rows": rows,
            "status": outcome.status,
            "rows_out": outcome.rows_out,
            "rows_rejected": outcome.rows_rejected,
            "evaluation_status": outcome.evaluation_status,
            "seconds": round(seconds, 1),
            "plan_peak_rss_mb": round(plan_peak, 1),
            "baseline_rss_mb": round(baseline, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "adapting_peak_rss_mb": phases.get("adapting"),
            "rss_after_mb": round(_rss_mb(), 1),
            **dedup,
        }
        if trace:
            result["growth"] = _growth(snapshots)
        store.close()
        return result


def _record_dedup_indexes(found: dict[str, float]) -> None:
    """Record the size of the dedup indexes as the run drops them (`BatchStep.forget`), to report apart.

    They are the run's documented O(rows) structures: the near-dedup MinHash-LSH arrays (`index_nbytes`) and
    exact dedup's digest dictionary (its table, keys and values, as ``sys.getsizeof`` counts them).
    """
    from datamill.steps.dedup import ExactDedup
    from datamill.steps.near_dedup import NearDedup

    near_forget, exact_forget = NearDedup.forget, ExactDedup.forget

    def near(step: NearDedup) -> None:
        found["near_dedup_index_mb"] = round(step.index_nbytes / _MB, 1)
        near_forget(step)

    def exact(step: ExactDedup) -> None:
        seen = step._seen
        size = sys.getsizeof(seen) + sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in seen.items())
        found["exact_dedup_index_mb"] = round(size / _MB, 1)
        exact_forget(step)

    NearDedup.forget = near  # type: ignore[method-assign,assignment]
    ExactDedup.forget = exact  # type: ignore[method-assign,assignment]


async def _phase_peak(live: Any, phases: dict[str, float]) -> None:
    """Record the peak RSS of the adapting phase, when the evaluation starts."""
    while live.evaluation_status is None:  # noqa: ASYNC110 - polling the executor's state, as the heartbeat does
        await asyncio.sleep(0.05)
    phases["adapting"] = round(_peak_rss_mb(), 1)


async def _watch(
    live: Any, rows: int, snapshots: list[tuple[int, tracemalloc.Snapshot]], trace: bool
) -> None:
    """Take a tracemalloc snapshot as the run passes a quarter, half and all of its rows."""
    marks = [rows // 4, rows // 2, rows]
    while marks and trace:
        await asyncio.sleep(0.2)
        if live.counters.rows_done >= marks[0]:
            snapshots.append((live.counters.rows_done, tracemalloc.take_snapshot()))
            marks.pop(0)


def _growth(snapshots: list[tuple[int, tracemalloc.Snapshot]]) -> list[dict[str, Any]]:
    """The allocation sites that grew most between consecutive snapshots."""
    found = []
    for (rows_a, a), (rows_b, b) in itertools.pairwise(snapshots):
        top = b.compare_to(a, "traceback")[:8]
        found.append(
            {
                "from_rows": rows_a,
                "to_rows": rows_b,
                "traced_mb": round(sum(s.size for s in b.statistics("filename")) / _MB, 1),
                "top": [
                    {
                        "size_diff_kb": round(stat.size_diff / 1024, 1),
                        "count_diff": stat.count_diff,
                        "where": [f"{f.filename}:{f.lineno}" for f in stat.traceback][-6:],
                    }
                    for stat in top
                ],
            }
        )
    return found


def _in_child(rows: int, trace: bool, check: bool) -> dict[str, Any]:
    # A fresh interpreter per row count, so each peak is that run's own and not the last one's.
    cmd = [sys.executable, "-m", "bench.run_memory", "--measure", str(rows)]
    cmd += ["--tracemalloc"] * trace + ["--rephrase-check"] * check
    env = os.environ | {"DATAMILL_LOG_LEVEL": "WARNING"}
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summary(results: list[dict[str, Any]]) -> str:
    lines = [
        "| rows | status | rows out | seconds | RSS at start (MB) | run's peak RSS (MB) | growth (MB) "
        "| dedup indexes (MB) | growth less dedup indexes (MB) | launch estimate's peak (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        growth = r["peak_rss_mb"] - r["baseline_rss_mb"]
        indexes = r.get("near_dedup_index_mb", 0.0) + r.get("exact_dedup_index_mb", 0.0)
        lines.append(
            f"| {r['rows']:,} | {r['status']} | {r['rows_out']:,} | {r['seconds']} | {r['baseline_rss_mb']} "
            f"| {r['peak_rss_mb']} | {growth:.1f} | {indexes:.1f} | {growth - indexes:.1f} "
            f"| {r['plan_peak_rss_mb']} |"
        )
    lines += [
        "",
        "Growth is the run's peak RSS over its RSS at the start. The dedup indexes (near dedup's "
        "MinHash-LSH arrays and exact dedup's digests, taken as the run drops them) are the documented "
        "O(rows) structures; the evaluation then builds one such index per side, one side at a time.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,50000", help="comma-separated row counts")
    parser.add_argument("--tracemalloc", action="store_true", help="report what grew between snapshots")
    parser.add_argument(
        "--rephrase-check",
        action="store_true",
        help="keep the rephrase meaning check (embeds every row with MiniLM: slow on a small machine)",
    )
    parser.add_argument("--out", help="results file (default bench/results/run_memory.json)")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(asyncio.run(_measure(args.measure, args.tracemalloc, args.rephrase_check))))
        return 0
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes")
    results = [_in_child(int(n), args.tracemalloc, args.rephrase_check) for n in args.rows.split(",")]
    md = summary(results)
    out = Path(args.out) if args.out else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "measured_at": started,
        "model": MODEL,
        "recipes": "defaults",
        "rephrase_check": args.rephrase_check,
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "results": results,
        "summary_md": md,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
