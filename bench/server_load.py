"""Load on the server: many concurrent official-SDK clients against ``datamill serve`` in its own process.

The server runs with a fake OpenAI-compatible provider in a third process that injects faults: a share of
its answers are 500 (``--error-rate``) and it answers 429 with ``Retry-After`` above a number of requests
in flight (``--max-concurrent``). Then, each client on its own thread with its own key (a tenant each):

- ``--clients`` Adaption clients each upload a small CSV (``--rows`` rows), wait for it to be read, launch
  an adapt run, poll until it ends and download the output, ``--runs`` times;
- ``--df-clients`` Dataframer clients each upload seed files, create a spec and wait for it, launch a run
  of ``--samples`` samples, poll it, and download its ZIP (asking until it is built), ``--runs`` times.

Reported: requests/s over the whole load, latency p50/p95/p99 per operation (an SDK call, retries
included), answers by status (the server's, as the clients saw them, and the fake provider's), and the
check that matters: every run finished, every uploaded row is in its download and every sample in its ZIP.
The adapt runs' models go through the faulty provider; the Dataframer runs use the built-in
deterministic fake model (its steps need structured answers the fake server does not give). SQLite by
default; PostgreSQL when ``DATAMILL_TEST_POSTGRES_URL`` is set. Usage::

    python -m bench.server_load [--clients 16] [--df-clients 4] [--runs 1] [--rows 40] [--out FILE]

Writes ``bench/results/server_load.json`` (or ``--out``) and prints a Markdown summary. Measures; never
asserts (the process exits 1 when something was lost, so a smoke test can tell).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from bench._support import fake_server, process_cpu_s, start_serve, tenant_keys
from bench.server_load_clients import Recorder, adaption_client, dataframer_client

RESULTS = Path(__file__).parent / "results" / "server_load.json"
LOAD_MODEL = "load/model"


def _routes(path: Path, fake_url: str) -> Path:
    """Adapt runs to the faulty fake server; every Dataframer model name to the built-in fake model."""
    import typing

    from dataframer.types.dataframer import evaluation_create_params, run_create_params, spec_create_params

    names: set[str] = set()
    for params, fields in (
        (run_create_params.RunCreateParams, ("generation_model", "outline_model", "revision_model")),
        (spec_create_params.SpecCreateParams, ("spec_generation_model_name",)),
        (evaluation_create_params.EvaluationCreateParams, ("evaluation_model",)),
    ):
        hints = typing.get_type_hints(params, include_extras=True)
        names |= {value for field in fields for value in typing.get_args(hints[field])}
    fake = {"provider": "fake", "model": "{suffix}", "api_key_env": None, "base_url_env": None}
    loop = {"provider": "openai", "base_url": fake_url, "api_key_env": None, "model": "{suffix}"}
    routes = {name: fake for name in sorted(names)} | {
        "load/*": loop | {"input_price": 0.0, "output_price": 0.0}
    }
    path.write_text(yaml.safe_dump({"default_model": LOAD_MODEL, "routes": routes}), encoding="utf-8")
    return path


def _rejections(database_url: str, data_dir: Path) -> dict[str, list[str]]:
    """Each adapted dataset's rejected rows, as the step that rejected each, from its run's checkpoint."""
    from sqlalchemy import select

    from datamill.store import Run, Store

    store = Store.from_url(database_url)
    with store.session() as session:
        runs = list(session.execute(select(Run.dataset_id, Run.id).where(Run.kind == "adapt")))
    store.close()
    found: dict[str, list[str]] = {}
    for dataset_id, run_id in runs:
        lines = []
        for path in sorted((data_dir / "runs" / run_id / "rejected").glob("*.jsonl")):
            lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        found[str(dataset_id)] = [str(json.loads(line)["step"]) for line in lines]
    return found


def _account(rec: Recorder, rows: int, rejected: dict[str, list[str]]) -> Counter[str]:
    """Every uploaded row is downloaded or rejected with a reason; a failure for each dataset where not."""
    reasons: Counter[str] = Counter()
    for dataset_id, got in rec.downloaded.items():
        mine = rejected.get(dataset_id, [])
        reasons.update(mine)
        if got + len(mine) != rows:
            rec.fail(f"{dataset_id}: {got} rows downloaded and {len(mine)} rejected, of {rows} uploaded")
    return reasons


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"count": len(ordered), "p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


def _drive(
    args: argparse.Namespace, base_url: str, keys: list[str], tmp: Path, rec: Recorder
) -> dict[str, Any]:
    totals: dict[str, Counter[str]] = {"adaption": Counter(), "dataframer": Counter()}

    def one(kind: str, key: str) -> None:
        try:
            if kind == "adaption":
                got = adaption_client(rec, base_url, key, tmp, args.runs, args.rows)
            else:
                got = dataframer_client(rec, base_url, key, args.runs, args.samples)
            totals[kind].update(got)
        except Exception as exc:  # a client that died is itself a finding: report it, keep the others going
            rec.fail(f"{kind} client: {type(exc).__name__}: {exc}")

    kinds = ["adaption"] * args.clients + ["dataframer"] * args.df_clients
    with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
        list(pool.map(one, kinds, keys))
    return {kind: dict(counts) for kind, counts in totals.items()}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    load_before = os.getloadavg()
    postgres = os.environ.get("DATAMILL_TEST_POSTGRES_URL")
    rec = Recorder()
    extra = ["--error-rate", str(args.error_rate), "--echo"]
    fault = {"max_concurrent": args.provider_max_concurrent, "retry_after": 0.5, "extra_args": extra}
    with tempfile.TemporaryDirectory() as tmp, fake_server(args.latency, **fault) as (fake_url, _pid):
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        database_url = postgres or f"sqlite:///{data_dir / 'datamill.db'}"
        env = os.environ | {
            "DATAMILL_HOME": str(data_dir),
            "DATAMILL_DATABASE_URL": database_url,
            "DATAMILL_ROUTES": str(_routes(Path(tmp) / "routes.yaml", fake_url)),
            "DATAMILL_MODEL": LOAD_MODEL,
            "DATAMILL_RUN_EVALUATE": "0",
            "DATAMILL_WORKER_POLL_S": "0.2",
            "DATAMILL_RUN_BATCH_SIZE": "16",
        }
        keys = tenant_keys(database_url, args.clients + args.df_clients)
        base_url, server = start_serve(data_dir, env)
        try:
            started = time.perf_counter()
            done = _drive(args, base_url, keys, Path(tmp), rec)
            wall = time.perf_counter() - started
            server_cpu = process_cpu_s(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
        with urllib.request.urlopen(fake_url.removesuffix("/v1") + "/_fake/stats", timeout=5) as answer:
            provider = json.loads(answer.read())
        done["rejections"] = _account(rec, args.rows, _rejections(database_url, data_dir))
    result = _result(
        args, done, rec, wall, server_cpu, provider, load_before, "postgresql" if postgres else "sqlite"
    )
    out = Path(args.out) if args.out else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(result["summary_md"])
    return 0 if result["nothing_lost"] else 1


def _result(
    args: argparse.Namespace,
    done: dict[str, Any],
    rec: Recorder,
    wall: float,
    server_cpu: float,
    provider: dict[str, Any],
    load_before: tuple[float, float, float],
    database: str,
) -> dict[str, Any]:
    adapt, gen = done["adaption"], done["dataframer"]
    planned_adapt, planned_gen = args.clients * args.runs, args.df_clients * args.runs
    checks = {
        "adapt_runs": {
            "planned": planned_adapt,
            "launched": adapt.get("runs", 0),
            "succeeded": adapt.get("succeeded", 0),
        },
        "adapt_rows": {
            "uploaded": planned_adapt * args.rows,
            "downloaded_or_rejected": adapt.get("rows_downloaded", 0) + sum(done["rejections"].values()),
        },
        "dataframer_runs": {
            "planned": planned_gen,
            "launched": gen.get("runs", 0),
            "succeeded": gen.get("succeeded", 0),
        },
        "dataframer_samples": {"asked": planned_gen * args.samples, "in_zips": gen.get("samples_in_zip", 0)},
    }
    nothing_lost = not rec.failures and all(len(set(check.values())) == 1 for check in checks.values())
    requests = sum(rec.statuses.values())
    result: dict[str, Any] = {
        "params": vars(args) | {"database": database},
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "wall_s": round(wall, 2),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "server_cpu_s": round(server_cpu, 1),
        "operations": {op: _percentiles(values) for op, values in sorted(rec.latencies.items())},
        "server_statuses": {str(code): n for code, n in sorted(rec.statuses.items())},
        "provider": provider,
        "checks": checks,
        "rejected_rows_by_step": dict(done["rejections"].most_common()),
        "failures": rec.failures[:50],
        "nothing_lost": nothing_lost,
    }
    result["summary_md"] = _markdown(result)
    return result


def _markdown(r: dict[str, Any]) -> str:
    p, m = r["params"], r["machine"]
    lines = [
        f"Server under load: `datamill serve` ({p['database']}) in its own process, {p['clients']} Adaption "
        f"and {p['df_clients']} Dataframer SDK clients on threads, {p['runs']} run(s) each ({p['rows']} rows "
        f"per adapt run, {p['samples']} samples per generation run); the adapt runs' provider answers 500 to "
        f"{p['error_rate']:.0%} of calls and 429 above {p['provider_max_concurrent']} in flight, latency "
        f"{p['latency']} s. {m['cpus']} CPUs, load average before {m['loadavg_before'][0]:.2f}, after "
        f"{m['loadavg_after'][0]:.2f}.",
        "",
        f"{r['requests']} HTTP requests in {r['wall_s']} s: **{r['requests_per_s']} requests/s** "
        f"(polling included); server CPU {r['server_cpu_s']} s. Server answers by status: "
        + ", ".join(f"{code}: {n}" for code, n in r["server_statuses"].items())
        + ". Provider answers by status: "
        + ", ".join(f"{code}: {n}" for code, n in r["provider"]["statuses"].items())
        + ".",
        "",
        "| operation | calls | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for op, stats in r["operations"].items():
        lines.append(
            f"| {op} | {stats['count']} | {stats['p50_ms']} | {stats['p95_ms']} | {stats['p99_ms']} |"
        )
    c = r["checks"]
    adapt, rows, gen, samples = (
        c["adapt_runs"],
        c["adapt_rows"],
        c["dataframer_runs"],
        c["dataframer_samples"],
    )
    rejected = ", ".join(f"{n} by {step}" for step, n in r["rejected_rows_by_step"].items()) or "none"
    lines += [
        "",
        f"Nothing lost: **{'yes' if r['nothing_lost'] else 'NO'}**. Adapt runs {adapt['succeeded']}/"
        f"{adapt['planned']} succeeded, rows downloaded or rejected with a reason "
        f"{rows['downloaded_or_rejected']}/{rows['uploaded']} (rejected: {rejected}); generation "
        f"runs {gen['succeeded']}/{gen['planned']} succeeded, samples in the ZIPs {samples['in_zips']}/"
        f"{samples['asked']}.",
        "Nothing lost means every uploaded row is in its run's download or among its rejected rows with a "
        "reason, and every sample of every generation run is in its ZIP. Latency is per SDK call, the SDK's "
        "own retries included; a poll is one `get_status`/`retrieve`.",
    ]
    if r["failures"]:
        lines += ["", "Failures:", *[f"- {f}" for f in r["failures"][:10]]]
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="Adaption SDK clients")
    parser.add_argument("--df-clients", type=int, default=4, help="Dataframer SDK clients")
    parser.add_argument("--runs", type=int, default=1, help="runs per client")
    parser.add_argument("--rows", type=int, default=40, help="rows per adapt run")
    parser.add_argument("--samples", type=int, default=4, help="samples per generation run")
    parser.add_argument("--latency", type=float, default=0.05, help="the fake provider's latency, seconds")
    parser.add_argument(
        "--error-rate", type=float, default=0.05, help="share of provider answers that are 500"
    )
    parser.add_argument("--provider-max-concurrent", type=int, default=16, help="provider 429s above this")
    parser.add_argument("--out", default=None, help=f"result file (default {RESULTS})")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
