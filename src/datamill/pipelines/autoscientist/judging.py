"""Pairwise judging of a tuned answer against a baseline answer, in both orders, with ties.

The judge (``steps/prompts/win_rate_judge.yaml``, temperature 0, JSON ``{"reason", "better"}`` validated
by the gateway with one repair call) sees the request, the dataset's reference answer when there is one, and
the two answers as A and B. Each prompt is judged twice with the answers swapped; the tuned model's score
for the prompt is the mean of its two results (1 win, 0.5 tie, 0 loss), so a verdict that follows the
position rather than the answers comes out as a tie. Two identical answers are a tie without a call.

A call that fails after the gateway's retries leaves the prompt unjudged (None) with its error kept; errors
that would fail every call (no route, no key, no access, no credit) are raised and stop the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datamill.core.errors import ModelError, fails_every_row
from datamill.llm.gateway import ModelHandle
from datamill.llm.types import ChatRequest
from datamill.steps.templates import load_template

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "better": {"type": "string", "enum": ["A", "B", "tie"]}},
    "required": ["reason", "better"],
    "additionalProperties": False,
}
JUDGE_MAX_TOKENS = 300
#: Longest answer shown to the judge, in characters.
MAX_ANSWER_CHARS = 6000
#: Judge calls in flight at once (the gateway's per-model limiter still applies).
CONCURRENCY = 8


@dataclass(frozen=True)
class Judgement:
    """One prompt's result: the tuned model's score (None when unjudged) and the judge's words."""

    score: float | None
    verdicts: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "verdicts": list(self.verdicts),
            "reasons": list(self.reasons),
            "error": self.error,
        }


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ANSWER_CHARS else text[:MAX_ANSWER_CHARS] + " [cut for judging]"


class PairwiseJudge:
    """Judges tuned answers against baseline answers with one model."""

    def __init__(self, model: ModelHandle) -> None:
        self.model = model
        self.template = load_template("win_rate_judge")

    def request(self, prompt: str, reference: str, answer_a: str, answer_b: str) -> ChatRequest:
        messages = self.template.render(
            prompt=_cut(prompt), reference=_cut(reference), answer_a=_cut(answer_a), answer_b=_cut(answer_b)
        )
        return ChatRequest(messages, max_tokens=JUDGE_MAX_TOKENS, temperature=0.0, json_schema=VERDICT_SCHEMA)

    async def _better(self, prompt: str, reference: str, a: str, b: str) -> tuple[str, str]:
        result = await self.model.chat(self.request(prompt, reference, a, b), tag="autoscientist")
        return str(result.data["better"]), str(result.data.get("reason", "")).strip()

    async def judge(self, prompt: str, reference: str, tuned: str, baseline: str) -> Judgement:
        """The tuned answer's score against the baseline's for one prompt (module docstring)."""
        if tuned.strip() == baseline.strip():
            return Judgement(0.5, ("same", "same"), ("the two answers are identical",))
        try:
            (first, why_1), (second, why_2) = await asyncio.gather(
                self._better(prompt, reference, tuned, baseline),
                self._better(prompt, reference, baseline, tuned),
            )
        except ModelError as exc:
            if fails_every_row(exc):
                raise
            return Judgement(None, error=f"{type(exc).__name__}: {exc}")
        as_first = {"A": 1.0, "tie": 0.5, "B": 0.0}[first]
        as_second = {"B": 1.0, "tie": 0.5, "A": 0.0}[second]
        return Judgement((as_first + as_second) / 2, (first, second), (why_1, why_2))

    async def judge_all(
        self, prompts: Sequence[str], references: Sequence[str], tuned: Sequence[str], baseline: Sequence[str]
    ) -> list[Judgement]:
        """`judge` for every prompt, `CONCURRENCY` at a time, in prompt order."""
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(i: int) -> Judgement:
            async with gate:
                return await self.judge(prompts[i], references[i], tuned[i], baseline[i])

        return list(await asyncio.gather(*(one(i) for i in range(len(prompts)))))
