"""Estimate vs actual: quote the bundled sample, run it on the bundled model, and compare tokens and calls.

The bundled sample (``datamill/samples/support.csv``: question, answer, product) is estimated with recipes
deduplication + prompt rephrase and length ``concise``, then adapted for real with
``local/smollm2-135m-instruct`` in a temporary ``DATAMILL_HOME`` (so the response cache is cold). The estimate
is made twice, with the bundled vocabulary and with the characters/4 heuristic, to show what the tokenizer
contributes. The target is a total-token estimate within 15% of actual. Usage::

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

from datamill.api.adapt import AdaptJob, adapt_file
from datamill.api.settings import Settings
from datamill.core import parse_adapt_request
from datamill.dataio import count_rows, open_dataset
from datamill.llm.gateway import Gateway
from datamill.llm.routing import Routing
from datamill.llm.tokenizer import HeuristicTokenizer, LlamaVocabTokenizer, Tokenizer
from datamill.pipelines.estimate import Estimate, compare, comparison_markdown, estimate_plan, take_sample
from datamill.pipelines.plan import plan_adaptation

RESULTS = Path(__file__).parent / "results" / "estimate_accuracy.json"
MODEL = "local/smollm2-135m-instruct"
TARGET = 0.15
BODY: dict[str, Any] = {
    "column_mapping": {"prompt": "question", "completion": "answer", "context": ["product"]},
    "recipe_specification": {"recipes": {"deduplication": True, "prompt_rephrase": True}},
    "brand_controls": {"length": "concise"},
}


def main() -> int:
    sample = Path(str(resources.files("datamill.samples") / "support.csv"))
    started = time.perf_counter()
    estimates = {
        "vocab": asyncio.run(_estimate(sample, LlamaVocabTokenizer())),
        "heuristic": asyncio.run(_estimate(sample, HeuristicTokenizer())),
    }
    estimate_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as home:
        os.environ["DATAMILL_HOME"] = home
        job = AdaptJob(input_path=sample, output_path=Path(home) / "out.jsonl", model=MODEL, use_cache=False)
        started = time.perf_counter()
        summary = adapt_file(job, BODY, settings=Settings.from_env()).to_dict()
        run_s = time.perf_counter() - started
    comparisons = {name: compare(est, summary) for name, est in estimates.items()}
    result = {
        "model": MODEL,
        "request": BODY,
        "steps": summary["steps"],
        "estimate_s": estimate_s,
        "run_s": run_s,
        "actual": {
            k: summary[k] for k in ("calls", "input_tokens", "output_tokens", "rows_out", "elapsed_s")
        },
        "actual_by_step": summary["usage_by_step"],
        "estimates": {name: est.to_dict() for name, est in estimates.items()},
        "comparisons": comparisons,
        "target_total_token_error": TARGET,
    }
    result["summary_md"] = _summary_md(result, estimates, comparisons)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str))
    print(result["summary_md"])
    return 0


async def _estimate(path: Path, tokenizer: Tokenizer) -> Estimate:
    request = parse_adapt_request(BODY)
    async with Gateway(Routing.load()) as gateway:
        plan = plan_adaptation(request, gateway.model(MODEL), total_rows=count_rows(path))
        with open_dataset(path) as reader:
            rows = take_sample(reader, plan)
        return await estimate_plan(plan, rows, request=request, tokenizer=tokenizer)


def _summary_md(result: dict[str, Any], estimates: dict[str, Estimate], comparisons: dict[str, Any]) -> str:
    lines = [
        f"Bundled sample ({result['actual']['rows_out']} output rows, steps {', '.join(result['steps'])}) "
        f"on `{MODEL}`: run took {result['run_s']:.1f} s, estimated {estimates['vocab'].minutes * 60:.0f} s "
        f"(including {20:.0f} s fixed overhead).",
        "",
    ]
    for name, cmp in comparisons.items():
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
