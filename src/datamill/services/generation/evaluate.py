"""Evaluating generated samples as a library: a spec file and a run's output in, the evaluation out.

`evaluate_samples_async` reads the spec and the samples (``OUT.jsonl`` or a folder, as `datamill generate`
writes them, with the values drawn for each), has the judge model classify every sample on every property
(`datamill.pipelines.generation_eval`) and, when asked, writes the report as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamill.llm.gateway import Gateway
from datamill.pipelines.generation_eval import DEFAULT_CONCURRENCY, GenerationEvaluation, evaluate_generation
from datamill.pipelines.generation_eval_samples import read_samples
from datamill.services.adaptation.adapt import make_gateway
from datamill.services.generation.library import read_spec
from datamill.services.settings.entry import Settings


@dataclass(frozen=True)
class EvaluateJob:
    """What to evaluate: the spec, the samples, where the JSON report goes (if anywhere), the judge."""

    spec_path: Path
    samples_path: Path
    output_path: Path | None = None
    model: str | None = None
    use_cache: bool = True
    concurrency: int = DEFAULT_CONCURRENCY


@dataclass(frozen=True)
class EvaluationReport:
    """The evaluation with the judge model that made it and what its calls cost."""

    evaluation: GenerationEvaluation
    model: str
    usage: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"evaluation_model": self.model, **self.evaluation.to_dict(), "usage": self.usage}


async def evaluate_samples_async(
    job: EvaluateJob, *, settings: Settings | None = None, gateway: Gateway | None = None
) -> EvaluationReport:
    """Classify the samples with the judge (``job.model``, else the gateway's ``judge`` role).

    Raises:
        ValidationError: the spec or the samples cannot be read.
        EvaluationFailed: no sample could be classified.
    """
    spec = read_spec(job.spec_path)
    samples = read_samples(job.samples_path)
    settings = settings or Settings.from_env()
    own = gateway is None
    gateway = gateway or make_gateway(settings, use_cache=job.use_cache)
    try:
        model = gateway.model(job.model) if job.model else gateway.role("judge")
        evaluation = await evaluate_generation(spec, samples, model, concurrency=job.concurrency)
        report = EvaluationReport(evaluation, model.name, gateway.usage.snapshot())
    finally:
        if own:
            await gateway.aclose()
    if job.output_path is not None:
        job.output_path.parent.mkdir(parents=True, exist_ok=True)
        job.output_path.write_text(
            json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8"
        )
    return report
