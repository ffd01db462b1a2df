"""Evaluating a generation run: a judge classifies every sample on every property of the spec.

The judge sees the spec's description, each property with its values, and the sample (cut to
`MAX_CLASSIFIED_CHARS`), but not the values drawn for it, and answers one JSON object under
`classification_schema`: for each property one of its values, or ``unclear``. The gateway validates the
reply against the schema and makes one repair call when it does not match; a classification that still
fails (or any other model error on that sample) is recorded with its error and the sample counts as not
analysed. An error that would fail every call the same way (unknown model, bad key) stops the evaluation,
and so does a run of samples none of which could be classified (`EvaluationFailed`).

At most `DEFAULT_CONCURRENCY` samples are classified at once; the gateway's per-model limiters bound the
calls further. The numbers computed from the classifications are defined in
`datamill.pipelines.generation_eval_report`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datamill.core.errors import DatamillError, ModelError, fails_every_row
from datamill.core.spec import Spec
from datamill.llm.types import ChatRequest
from datamill.pipelines.generation_eval_report import (
    UNCLEAR,
    SampleResult,
    areas,
    conformance_score,
    distribution_analysis,
)
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Samples classified at once.
DEFAULT_CONCURRENCY = 16
#: Longest sample text the judge reads, in characters (about 3,000 tokens).
MAX_CLASSIFIED_CHARS = 12_000
CUT_MARKER = " [cut for classification]"
#: Usage tag of the classification calls.
TAG = "generation_eval"


class EvaluationFailed(DatamillError):
    """No sample could be classified."""


@dataclass(frozen=True)
class EvalSample:
    """A generated sample to evaluate: its name (``sample_<n>``), text (JSON text for rows), drawn values."""

    identifier: str
    text: str
    drawn: dict[str, str] = field(default_factory=dict)


@dataclass
class EvalCounters:
    """Live progress: samples classified and samples whose classification failed."""

    done: int = 0
    failed: int = 0


@dataclass(frozen=True)
class GenerationEvaluation:
    """What an evaluation found (see `datamill.pipelines.generation_eval_report` for the definitions)."""

    distribution_analysis: list[dict[str, Any]]
    samples: list[SampleResult]
    conformance_score: float | None
    conformant_areas: list[dict[str, Any]]
    non_conformant_areas: list[dict[str, Any]]

    @property
    def samples_analysed(self) -> int:
        return sum(r.analysed for r in self.samples)

    def sample_classifications(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.samples]

    def to_dict(self) -> dict[str, Any]:
        return {
            "conformance_score": self.conformance_score,
            "total_samples": len(self.samples),
            "samples_analyzed": self.samples_analysed,
            "distribution_analysis": self.distribution_analysis,
            "conformant_areas": self.conformant_areas,
            "non_conformant_areas": self.non_conformant_areas,
            "sample_classifications": self.sample_classifications(),
        }


def classification_schema(spec: Spec) -> dict[str, Any]:
    """The reply's JSON schema: every property, each one of its values or ``unclear``."""
    properties = {
        axis.name: {"type": "string", "enum": list(dict.fromkeys((*axis.values, UNCLEAR)))}
        for axis in spec.axes
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


class SampleClassifier:
    """Classifies one sample on every property of ``spec`` with the judge ``model``."""

    def __init__(self, spec: Spec, model: ModelHandle, *, seed: int = 0) -> None:
        self.spec = spec
        self.model = model
        self.seed = seed
        self.schema = classification_schema(spec)
        self.template = load_template("gen_classify")
        self._axes = [
            {"name": a.name, "description": a.description or "", "options": list(a.values)} for a in spec.axes
        ]

    def request(self, sample: EvalSample) -> ChatRequest:
        text = sample.text
        if len(text) > MAX_CLASSIFIED_CHARS:
            text = text[:MAX_CLASSIFIED_CHARS] + CUT_MARKER
        messages = self.template.render(description=self.spec.description, axes=self._axes, sample=text)
        # Room for every property's name and value, and a margin for models that pad their JSON.
        budget = 64 + sum(16 + len(a.name) + max(map(len, a.values)) for a in self.spec.axes)
        return ChatRequest(
            messages, max_tokens=budget, temperature=0.0, json_schema=self.schema, seed=self.seed
        )

    async def classify(self, sample: EvalSample) -> SampleResult:
        """The sample's classifications, or the error that prevented them (a run-stopping one is raised)."""
        try:
            result = await self.model.chat(self.request(sample), tag=TAG)
        except ModelError as exc:
            if fails_every_row(exc):
                raise
            return SampleResult(sample.identifier, dict(sample.drawn), {}, f"{type(exc).__name__}: {exc}")
        data = result.data if isinstance(result.data, dict) else {}
        classified = {a.name: str(data[a.name]) for a in self.spec.axes if a.name in data}
        return SampleResult(sample.identifier, dict(sample.drawn), classified)


async def evaluate_generation(
    spec: Spec,
    samples: Sequence[EvalSample],
    model: ModelHandle,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    counters: EvalCounters | None = None,
    seed: int = 0,
) -> GenerationEvaluation:
    """Classify ``samples`` on every property of ``spec`` and compute the evaluation.

    Raises:
        EvaluationFailed: there were samples and properties, but no sample could be classified.
        ModelError: an error that would fail every call (unknown model, rejected key).
    """
    counters = counters if counters is not None else EvalCounters()
    if spec.axes and samples:
        results = await _classify_all(
            SampleClassifier(spec, model, seed=seed), samples, concurrency, counters
        )
    else:
        results = [SampleResult(s.identifier, dict(s.drawn), {}) for s in samples]
    if spec.axes and results and not any(r.analysed for r in results):
        first = next(r.error for r in results if r.error)
        raise EvaluationFailed(
            f"none of the {len(results)} samples could be classified; first error: {first}"
        )
    analysis = distribution_analysis(spec, results)
    good, bad = areas(spec, results, analysis)
    return GenerationEvaluation(analysis, results, conformance_score(results), good, bad)


async def _classify_all(
    classifier: SampleClassifier, samples: Sequence[EvalSample], concurrency: int, counters: EvalCounters
) -> list[SampleResult]:
    results: list[SampleResult | None] = [None] * len(samples)
    pending = iter(range(len(samples)))

    async def work() -> None:
        for i in pending:
            result = await classifier.classify(samples[i])
            results[i] = result
            counters.done += 1
            counters.failed += not result.analysed

    workers = [asyncio.create_task(work()) for _ in range(min(max(1, concurrency), len(samples)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:  # a run-stopping error: stop the other workers, then raise it as it is
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return [r for r in results if r is not None]
