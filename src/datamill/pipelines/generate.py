"""A generation run: exactly ``number_of_samples`` samples that pass the quality gates, or a clear failure.

The run has N *slots*. Slot i draws its property values once, from the spec's distributions with a seeded
RNG (conditionals honoured), before any model call; then candidates for it are made until one passes:

    pick seed examples → outline (unless skipped) → draft → calculator (when asked) → revisions → gates

(see `datamill.steps.generation`). A candidate failing a gate is discarded and the slot tries again with a
new attempt number (new request seeds, so no cache hit). Keeping the draw per slot means a property value
that is hard to get right is retried, not replaced by an easier one, so the delivered mix follows the spec.

Candidate budget: at most `CANDIDATE_BUDGET_FACTOR` × N candidates in all. When it is spent before N samples
pass, the run raises `GenerationBudgetSpent`, whose message gives the pass rate. An empty sample is always
rejected, even with no filtering requested. A call whose reply is not an answer (the gateway's
`UnusableReplyError`: a refusal, a reply cut off at the token limit, an empty or filtered one) fails
the candidate under a gate of that name (``refusal``, ``truncated``, ``empty``, ``content_filter``), whichever
call it was (outline, section, field, calculator fix or revision), so no cut or refused text is delivered; a
conformance judge that gives no verdict fails the candidate under ``conformance``, with a reason naming why.
Any other model error on one candidate counts as a failed candidate (gate ``error``), unless it would fail
every call the same way (bad key, unknown model, unreachable endpoint, no quota), which stops the run.

Concurrency: `DEFAULT_CONCURRENCY` slots are worked on at once; the gateway's per-model limiters bound the
calls further.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datamill.core.errors import DatamillError, ModelError, UnusableReplyError, fails_every_row
from datamill.core.generation_request import FilteringType, GenerationRequest, Tool
from datamill.core.spec import Spec, sample_properties
from datamill.llm.judge_choice import RUN_SETTING, JudgeChoice, choose_judge
from datamill.steps.generation.calculator import CalculatorCheck
from datamill.steps.generation.gates import ConformanceGate, StructuralGate
from datamill.steps.generation.novelty import NoveltyFilter
from datamill.steps.generation.reviser import SampleReviser
from datamill.steps.generation.sample import SampleTask, SeedPicker
from datamill.steps.generation.seeds import SeedSet, field_schema
from datamill.steps.generation.writer import Draft, OutputCut, SampleWriter, WriterOptions
from datamill.steps.injection import InjectedOutput

if TYPE_CHECKING:
    from datamill.llm.gateway import Gateway, ModelHandle

#: Candidates a run may make, as a multiple of the samples asked for.
CANDIDATE_BUDGET_FACTOR = 3
#: Slots worked on at once.
DEFAULT_CONCURRENCY = 16


class GenerationBudgetSpent(DatamillError):
    """Fewer samples passed the gates than asked for when the candidate budget ran out."""

    def __init__(self, summary: GenerationSummary) -> None:
        self.summary = summary
        super().__init__(
            f"only {summary.delivered} of {summary.requested} samples passed the quality gates after "
            f"{summary.candidates} candidates (pass rate {summary.pass_rate:.0%}; budget "
            f"{CANDIDATE_BUDGET_FACTOR}× the samples asked for); rejections: {summary.rejected_by_gate}; "
            f"first reasons: {summary.reasons}"
        )


@dataclass(frozen=True)
class GeneratedSample:
    """A delivered sample: its slot (1-based), text (JSON text when structured) and drawn properties."""

    slot: int
    text: str
    properties: dict[str, str]
    attempts: int


@dataclass
class GenerationCounters:
    """Live progress, read by a progress bar or a server while the run goes."""

    samples_completed: int = 0
    samples_failed: int = 0
    candidates: int = 0


@dataclass(frozen=True)
class GenerationSummary:
    """What a run did: samples, candidates, pass rate, rejections per gate, usage and cost."""

    requested: int
    delivered: int
    candidates: int
    rejected_by_gate: dict[str, int]
    usage: dict[str, Any] = field(default_factory=dict)
    runtime_params: dict[str, Any] = field(default_factory=dict)
    #: The first rejection reason seen for each gate, to show why candidates fail.
    reasons: dict[str, str] = field(default_factory=dict)
    #: The model that answered the conformance gate (None without the gate).
    conformance_model: str | None = None
    #: How that judge was chosen (`JudgeChoice.to_dict`; None without the gate).
    judge: dict[str, Any] | None = None
    #: What a reader should know about how the samples were judged.
    notes: list[str] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.delivered / self.candidates if self.candidates else 0.0

    @property
    def cost_usd(self) -> float:
        return float(self.usage.get("total", {}).get("cost_usd", 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "delivered": self.delivered,
            "candidates": self.candidates,
            "pass_rate": round(self.pass_rate, 4),
            "rejected_by_gate": dict(self.rejected_by_gate),
            "rejection_reasons": dict(self.reasons),
            "cost_usd": self.cost_usd,
            "usage": self.usage,
            "runtime_params": self.runtime_params,
            "conformance_model": self.conformance_model,
            "judge": self.judge,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class GenerationResult:
    samples: list[GeneratedSample]
    summary: GenerationSummary


@dataclass(frozen=True)
class GenerationModels:
    """The models of a run; ``judge`` answers the conformance gate, chosen as ``judge_choice`` says.

    ``judge_choice`` is None only when the models were put together by hand; the run then reports the judge
    as set by the run.
    """

    generation: ModelHandle
    outline: ModelHandle
    revision: ModelHandle
    judge: ModelHandle
    judge_choice: JudgeChoice | None = None

    @classmethod
    def resolve(cls, gateway: Gateway, request: GenerationRequest) -> GenerationModels:
        """Handles for the request's models; a model not given falls back to the gateway's role model."""

        def pick(name: str | None, role: str) -> ModelHandle:
            return gateway.model(name) if name else gateway.role(role)

        generation = pick(request.generation_model, "generation")
        outline = pick(request.outline_model, "outline") if request.outline_model else generation
        revision = pick(request.revision_model, "revision") if request.revision_model else generation
        judge, choice = judge_for(gateway, request, generation)
        return cls(generation, outline, revision, judge, choice)


def judge_for(
    gateway: Gateway, request: GenerationRequest, generation: ModelHandle
) -> tuple[ModelHandle, JudgeChoice]:
    """The conformance judge and how it was chosen, by the shared rule of `datamill.llm.judge_choice`.

    ``judge_model`` (else a judge role configured on the gateway) is used as given; else the first model of
    the routing file's ``judge_models`` of another family than the generation model; else the generation
    model itself, which the run's summary then notes.
    """
    named = request.judge_model or (gateway.role("judge").name if gateway.has_role("judge") else None)
    choice = choose_judge(gateway, generation.name, named)
    return (generation if choice.same_model else gateway.model(choice.model)), choice


def draw_properties(spec: Spec, count: int, seed: int) -> list[dict[str, str]]:
    """The property values of slots 1..count, drawn in order from one seeded RNG."""
    rng = random.Random(f"{seed}:properties")
    return [sample_properties(spec, rng) for _ in range(count)]


class GenerationRun:
    """One run of the generation pipeline (see the module docstring); call `run` once."""

    def __init__(
        self,
        spec: Spec,
        request: GenerationRequest,
        models: GenerationModels,
        seeds: SeedSet | None = None,
        *,
        gateway: Gateway | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        counters: GenerationCounters | None = None,
    ) -> None:
        self.spec = spec
        self.request = request
        self.gateway = gateway
        self.concurrency = max(1, concurrency)
        self.counters = counters or GenerationCounters()
        self.seeds = seeds if seeds is not None and seeds.seeds else None
        self.models = models
        self._build_stages(models)
        self._slots = iter(range(1, request.number_of_samples + 1))
        self._properties = draw_properties(spec, request.number_of_samples, request.seed)
        self._budget = CANDIDATE_BUDGET_FACTOR * request.number_of_samples
        self._accepted: dict[int, GeneratedSample] = {}
        self._rejected: Counter[str] = Counter()
        self._reasons: dict[str, str] = {}

    def _build_stages(self, models: GenerationModels) -> None:
        request = self.request
        schema = field_schema(self.seeds) if self.seeds is not None else {}
        self.field_names = tuple(schema.get("properties", {}))
        picker = SeedPicker(
            self.seeds,
            request.seed_shuffling_level,
            limit=request.max_examples_in_prompt,
            run_seed=request.seed,
        )
        options = WriterOptions(
            skip_outline=request.skip_outline,
            unified_multifield=request.unified_multifield,
            generation_thinking_budget=request.generation_thinking_budget,
            outline_thinking_budget=request.outline_thinking_budget,
            max_tokens=request.max_output_tokens,
        )
        self.writer = SampleWriter(models.generation, models.outline, picker, schema, options)
        self.reviser = SampleReviser(
            models.revision,
            picker,
            request.revision_types,
            request.revision_cycles,
            field_schema=schema,
            seeded=self.seeds is not None,
            thinking_budget=request.revision_thinking_budget,
            max_tokens=request.max_output_tokens,
        )
        # The calculator fixes prose; row samples are left to the revisions (a fix could break their JSON).
        use_calculator = Tool.CALCULATOR in request.tools and not self.field_names
        self.calculator = (
            CalculatorCheck(models.generation, max_tokens=request.max_output_tokens)
            if use_calculator
            else None
        )
        seeds = self.seeds.seeds if self.seeds is not None else ()
        self.novelty = (
            NoveltyFilter(
                [(s.name, s.text) for s in seeds],
                threshold=request.novelty_threshold,
                structured=bool(self.seeds and self.seeds.structured),
            )
            if request.novelty_threshold < 1
            else None
        )
        filters = request.filtering_types
        self.structural = (
            StructuralGate.from_seeds(self.seeds) if FilteringType.STRUCTURAL in filters else None
        )
        self.conformance = ConformanceGate(models.judge) if FilteringType.CONFORMANCE in filters else None

    async def run(self) -> GenerationResult:
        """Generate until N samples pass; raises `GenerationBudgetSpent` when the budget runs out first."""
        workers = [
            asyncio.create_task(self._work()) for _ in range(min(self.concurrency, len(self._properties)))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:  # a run-stopping error: stop the other workers, then raise it as it is
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        summary = self.summary()
        if summary.delivered < summary.requested:
            raise GenerationBudgetSpent(summary)
        samples = [self._accepted[slot] for slot in sorted(self._accepted)]
        return GenerationResult(samples, summary)

    def summary(self) -> GenerationSummary:
        """The run's summary so far."""
        usage = self.gateway.usage.snapshot() if self.gateway is not None else {}
        judge = self.conformance.model.name if self.conformance is not None else None
        choice = None
        notes = []
        if judge is not None:
            choice = self.models.judge_choice or JudgeChoice(judge, self.models.generation.name, RUN_SETTING)
            wrote = (self.models.generation.name, self.models.revision.name)
            if judge in wrote or choice.same_family:
                notes.append(
                    f"the conformance gate was {choice.note()}"
                    + (", and it also wrote or revised the samples" if judge in wrote else "")
                    + ": set judge_model to a model of another family, or list such models under "
                    "judge_models in the routing file, for an independent check"
                )
        return GenerationSummary(
            self.request.number_of_samples,
            len(self._accepted),
            self.counters.candidates,
            dict(self._rejected),
            usage,
            self.request.runtime_params(),
            dict(self._reasons),
            judge,
            None if choice is None else choice.to_dict(),
            notes,
        )

    async def _work(self) -> None:
        for slot in self._slots:
            if not await self._fill(slot):
                return

    async def _fill(self, slot: int) -> bool:
        """Make candidates for ``slot`` until one passes (True) or the budget is spent (False)."""
        attempt = 0
        while self.counters.candidates < self._budget:
            self.counters.candidates += 1
            task = SampleTask(
                slot, attempt, self._properties[slot - 1], self.spec, self.field_names, self.request.seed
            )
            text, failure = await self._candidate(task)
            if failure is None:
                self._accepted[slot] = GeneratedSample(slot, text, task.properties, attempt + 1)
                self.counters.samples_completed += 1
                return True
            gate, reason = failure
            self._rejected[gate] += 1
            self._reasons.setdefault(gate, reason)
            self.counters.samples_failed += 1
            attempt += 1
        return False

    async def _candidate(self, task: SampleTask) -> tuple[str, tuple[str, str] | None]:
        """The candidate's final text, and (gate, reason) when it failed one."""
        try:
            draft = await self.writer.write(task)
            if draft.truncated:
                limit = self.request.max_output_tokens
                return "", ("truncated", f"the draft was cut off at the token limit ({limit} tokens)")
            text = draft.text
            if text.strip() and self.calculator is not None:
                text = await self.calculator.check(task, text)
            if text.strip():
                text = await self.reviser.revise(task, text)
            if not text.strip():
                return text, ("structural", "empty sample")
            problem = self.structural.problem(Draft(text)) if self.structural else None
            if problem:
                return text, ("structural", problem)
            problem = await self.conformance.problem(task, text) if self.conformance else None
            if problem:
                return text, ("conformance", problem)
            # Last, and with no await before the sample is accepted: a novel sample is recorded as it passes.
            problem = self.novelty.admit(text.strip(), task.slot) if self.novelty else None
            if problem:
                return text, ("novelty", problem)
        except UnusableReplyError as exc:  # a refused, cut, empty or filtered call: the candidate is redone
            return "", (exc.reason, str(exc))
        except ModelError as exc:
            if fails_every_row(exc):
                raise
            return "", ("error", str(exc))
        except InjectedOutput as exc:
            return "", ("injection", str(exc))
        except OutputCut as exc:
            return "", ("truncated", str(exc))
        return text.strip(), None
