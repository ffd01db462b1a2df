"""The evaluation's judges: one quality call per example and side, and a style call when there is a blueprint.

`QualityJudge` renders ``steps/prompts/judge_quality.yaml`` with the rubric's described levels, the request,
its context and the answer (each text cut to `MAX_JUDGED_CHARS`, marked so the judge does not count the cut
against it) and the answer's approximate token count. It shows no style guide and no length target: both
sides are graded on what the data is meant to be. `StyleJudge` renders ``judge_style.yaml`` with the run's
blueprint, for target adherence reported beside the grade. Replies must match the rubric's schema (rationale
first); the gateway validates it and makes one repair call. A call that still fails is recorded as a failed
`Judgement` (with the error) rather than raised, so one bad row never stops an evaluation; configuration
errors (no route, no key variable) do raise, as they would fail every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.core.errors import ModelError, fails_every_row
from datamill.llm.types import ChatRequest
from datamill.pipelines.evaluation_rubric import (
    JUDGE_SCHEMA,
    QUALITY_CRITERIA,
    STYLE_CRITERION,
    STYLE_SCHEMA,
    apply_empty_answer_rule,
    row_score,
)
from datamill.pipelines.evaluation_sample import (
    Row,
    SideText,
    after_side,
    approx_tokens,
    before_side,
    text_of,
)
from datamill.steps.judging import RATIONALE_BOUND, criteria_text, no_verdict_reason, to_ten
from datamill.steps.templates import load_template

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Longest text (request, context or answer) shown to the judge, in characters (about 2,000 tokens).
MAX_JUDGED_CHARS = 8000
CUT_MARKER = " [cut for grading]"
#: Output cap of a judgement: a rationale of a few sentences and the scores fit well under it.
JUDGE_MAX_TOKENS = 600


@dataclass(slots=True)
class Judgement:
    """The judge's verdict on one side of one example, or the error that prevented it.

    Attributes:
        scores: criterion → 1–5 (after the empty-answer rule), or None when the call failed.
        score: the row score on the 0–10 scale, or None when the call failed.
        rationale: the judge's reasoning, written before the scores.
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
    """Calls a judge made and how many failed."""

    calls: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)


class _Judge:
    """A rubric judge: one templated, schema-checked call per example side."""

    name: ClassVar[str] = "evaluation"

    def __init__(self, model: ModelHandle, template: str, schema: dict[str, Any], seed: int) -> None:
        self.model = model
        self.template = load_template(template)
        self.schema = schema
        self.seed = seed
        self.counters = JudgeCounters()

    def _variables(self, side: SideText, context: str) -> dict[str, Any]:
        raise NotImplementedError

    def _judgement(self, data: Mapping[str, Any], side: SideText) -> Judgement:
        raise NotImplementedError

    def request(self, side: SideText, context: str = "") -> ChatRequest:
        """The judge request for one side of one example."""
        messages = self.template.render(**self._variables(side, context))
        return ChatRequest(
            messages,
            max_tokens=JUDGE_MAX_TOKENS,
            temperature=0.0,
            json_schema=self.schema,
            seed=self.seed,
            grammar_max_chars=RATIONALE_BOUND,
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
            if fails_every_row(exc):
                raise
            self.counters.failures += 1
            message = no_verdict_reason(exc)
            self.counters.errors.append(message)
            return Judgement(error=message)
        return self._judgement(result.data, side)


#: The templates of the grade's rubric judges.
QUALITY_TEMPLATE, STYLE_TEMPLATE = "judge_quality", "judge_style"


class QualityJudge(_Judge):
    """Scores examples on the rubric's quality criteria, with no style guide or length target.

    Args:
        model: the judge model (`datamill.llm.judge_choice` picks it).
        seed: sampling seed passed to providers that honour one.
    """

    def __init__(self, model: ModelHandle, *, seed: int = 0) -> None:
        super().__init__(model, QUALITY_TEMPLATE, JUDGE_SCHEMA, seed)
        self.criteria = criteria_text(QUALITY_CRITERIA)

    def _variables(self, side: SideText, context: str) -> dict[str, Any]:
        return {
            "criteria": self.criteria,
            "context": cut(context),
            "prompt": cut(side.prompt),
            "answer": cut(side.answer),
            "answer_tokens": approx_tokens(side.answer),
        }

    def _judgement(self, data: Mapping[str, Any], side: SideText) -> Judgement:
        scores = apply_empty_answer_rule(data["scores"], side.answer)
        return Judgement(scores, row_score(scores), str(data.get("rationale", "")).strip())


class StyleJudge(_Judge):
    """Scores how well answers follow the run's style guide (target adherence, reported beside the grade).

    Args:
        model: the judge model.
        blueprint: the run's style guide.
        seed: sampling seed passed to providers that honour one.
    """

    name: ClassVar[str] = "evaluation"

    def __init__(self, model: ModelHandle, blueprint: str, *, seed: int = 0) -> None:
        super().__init__(model, STYLE_TEMPLATE, STYLE_SCHEMA, seed)
        self.blueprint = blueprint
        self.criterion = STYLE_CRITERION.text()

    def _variables(self, side: SideText, context: str) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "blueprint": cut(self.blueprint),
            "prompt": cut(side.prompt),
            "answer": cut(side.answer),
        }

    def _judgement(self, data: Mapping[str, Any], side: SideText) -> Judgement:
        level = int(data["scores"][STYLE_CRITERION.name])
        if not side.answer.strip():
            level = 1
        return Judgement({STYLE_CRITERION.name: level}, to_ten(level), str(data.get("rationale", "")).strip())


def length_target(length_range: tuple[int, int] | None) -> str:
    """How a length target is stated in reports."""
    if length_range is None:
        return "none"
    low, high = length_range
    return f"{low} to {high} tokens"


def cut(text: str) -> str:
    """``text`` cut to `MAX_JUDGED_CHARS` characters, marked when cut."""
    if len(text) <= MAX_JUDGED_CHARS:
        return text
    return text[:MAX_JUDGED_CHARS] + CUT_MARKER
