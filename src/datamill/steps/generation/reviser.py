"""Revision passes: up to ``max_revision_cycles`` cycles, each running every requested revision type once.

Each pass is one call to the revision model that returns the whole sample revised for one concern
(`INSTRUCTIONS`). ``distinguishability`` shows the seed examples so the sample blends with their style, and
tells the model to take their manner only, never their content (sentences, names, facts, topics): a revision
that pulls a sample toward a seed would make it a copy, which the novelty gate (`novelty`) would then refuse.
It needs seeds, so it is skipped for seedless specs (the contract: "seeded specs only"). A pass that returns
nothing, or (for structured samples) not the seeds' JSON object, leaves the sample as it was. A pass cut off
at the token limit raises `OutputCut`: a half-revised sample is never delivered, the candidate is made again.
A pass whose reply carries an instruction-injection marker raises `InjectedOutput`, like a draft: the
candidate is regenerated.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.core.generation_request import RevisionType
from datamill.llm.types import ChatRequest
from datamill.steps.generation.sample import SampleTask, SeedPicker
from datamill.steps.generation.writer import MAX_DRAFT_TOKENS, raise_if_cut
from datamill.steps.injection import raise_on_injection
from datamill.steps.templates import load_template, without_cache_point

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: What each revision type asks the revision model to fix.
INSTRUCTIONS = {
    RevisionType.COHERENCE_FLOW: "Fix formatting, structure and flow so the sample reads as one whole.",
    RevisionType.CONSISTENCY: "Fix internal contradictions: names, numbers, dates and facts must agree.",
    RevisionType.DISTINGUISHABILITY: (
        "Make the sample read like a real one: match the style, tone, register and format of the real "
        "samples shown, but keep the sample's own content. Do not copy their sentences, phrases, names, "
        "numbers, facts or topics; a revision that moves toward any one real sample's content is wrong."
    ),
    RevisionType.CONFORMANCE: "Make the sample have every property asked for and follow every rule.",
}
#: Revision calls sample cooler than drafts: they should edit, not rewrite.
REVISION_TEMPERATURE = 0.3


class SampleReviser:
    """Runs the revision cycles on a draft."""

    name: ClassVar[str] = "gen_revise"

    def __init__(
        self,
        model: ModelHandle,
        picker: SeedPicker,
        types: tuple[RevisionType, ...],
        cycles: int,
        *,
        field_schema: dict[str, Any] | None = None,
        seeded: bool = True,
        thinking_budget: int | None = None,
        max_tokens: int = MAX_DRAFT_TOKENS,
    ) -> None:
        self.model = model
        self.picker = picker
        skip = () if seeded else (RevisionType.DISTINGUISHABILITY,)
        self.types = tuple(t for t in types if t not in skip)
        self.cycles = cycles if self.types else 0
        self.field_schema = field_schema or None
        self.thinking_budget = thinking_budget
        self.max_tokens = max_tokens
        self.template = load_template("gen_revise")

    def requests_for(self, task: SampleTask, text: str) -> list[ChatRequest]:
        """The revision requests of one cycle for ``text`` (in a run each pass sees the one before)."""
        return [self._request(task, text, kind, 0) for kind in self.types]

    async def revise(self, task: SampleTask, text: str) -> str:
        """``text`` after every cycle and pass."""
        for cycle in range(self.cycles):
            for kind in self.types:
                request = self._request(task, text, kind, cycle)
                result = await self.model.chat(request, tag=self.name)
                raise_on_injection(self.name, request, result)
                raise_if_cut(f"{self.name} ({kind.value}, cycle {cycle + 1})", result, self.max_tokens)
                revised = self._accept(result.text, result.data)
                if revised:
                    text = revised
        return text

    def _request(self, task: SampleTask, text: str, kind: RevisionType, cycle: int) -> ChatRequest:
        call = f"revise:{cycle}:{kind.value}"
        seeds = self.picker.pick(task, call) if kind is RevisionType.DISTINGUISHABILITY else []
        messages = self.template.render(
            **task.variables(), instruction=INSTRUCTIONS[kind], sample=text, seeds=seeds
        )
        if seeds and not self.picker.shares_prefix:
            messages = without_cache_point(messages)
        return ChatRequest(
            messages,
            max_tokens=self.max_tokens,
            temperature=REVISION_TEMPERATURE,
            json_schema=self.field_schema,
            thinking_budget=self.thinking_budget,
            seed=task.request_seed(call),
        )

    def _accept(self, text: str, data: Any) -> str:
        if self.field_schema is not None:
            return json.dumps(data, ensure_ascii=False) if isinstance(data, dict) else ""
        return text.strip()
