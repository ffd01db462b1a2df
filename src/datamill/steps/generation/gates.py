"""Quality gates: a candidate that fails one is discarded and its slot regenerated.

``structural`` (no model call) rejects severe format problems:

- empty text, or a draft cut short at the token limit;
- for structured samples (seeds are rows): text that is not a JSON object with exactly the seeds' keys;
- a length far outside the seeds': shorter than `MIN_LENGTH_RATIO` × the shortest seed or longer than
  `MAX_LENGTH_RATIO` × the longest (plus `LENGTH_SLACK_CHARS`, so very short seeds do not make every sample
  too long); without seeds, longer than `MAX_SAMPLE_CHARS`.

``conformance`` is a blind check by a judge model (chosen by `datamill.llm.judge_choice`: the run's
``judge_model``, else a configured judge of another family than the generation model, else the generation
model, which the run's summary notes). The judge is not told the values drawn for the sample: it classifies
the sample on every property of the spec, picking one of the property's values or ``unclear``, lists the
spec's rules the sample breaks and answers the `FOLLOWS_RULES` check (``gen_conformance.yaml``). It follows
the judging protocol of `datamill.steps.judging`: the reply is JSON under `conformance_schema`, rationale
first, then ``properties``, ``violations`` and ``conforms``, read by `ask_judge`. The code then compares the
classification with the drawn values: a property read as another value, or as ``unclear``, fails the sample,
as does a broken rule. A judge that is shown the target answers "yes, it has it" far more readily than one
asked to read the sample cold (the judge columns of Data Designer and the classify-then-compare checks of
synthetic-data evaluations work the same way), and a reviser checking its own revision repeats its own blind
spots. A judge that gives no verdict (a refusal, a cut, filtered or empty reply, or no JSON matching the
schema after the repair call) fails the sample with a reason that names why (`no_verdict_reason`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.core.errors import ModelError, fails_every_row
from datamill.core.spec import Spec
from datamill.llm.types import ChatRequest
from datamill.steps.generation.sample import SampleTask
from datamill.steps.generation.seeds import SeedSet
from datamill.steps.generation.writer import Draft
from datamill.steps.judging import Check, ask_judge, no_verdict_reason, verdict_schema
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

MIN_LENGTH_RATIO = 0.1
MAX_LENGTH_RATIO = 10.0
LENGTH_SLACK_CHARS = 2_000
#: Most violations a verdict lists, and the verdict's output cap.
MAX_VIOLATIONS = 5
VERDICT_MAX_TOKENS = 400
#: The longest sample accepted when there are no seeds to compare with.
MAX_SAMPLE_CHARS = 200_000

#: The judge's answer when a sample shows nothing about a property.
UNCLEAR = "unclear"

#: The gate's yes/no verdict, each answer described.
FOLLOWS_RULES = Check(
    "conforms",
    "Does the sample follow every rule of the spec?",
    "it breaks none of the rules (the violations list is empty)",
    "it breaks at least one rule (each listed under violations)",
)


def conformance_schema(spec: Spec) -> dict[str, Any]:
    """The verdict's JSON schema, in order: the rationale, a value per property, the rules broken, a verdict.

    A property's value is one of its listed values or ``unclear``; the verdict answers `FOLLOWS_RULES`.
    """
    axes = {
        axis.name: {"type": "string", "enum": list(dict.fromkeys((*axis.values, UNCLEAR)))}
        for axis in spec.axes
    }
    return verdict_schema(
        {
            "properties": {
                "type": "object",
                "properties": axes,
                "required": list(axes),
                "additionalProperties": False,
            },
            # Capped so that a small model cannot loop on the list until it hits the token limit.
            "violations": {"type": "array", "maxItems": MAX_VIOLATIONS, "items": {"type": "string"}},
            FOLLOWS_RULES.name: FOLLOWS_RULES.schema(),
        }
    )


@dataclass(frozen=True)
class StructuralGate:
    """The structural checks, set up from the seeds."""

    min_chars: int = 1
    max_chars: int = MAX_SAMPLE_CHARS
    field_names: tuple[str, ...] = ()

    @classmethod
    def from_seeds(cls, seeds: SeedSet | None) -> StructuralGate:
        if seeds is None or not seeds.seeds:
            return cls()
        lengths = [len(s.text) for s in seeds.seeds]
        low = max(1, int(min(lengths) * MIN_LENGTH_RATIO))
        high = int(max(lengths) * MAX_LENGTH_RATIO) + LENGTH_SLACK_CHARS
        return cls(low, min(high, MAX_SAMPLE_CHARS), seeds.field_names)

    def problem(self, draft: Draft) -> str | None:
        """Why ``draft`` fails the gate, or None when it passes."""
        text = draft.text.strip()
        if not text:
            return "empty sample"
        if draft.truncated:
            return "the sample was cut off at the token limit"
        if self.field_names:
            fields = _json_object(text)
            if fields is None:
                return "not a JSON object like the seeds"
            if set(fields) != set(self.field_names):
                return f"keys {sorted(fields)} differ from the seeds' {sorted(self.field_names)}"
        if not self.min_chars <= len(text) <= self.max_chars:
            return f"length {len(text)} characters is outside {self.min_chars}–{self.max_chars}"
        return None


class ConformanceGate:
    """The blind judge call that checks a sample's properties and the spec's rules (module docstring)."""

    name: ClassVar[str] = "gen_conformance"

    def __init__(self, model: ModelHandle, *, thinking_budget: int | None = None) -> None:
        self.model = model
        self.thinking_budget = thinking_budget
        self.template = load_template("gen_conformance")

    def requests_for(self, task: SampleTask, text: str) -> list[ChatRequest]:
        """The judge's request: the spec and the sample, never the values drawn for ``task``."""
        spec = task.spec
        axes = [
            {"name": a.name, "description": a.description or "", "options": list(a.values)} for a in spec.axes
        ]
        messages = self.template.render(
            description=spec.description,
            requirements=list(spec.requirements),
            axes=axes,
            sample=text,
            verdict=FOLLOWS_RULES.text(),
        )
        budget = VERDICT_MAX_TOKENS + sum(16 + len(a.name) + max(map(len, a.values)) for a in spec.axes)
        request = ChatRequest(
            messages,
            max_tokens=budget,
            temperature=0.0,
            json_schema=conformance_schema(spec),
            thinking_budget=self.thinking_budget,
            seed=task.request_seed("conformance"),
        )
        return [request]

    async def problem(self, task: SampleTask, text: str) -> str | None:
        """Why the sample fails (properties read otherwise than drawn, broken rules, no verdict), or None.

        Raises:
            ModelError: an error that would fail every call (bad key, unknown model, no quota).
        """
        try:
            reply = await ask_judge(self.model, self.requests_for(task, text)[0], tag=self.name)
        except ModelError as exc:
            if fails_every_row(exc):
                raise
            return no_verdict_reason(exc)
        verdict = reply.data
        found = verdict.get("properties")
        read: dict[str, Any] = found if isinstance(found, dict) else {}
        problems = [
            f"{name}: asked for {drawn!r}, the sample reads as {read.get(name, UNCLEAR)!r}"
            for name, drawn in task.properties.items()
            if read.get(name) != drawn
        ]
        if verdict.get("conforms") is not True:
            violations = [str(v) for v in verdict.get("violations") or [] if str(v).strip()]
            problems += violations or [f"the judge found that the sample breaks a rule: {reply.rationale}"]
        return "; ".join(problems) or None


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
