"""Side by side with the tools users would pick instead: Bespoke Curator, distilabel, and the dedup libraries.

Workload 1, LLM throughput: the same ``--rows`` (10,000) prompts rephrased and then completed (2 calls per
row) by datamill (``datamill adapt --recipes rephrase``), Bespoke Curator and distilabel (``compare_peers``),
each client a separate process pointed at a fresh fake OpenAI-compatible server (``compare_server``, its own
process) answering after L seconds, at concurrency C (256 and 64). Caches are off everywhere and nothing
leaves loopback. Figures, measured from outside the client (``compare_measure``): wall time including
start-up, client CPU of the whole process tree, peak memory (tree PSS), calls the server answered, and the
ratio datamill / each peer. The best any tool can do is ``ceil(2N / C) * L``.

Workload 2, near-dedup: ``bench.dedup`` on the same planted corpus with datasketch, rensa and text-dedup run
from the compare venv, at threshold 0.8 and 128 permutations.

The peers live in ``bench/.venv-compare`` (``make bench-compare``), never in the project's dependencies. When
that venv is missing this writes a summary saying so and exits 0, so ``make bench`` still runs.

    python -m bench.compare_tools [--rows 10000] [--concurrency 256 64] [--dedup-docs 100000]
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.compare_dedup import PEERS_PYTHON, ROOT
from bench.compare_measure import run_measured
from bench.compare_report import summary_md

RESULTS = ROOT / "bench" / "results" / "compare_tools.json"
TOOLS = ("datamill", "curator", "distilabel")
CALLS_PER_ROW = 2
TOPICS = ("basil", "sourdough", "a bike chain", "tax forms", "a cover letter", "Python decorators", "jet lag")


def main(argv: list[str] | None = None) -> int:
    """Run the workloads the compare venv allows and write ``bench/results/compare_tools.json``."""
    args = _parse(argv)
    result: dict[str, Any] = {"benchmark": "compare_tools", "run_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    result["machine"] = {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg()}
    if not PEERS_PYTHON.exists():
        result["summary_md"] = "Peers not installed: run `make bench-compare` first."
        _write(args.results, result)
        print(result["summary_md"])
        return 0
    result["params"] = {"rows": args.rows, "latency_s": args.latency, "concurrency": args.concurrency}
    previous = json.loads(args.results.read_text()) if args.merge and args.results.exists() else {}
    result["llm"] = [] if args.skip_llm else _llm_runs(args)
    if previous:
        redone = {(r["tool"], r["concurrency"]) for r in result["llm"]}
        kept = [r for r in previous.get("llm", []) if (r["tool"], r["concurrency"]) not in redone]
        for r in kept:
            r.setdefault("measured_at", str(previous.get("run_at", "earlier"))[:16])
        result["llm"] = sorted(
            kept + result["llm"], key=lambda r: (-r["concurrency"], TOOLS.index(r["tool"]))
        )
    if not args.skip_dedup:
        result["dedup"] = _dedup(args.dedup_docs)
    elif "dedup" in previous:
        result["dedup"] = previous["dedup"]
    result["machine"]["loadavg_after"] = os.getloadavg()
    result["summary_md"] = summary_md(result)
    _write(args.results, result)
    print(result["summary_md"])
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[256, 64])
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--dedup-docs", type=int, default=100_000, help="1000000 for the 1M run")
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--skip-dedup", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--merge", action="store_true", help="keep the results on disk for the runs and parts not redone"
    )
    return parser.parse_args(argv)


def _llm_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    # The peers' wheels were byte-compiled when pip installed them; datamill's editable sources compile on
    # first import. Compile them now, so no tool's figures include compiling its own code.
    compileall.compile_dir(ROOT / "src" / "datamill", quiet=1)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp_name:
        tmp = Path(tmp_name)
        rows = tmp / "rows.jsonl"
        _write_rows(rows, args.rows)
        for concurrency in args.concurrency:
            for tool in args.tools:
                print(f"== {tool}: {args.rows:,} rows, C={concurrency}, L={args.latency}", flush=True)
                run = _one_run(tool, rows, args, concurrency, tmp / f"{tool}-{concurrency}")
                print(json.dumps(run), flush=True)
                runs.append(run)
    return runs


def _write_rows(path: Path, count: int) -> None:
    """``count`` distinct prompts (distinct, so no tool can answer one from another)."""
    with path.open("w") as f:
        for i in range(count):
            topic = TOPICS[i % len(TOPICS)]
            f.write(
                json.dumps({"prompt": f"Question {i}: what is the most common mistake with {topic}?"}) + "\n"
            )


def _one_run(tool: str, rows: Path, args: argparse.Namespace, concurrency: int, work: Path) -> dict[str, Any]:
    """One tool against its own fresh server; the figures and the server's call count."""
    work.mkdir()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.compare_server", "--port", str(port), "--latency", str(args.latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "listening on ..." once it accepts connections
        cmd, env = _client(tool, rows, work, base_url, concurrency)
        load_before = os.getloadavg()[0]
        measured = run_measured(cmd, env=env, cwd=ROOT, log=work / "client.log")
    finally:
        server.terminate()
        stats_line, _ = server.communicate(timeout=30)
    stats = json.loads(stats_line.strip().splitlines()[-1]) if stats_line.strip() else {}
    output = work / "out.jsonl"
    rows_out = sum(1 for _ in output.open()) if output.exists() else 0
    ideal = math.ceil(CALLS_PER_ROW * args.rows / concurrency) * args.latency
    calls = stats.get("calls", 0)
    return {
        "tool": tool,
        "concurrency": concurrency,
        "rows_in": args.rows,
        "rows_out": rows_out,
        "loadavg_before": round(load_before, 2),
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        **measured.to_dict(),
        "calls": calls,
        "server_statuses": stats.get("statuses", {}),
        "server_max_in_flight": stats.get("max_in_flight"),
        "calls_per_s": calls / measured.wall_s,
        "ideal_wall_s": ideal,
        "ratio_to_bound": (calls / measured.wall_s) / (concurrency / args.latency),
        "cpu_ms_per_row": 1000 * measured.cpu_s / args.rows,
        "client_log_tail": (work / "client.log").read_text(errors="replace")[-1500:]
        if measured.exit_code
        else "",
    }


