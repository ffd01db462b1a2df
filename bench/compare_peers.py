"""The rephrase + completion workload written the way each peer's documentation says, for the side by side.

Runs inside ``bench/.venv-compare`` (the peers are not project dependencies), so it must not import datamill.
Each tool makes two model calls per row, as datamill's ``adapt --recipes rephrase`` does: rephrase the
prompt, then write a completion for the rephrased prompt. Every tool is pointed at the same fake server with
its documented OpenAI-compatible ``base_url`` setting and a concurrency of C, with its cache off:

- Bespoke Curator: two ``curator.LLM`` subclasses, ``backend="openai"``, ``backend_params`` with ``base_url``,
  ``max_concurrent_requests=C`` and rate limits far above anything reachable; ``CURATOR_DISABLE_CACHE=1``.
- distilabel: a ``Pipeline`` of ``LoadDataFromDicts >> TextGeneration >> TextGeneration`` on ``OpenAILLM``;
  its async LLM sends one batch concurrently, so ``input_batch_size=C`` sets the concurrency;
  ``run(use_cache=False)``.

Prints one JSON line: rows written and the seconds spent importing and working.

    bench/.venv-compare/bin/python -m bench.compare_peers --tool curator --input rows.jsonl \
        --output out.jsonl --base-url http://127.0.0.1:8711/v1 --concurrency 256
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

MODEL = "bench-model"
REPHRASE = "Rephrase this prompt so it is clear and specific, keeping its meaning:\n\n{prompt}"
# Huge limits: the fake server has none, and we want the concurrency setting alone to bound the tools.
UNLIMITED_PER_MINUTE = 100_000_000


def _read(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def run_curator(rows: list[dict[str, Any]], base_url: str, concurrency: int) -> list[dict[str, Any]]:
    """Two chained Curator LLMs; returns the rows with ``rephrased`` and ``completion``."""
    from bespokelabs import curator

    class Rephraser(curator.LLM):  # type: ignore[misc]
        def prompt(self, row: dict[str, Any]) -> str:
            return REPHRASE.format(prompt=row["prompt"])

        def parse(self, row: dict[str, Any], response: str) -> dict[str, Any]:
            return {**row, "rephrased": response}

    class Completer(curator.LLM):  # type: ignore[misc]
        def prompt(self, row: dict[str, Any]) -> str:
            return str(row["rephrased"])

        def parse(self, row: dict[str, Any], response: str) -> dict[str, Any]:
            return {**row, "completion": response}

    params = {
        "base_url": base_url,
        "api_key": "bench",
        "max_concurrent_requests": concurrency,
        "max_requests_per_minute": UNLIMITED_PER_MINUTE,
        "max_tokens_per_minute": UNLIMITED_PER_MINUTE,
        "max_retries": 3,
    }
    rephrased = Rephraser(model_name=MODEL, backend="openai", backend_params=params)(rows)
    completed = Completer(model_name=MODEL, backend="openai", backend_params=params)(rephrased.dataset)
    return [dict(r) for r in completed.dataset]


def run_distilabel(rows: list[dict[str, Any]], base_url: str, concurrency: int) -> list[dict[str, Any]]:
    """``LoadDataFromDicts >> TextGeneration >> TextGeneration``; returns the final rows."""
    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import TextGeneration

    def llm() -> Any:
        return OpenAILLM(model=MODEL, base_url=base_url, api_key="bench", max_retries=3, timeout=120)

    with Pipeline(name="bench-compare") as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": r["prompt"]} for r in rows], batch_size=concurrency)
        rephrase = TextGeneration(
            name="rephrase",
            llm=llm(),
            template=REPHRASE.replace("{prompt}", "{{ instruction }}"),
            input_batch_size=concurrency,
            output_mappings={"generation": "rephrased", "model_name": "rephrase_model"},
        )
        complete = TextGeneration(
            name="complete",
            llm=llm(),
            input_mappings={"instruction": "rephrased"},
            input_batch_size=concurrency,
            output_mappings={"generation": "completion"},
        )
        load >> rephrase >> complete
    distiset = pipeline.run(use_cache=False)
    return [dict(r) for r in distiset["default"]["train"]]


RUNNERS = {"curator": run_curator, "distilabel": run_distilabel}


def main(argv: list[str] | None = None) -> None:
    """Run one tool on the input rows and print ``{"rows_out", "work_s", "import_s"}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", choices=tuple(RUNNERS), required=True)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args(argv)
    rows = _read(args.input)
    started = time.perf_counter()
    out = RUNNERS[args.tool](rows, args.base_url, args.concurrency)
    work = time.perf_counter() - started
    _write(args.output, out)
    print(json.dumps({"rows_out": len(out), "work_s": round(work, 3)}), flush=True)


if __name__ == "__main__":
    main()
