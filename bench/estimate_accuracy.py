"""Estimate vs actual: quote the bundled sample, run it on the bundled model, and compare tokens and calls.

The bundled sample (``datamill/samples/support.csv``: question, answer, product) is adapted with recipes
deduplication + prompt rephrase and length ``concise`` on ``local/smollm2-135m-instruct``, in a temporary
``DATAMILL_HOME`` (so the response cache is cold) and without the after-run evaluation (it is not part of the
plan an estimate quotes). The run quotes itself before it starts (``AdaptSummary.estimate``, counted with the
bundled vocabulary) and compares after (``estimate_vs_actual``); a second quote with the characters/4
heuristic shows what the tokenizer contributes. The target is a total-token estimate within 15% of actual.
Usage::

    python -m bench.estimate_accuracy

Writes ``bench/results/estimate_accuracy.json`` (with ``summary_md``) and prints the summary. Measures; never
asserts. Needs llama-cpp-python and the bundled weights.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

from datamill.core import parse_adapt_request
from datamill.core.run_options import RunOptions
from datamill.dataio import count_rows, open_dataset
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.pipelines.estimate import (
    FIXED_OVERHEAD_S,
    Estimate,
    estimate_plan,
    take_sample,
)
from datamill.pipelines.estimate_compare import compare, comparison_markdown
from datamill.pipelines.plan import plan_adaptation
from datamill.services.adaptation.adapt import AdaptJob, adapt_file
from datamill.services.settings.entry import Settings
from datamill.text.tokenizer import HeuristicTokenizer, Tokenizer

RESULTS = Path(__file__).parent / "results" / "estimate_accuracy.json"
MODEL = "local/smollm2-135m-instruct"
TARGET = 0.15
BODY: dict[str, Any] = {
    "column_mapping": {"prompt": "question", "completion": "answer", "context": ["product"]},
    "recipe_specification": {"recipes": {"deduplication": True, "prompt_rephrase": True}},
    "brand_controls": {"length": "concise"},
}


def main() -> int:
    load_before = os.getloadavg()
    sample = Path(str(resources.files("datamill.samples") / "support.csv"))
    with tempfile.TemporaryDirectory() as home:
        # The evaluation judges a sample after the run; it is not part of the plan the estimate quotes.
        options = RunOptions(evaluate=False)
        out = Path(home) / "out.jsonl"
        job = AdaptJob(input_path=sample, output_path=out, model=MODEL, use_cache=False, options=options)
        started = time.perf_counter()
        summary = adapt_file(job, BODY, settings=Settings.from_env({"DATAMILL_HOME": home})).to_dict()
        run_s = time.perf_counter() - started
    # The run quotes itself before it starts (default tokenizer: the bundled vocabulary) and compares after.
    estimates = {"vocab": summary["estimate"]}
    comparisons = {"vocab": summary["estimate_vs_actual"]}
    heuristic = asyncio.run(_estimate(sample, HeuristicTokenizer(), options))
    estimates["heuristic"] = heuristic.to_dict()
    comparisons["heuristic"] = compare(heuristic, summary)
    result = {
        "model": MODEL,
        "request": BODY,
        "steps": summary["steps"],
        "run_s": run_s,
        "actual": {
            k: summary[k] for k in ("calls", "input_tokens", "output_tokens", "rows_out", "elapsed_s")
        },
        "actual_by_step": summary["usage_by_step"],
        "estimates": estimates,
        "comparisons": comparisons,
        "target_total_token_error": TARGET,
        "load_avg_before": load_before,
    }
    result["summary_md"] = _summary_md(result)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str))
    print(result["summary_md"])
    return 0


async def _estimate(path: Path, tokenizer: Tokenizer, options: RunOptions) -> Estimate:
    request = parse_adapt_request(BODY)
    async with Gateway(Routing.load()) as gateway:
        plan = plan_adaptation(request, gateway.model(MODEL), total_rows=count_rows(path), options=options)
        with open_dataset(path) as reader:
            rows = take_sample(reader, plan)
        return await estimate_plan(plan, rows, request=request, tokenizer=tokenizer)


def _summary_md(result: dict[str, Any]) -> str:
    minutes = result["estimates"]["vocab"]["minutes"]
    lines = [
        f"Bundled sample ({result['actual']['rows_out']} output rows, steps {', '.join(result['steps'])}) "
        f"on `{MODEL}`: the run took {result['run_s']:.1f} s, estimated {minutes * 60:.0f} s "
        f"(including {FIXED_OVERHEAD_S:.0f} s fixed overhead); timings depend on the machine's load "
        f"(1-min load average {result['load_avg_before'][0]:.1f} before the run).",
        "",
    ]
    for name, cmp in result["comparisons"].items():
        error = cmp["total_tokens"]["error"]
        verdict = "within" if error is not None and abs(error) <= TARGET else "outside"
        lines += [
            f"### tokenizer: {name} (total-token error {error:+.1%}, {verdict} the ±{TARGET:.0%} target)",
            "",
            comparison_markdown(cmp),
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