def _client(
    tool: str, rows: Path, work: Path, base_url: str, concurrency: int
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run ``tool`` on ``rows``, offline and without a cache."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY") and not k.endswith("_proxy")}
    env.update(
        {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OPENAI_API_KEY": "bench", "NO_COLOR": "1"}
    )
    out = work / "out.jsonl"
    if tool == "datamill":
        routes = work / "routes.yaml"
        routes.write_text(_routes_yaml(base_url, concurrency))
        env["DATAMILL_DATA_DIR"] = str(work / "data")
        datamill = str(Path(sys.executable).with_name("datamill"))
        cmd = [datamill, "adapt", str(rows), "--prompt", "prompt", "--recipes", "rephrase", "--no-near-dedup"]
        # The peers neither check drift nor grade: turn off the steps they do not have.
        cmd += ["--no-rephrase-check", "--no-eval", "--no-cache", "-q", "--routes", str(routes)]
        return [*cmd, "--model", "bench/model", "-o", str(out)], env
    site = next((PEERS_PYTHON.parent.parent / "lib").glob("python3*/site-packages"))
    env.update(
        {
            # Curator counts tokens with tiktoken, which downloads its tables unless given litellm's copy.
            "TIKTOKEN_CACHE_DIR": str(site / "litellm" / "litellm_core_utils" / "tokenizers"),
            "CURATOR_DISABLE_CACHE": "1",
            "CURATOR_CACHE_DIR": str(work / "curator"),
            "TELEMETRY_ENABLED": "false",
            "DISTILABEL_CACHE_DIR": str(work / "distilabel"),
        }
    )
    cmd = [str(PEERS_PYTHON), "-m", "bench.compare_peers", "--tool", tool, "--input", str(rows)]
    return [*cmd, "--output", str(out), "--base-url", base_url, "--concurrency", str(concurrency)], env


def _routes_yaml(base_url: str, concurrency: int) -> str:
    return (
        "default_model: bench/model\n"
        "routes:\n"
        "  bench/*:\n"
        "    provider: openai\n"
        f"    base_url: {base_url}\n"
        '    model: "{suffix}"\n'
        f"    max_concurrency: {concurrency}\n"
        "    timeout_s: 120\n"
        "    input_price: 0.5\n"
        "    output_price: 1.5\n"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dedup(docs: int) -> dict[str, Any]:
    """``bench.dedup`` with every engine it can find (the peers from the compare venv), docs corpus only."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "dedup.json"
        cmd = [
            sys.executable,
            "-m",
            "bench.dedup",
            "--docs",
            str(docs),
            "--prompts",
            "0",
            "--results",
            str(out),
        ]
        code = subprocess.call(cmd, cwd=ROOT)
        if code != 0 or not out.exists():
            return {"error": f"bench.dedup exited with code {code}"}
        data: dict[str, Any] = json.loads(out.read_text())
        return data


def _write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
