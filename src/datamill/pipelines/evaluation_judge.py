"""The quality judge: one rubric call per example and side, through the gateway, with a JSON schema.

The judge renders ``steps/prompts/judge_quality.yaml`` with the run's blueprint and length target, the
request, its context and the answer (each text cut to `MAX_JUDGED_CHARS`, marked so the judge does not count
the cut against it), and the answer's approximate token count, because models count tokens badly. The reply
must match `JUDGE_SCHEMA`; the gateway validates it and makes one repair call. A judge call that still fails
is recorded as a failed `Judgement` (with the error) rather than raised, so one bad row never stops an
evaluation; configuration errors (no route, no key variable) do raise, as they would fail every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.core.errors import ModelError
from datamill.llm.types import ChatRequest
from datamill.pipelines.evaluation_rubric import JUDGE_SCHEMA, apply_empty_answer_rule, row_score
from datamill.pipelines.evaluation_sample import (
    Row,
    SideText,
    after_side,
    approx_tokens,
    before_side,
    text_of,
)
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Longest text (request, context or answer) shown to the judge, in characters (about 2,000 tokens).
MAX_JUDGED_CHARS = 8000
CUT_MARKER = " [cut for grading]"
#: Output cap of a judgement: five integers and a short rationale fit well under it.
JUDGE_MAX_TOKENS = 400


@dataclass(slots=True)
class Judgement:
    """The judge's verdict on one side of one example, or the error that prevented it.

    Attributes:
        scores: criterion → 0–10 (after the empty-answer rule), or None when the call failed.
        score: the row score (mean of the criteria), or None when the call failed.
        rationale: the judge's explanation.
        error: why the call failed, or None.
    """

    scores: dict[str, int] | None = None
    score: float | None = None
    rationale: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.score is not None

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "score": self.score, "rationale": self.rationale, "error": self.error}


@dataclass(slots=True)
class JudgeCounters:
    """Calls the judge made and how many failed."""

    calls: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)


class QualityJudge:
    """Scores examples on the rubric with a judge model.

    Args:
        model: the judge model (usually ``gateway.role("judge")``).
        blueprint: the run's style guide, or None.
        length_range: the target answer length in tokens (low, high), or None.
        seed: sampling seed passed to providers that honour one.
    """

    name: ClassVar[str] = "evaluation"

    def __init__(
        self,
        model: ModelHandle,
        *,
        blueprint: str | None = None,
        length_range: tuple[int, int] | None = None,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.template = load_template("judge_quality")
        self.blueprint = blueprint
        self.length_target = length_target(length_range)
        self.seed = seed
        self.counters = JudgeCounters()

    def request(self, side: SideText, context: str = "") -> ChatRequest:
        """The judge request for one side of one example."""
        messages = self.template.render(
            blueprint=_cut(self.blueprint or ""),
            length_target=self.length_target,
            context=_cut(context),
            prompt=_cut(side.prompt),
            answer=_cut(side.answer),
            answer_tokens=approx_tokens(side.answer),
        )
        return ChatRequest(
            messages, max_tokens=JUDGE_MAX_TOKENS, temperature=0.0, json_schema=JUDGE_SCHEMA, seed=self.seed
        )

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The before and after requests the evaluation sends for one output row (for estimates)."""
        context = text_of(row.get("_context"))
        return [self.request(before_side(row), context), self.request(after_side(row), context)]

    async def judge(self, side: SideText, context: str = "") -> Judgement:
        """Score one side of one example; a failed model call becomes a failed `Judgement`."""
        self.counters.calls += 1
        try:
            result = await self.model.chat(self.request(side, context), tag=self.name)
        except ModelError as exc:
            self.counters.failures += 1
            message = f"{type(exc).__name__}: {exc}"
            self.counters.errors.append(message)
            return Judgement(error=message)
        scores = apply_empty_answer_rule(result.data["scores"], side.answer)
        return Judgement(scores, row_score(scores), str(result.data.get("rationale", "")).strip())


def length_target(length_range: tuple[int, int] | None) -> str:
    """How the judge prompt states the length target."""
    if length_range is None:
        return "none given (a length that suits the request)."
    low, high = length_range
    return f"{low} to {high} tokens."


def _cut(text: str) -> str:
    if len(text) <= MAX_JUDGED_CHARS:
        return text
    return text[:MAX_JUDGED_CHARS] + CUT_MARKER
