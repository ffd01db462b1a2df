"""Quality gates: a candidate that fails one is discarded and its slot regenerated.

``structural`` (no model call) rejects severe format problems:

- empty text, or a draft cut short at the token limit;
- for structured samples (seeds are rows): text that is not a JSON object with exactly the seeds' keys;
- a length far outside the seeds': shorter than `MIN_LENGTH_RATIO` × the shortest seed or longer than
  `MAX_LENGTH_RATIO` × the longest (plus `LENGTH_SLACK_CHARS`, so very short seeds do not make every sample
  too long); without seeds, longer than `MAX_SAMPLE_CHARS`.

``conformance`` asks the judge (the revision model) whether the sample has the properties drawn for it and
follows the spec's rules; the reply is JSON ``{"conforms": bool, "violations": [str]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.llm.types import ChatRequest
from datamill.steps.generation.sample import SampleTask
from datamill.steps.generation.seeds import SeedSet
from datamill.steps.generation.writer import Draft
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

MIN_LENGTH_RATIO = 0.1
MAX_LENGTH_RATIO = 10.0
LENGTH_SLACK_CHARS = 2_000
#: Most violations a verdict lists, and the verdict's output cap.
MAX_VIOLATIONS = 5
VERDICT_MAX_TOKENS = 256
#: The longest sample accepted when there are no seeds to compare with.
MAX_SAMPLE_CHARS = 200_000

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "conforms": {"type": "boolean"},
        # Capped so that a small model cannot loop on the list until it hits the token limit.
        "violations": {"type": "array", "maxItems": MAX_VIOLATIONS, "items": {"type": "string"}},
    },
    "required": ["conforms", "violations"],
}


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
    """The judge call that checks a sample against its drawn properties and the spec's rules."""

    name: ClassVar[str] = "gen_conformance"

    def __init__(self, model: ModelHandle, *, thinking_budget: int | None = None) -> None:
        self.model = model
        self.thinking_budget = thinking_budget
        self.template = load_template("gen_conformance")

    def requests_for(self, task: SampleTask, text: str) -> list[ChatRequest]:
        messages = self.template.render(**task.variables(), sample=text)
        request = ChatRequest(
            messages,
            max_tokens=VERDICT_MAX_TOKENS,
            temperature=0.0,
            json_schema=VERDICT_SCHEMA,
            thinking_budget=self.thinking_budget,
            seed=task.request_seed("conformance"),
        )
        return [request]

    async def problem(self, task: SampleTask, text: str) -> str | None:
        """The violations the judge found, or None when the sample conforms."""
        result = await self.model.chat(self.requests_for(task, text)[0], tag=self.name)
        verdict = result.data if isinstance(result.data, dict) else {}
        if verdict.get("conforms") is True:
            return None
        violations = [str(v) for v in verdict.get("violations") or [] if str(v).strip()]
        return "; ".join(violations) or "the judge found the sample non-conformant"


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
