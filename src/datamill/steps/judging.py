"""The judging protocol every datamill judge follows: the quality grade, preference pairs, custom evaluations.

Four rules, each taken from a published judge method (``docs/evaluation.md`` names them):

- **Rationale before score.** Every judge reply is JSON whose first field is the reasoning and whose later
  fields are the verdict (`scores_schema`, `PAIR_SCHEMA`), so the verdict is generated after, and conditioned
  on, the reasoning (MT-Bench's "explanation, then rating"; Prometheus's feedback-then-score).
- **A described level for every score.** A `Criterion` is scored from `SCALE_MIN` to `SCALE_MAX` (1–5) and
  describes what each of the five levels means (Prometheus score rubrics); `criteria_text` renders them for a
  prompt, and `to_ten` puts a 1–5 score on the 0–10 scale datamill reports.
- **Pairwise comparisons in both orders, with ties.** `PairwiseJudge.compare` asks the same question twice,
  once with each answer shown first, and reads each reply on Arena-Hard's five-point scale (``A>>B``,
  ``A>B``, ``A=B``, ``B>A``, ``B>>A``). The two orders are combined into one `Comparison`: its ``margin`` is
  the mean preference for the first candidate (−2 to 2), and it is **inconsistent** when the two orders name
  different winners (position bias, not a preference); an inconsistent comparison counts as a tie.
- **Length-controlled where length is not the point.** The pair prompt shows both answers' approximate
  lengths and tells the judge that length is no merit unless the request or a length target makes it one;
  across many comparisons, `length_controlled_win_rate` removes the part of a win rate that the length
  difference explains (alpaca_eval's length-controlled win rate: a logistic model of the outcome on the
  length difference, read with the length term at zero).

Yes/no and classification judges (the generation run's conformance gate, the safety review, the translation
detail check) follow the same rules: a `Check` describes what each answer means, `verdict_schema` puts the
rationale before every verdict field, and `ask_judge` makes the call. Every judge reads its reply the same
way: the gateway splits off reasoning written before the answer (``<think>`` blocks, reasoning fields),
reads JSON out of a Markdown fence or prose, validates it against the schema with one repair call, and
raises on a refusal, a cut, a filtered or an empty reply; `no_verdict_reason` is the one wording of why a
judge gave no verdict, which a gate or a step puts in its rejection reason.

The evaluation's quality and style judges also give a model that decodes under the schema's grammar (the
bundled local model) `RATIONALE_BOUND` as the request's ``grammar_max_chars``: it must end the rationale
within `RATIONALE_MAX_CHARS` characters, since a small model otherwise reasons until it reaches
``max_tokens`` and its reply is cut before the verdict. The bound is no part of the schema, so hosted
judges are asked and validated exactly as before.

Which model judges is chosen by `datamill.llm.judge_choice` (a different family from the generator when one
is configured); a judge reports the model it used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from datamill.core.errors import ModelError, OutputValidationError, UnusableReplyError
from datamill.llm.types import ChatRequest, ImagePart
from datamill.steps.gather import gather_or_cancel
from datamill.steps.templates import load_template, with_images

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: The lowest and highest score of every criterion; each level in between is described.
SCALE_MIN, SCALE_MAX = 1, 5
#: Characters per token for the lengths shown to a judge (models count tokens badly).
CHARS_PER_TOKEN = 4
#: Longest rationale a grammar-constrained judge may write (a sentence or two, about 50 tokens).
RATIONALE_MAX_CHARS = 200
#: A judge request's ``grammar_max_chars``: the rationale bounded where decoding follows the schema.
RATIONALE_BOUND: dict[str, int] = {"rationale": RATIONALE_MAX_CHARS}


@dataclass(frozen=True, slots=True)
class Criterion:
    """One scored criterion: a name, the question it answers and one description per score level.

    Attributes:
        name: the key of the score in the judge's reply.
        question: what the criterion asks.
        levels: ``levels[i]`` describes the score ``SCALE_MIN + i``; one per level of the scale.
    """

    name: str
    question: str
    levels: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.levels) != SCALE_MAX - SCALE_MIN + 1:
            raise ValueError(f"criterion {self.name!r} must describe {SCALE_MAX - SCALE_MIN + 1} levels")

    def text(self) -> str:
        """The criterion as a prompt states it: the question, then every level."""
        lines = [f"{self.name}: {self.question}"]
        lines += [f"  {SCALE_MIN + i} = {level}" for i, level in enumerate(self.levels)]
        return "\n".join(lines)


def criteria_text(criteria: Sequence[Criterion]) -> str:
    """The criteria of a rubric as one block of prompt text."""
    return "\n".join(c.text() for c in criteria)


def scores_schema(criteria: Sequence[Criterion]) -> dict[str, Any]:
    """The JSON schema of a rubric judgement: ``rationale`` first, then ``scores`` (criterion → 1–5)."""
    score = {"type": "integer", "minimum": SCALE_MIN, "maximum": SCALE_MAX}
    return {
        "type": "object",
        "properties": {
            "rationale": {"type": "string"},
            "scores": {
                "type": "object",
                "properties": {c.name: dict(score) for c in criteria},
                "required": [c.name for c in criteria],
                "additionalProperties": False,
            },
        },
        "required": ["rationale", "scores"],
        "additionalProperties": False,
    }


def to_unit(score: float) -> float:
    """A score on the 1–5 scale placed on the 0–1 scale (1 → 0, 3 → 0.5, 5 → 1)."""
    return (score - SCALE_MIN) / (SCALE_MAX - SCALE_MIN)


def to_ten(score: float) -> float:
    """A score on the 1–5 scale placed on the 0–10 scale (1 → 0, 3 → 5, 5 → 10)."""
    return to_unit(score) * 10


# ---- yes/no checks ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """A yes/no criterion: the question and what each answer means (a rubric of two described levels).

    Attributes:
        name: the key of the boolean in the judge's reply.
        question: what the check asks.
        yes: what ``true`` means.
        no: what ``false`` means.
    """

    name: str
    question: str
    yes: str
    no: str

    def text(self) -> str:
        """The check as a prompt states it: the question, then both answers."""
        return f"{self.name}: {self.question}\n  true = {self.yes}\n  false = {self.no}"

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the check's answer."""
        return {"type": "boolean"}


#: What a reply's rationale reads as when the judge left it blank.
NO_RATIONALE = "(the judge gave no rationale)"


def verdict_schema(fields: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """A judge reply's schema: ``rationale`` first, then ``fields`` in their order, every one required."""
    properties: dict[str, Any] = {"rationale": {"type": "string"}, **fields}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def rationale_of(data: Any) -> str:
    """The rationale of a judge's reply, or `NO_RATIONALE`."""
    values = data if isinstance(data, dict) else {}
    return str(values.get("rationale") or "").strip() or NO_RATIONALE


@dataclass(frozen=True, slots=True)
class JudgeReply:
    """A judge's validated reply: its fields, its rationale and the model that gave it."""

    data: dict[str, Any]
    rationale: str
    model: str


async def ask_judge(model: ModelHandle, request: ChatRequest, *, tag: str) -> JudgeReply:
    """One judge call, its reply read as every judge reads it (module docstring).

    Raises:
        ModelError: no verdict: `UnusableReplyError` (refusal, cut, filtered, empty), `OutputValidationError`
            (no JSON matching the schema after the repair call), or a provider error.
    """
    result = await model.chat(request, tag=tag)
    data = result.data if isinstance(result.data, dict) else {}
    return JudgeReply(data, rationale_of(data), model.name)


def no_verdict_reason(exc: ModelError) -> str:
    """Why a judge gave no verdict, as a rejection reason says it (naming a refusal, cut, filter or empty)."""
    if isinstance(exc, UnusableReplyError):
        return f"the judge gave no verdict ({exc.reason}): {exc}"
    if isinstance(exc, OutputValidationError):
        return f"the judge's reply was not a verdict: {exc}"
    return f"the judge call failed: {exc}"


def approx_tokens(text: str) -> int:
    """A text's approximate length in tokens (characters ÷ 4, rounded up)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


# ---- pairwise comparison ---------------------------------------------------------------------------------

#: A verdict on one order, from the first-shown answer's side: much better, better, tie, worse, much worse.
VERDICT_VALUES: dict[str, int] = {"A>>B": 2, "A>B": 1, "A=B": 0, "B>A": -1, "B>>A": -2}
PAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rationale": {"type": "string"},
        "verdict": {"type": "string", "enum": list(VERDICT_VALUES)},
    },
    "required": ["rationale", "verdict"],
    "additionalProperties": False,
}
#: Output cap of one pairwise verdict (a few sentences of reasoning and the verdict).
PAIR_MAX_TOKENS = 500


@dataclass(frozen=True, slots=True)
class OrderVerdict:
    """The judge's reply for one order of a pair: the verdict as given (``A`` = shown first) and why."""

    verdict: str
    rationale: str

    @property
    def value(self) -> int:
        """The preference for the answer shown first, −2 to 2."""
        return VERDICT_VALUES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "rationale": self.rationale}


@dataclass(frozen=True, slots=True)
class Comparison:
    """Candidate ``x`` against candidate ``y``, judged once with each shown first.

    Attributes:
        x_first: the verdict with ``x`` shown as answer A.
        y_first: the verdict with ``y`` shown as answer A.
    """

    x_first: OrderVerdict
    y_first: OrderVerdict

    @property
    def preferences(self) -> tuple[int, int]:
        """The preference for ``x`` in each order (−2 to 2)."""
        return self.x_first.value, -self.y_first.value

    @property
    def margin(self) -> float:
        """The mean preference for ``x`` over both orders (−2 to 2); negative when ``y`` is preferred."""
        first, second = self.preferences
        return (first + second) / 2

    @property
    def consistent(self) -> bool:
        """False when the two orders name different winners: the verdict followed the position."""
        first, second = self.preferences
        return first * second >= 0

    @property
    def winner(self) -> str:
        """``x``, ``y`` or ``tie`` (an inconsistent comparison is a tie)."""
        if not self.consistent or self.margin == 0:
            return "tie"
        return "x" if self.margin > 0 else "y"

    def flipped(self) -> Comparison:
        """The same comparison seen from ``y``'s side."""
        return Comparison(self.y_first, self.x_first)

    def to_dict(self) -> dict[str, Any]:
        return {
            "margin": self.margin,
            "consistent": self.consistent,
            "winner": self.winner,
            "x_first": self.x_first.to_dict(),
            "y_first": self.y_first.to_dict(),
        }


class PairwiseJudge:
    """Compares two answers to one request in both orders (``steps/prompts/pair_compare.yaml``).

    Args:
        model: the judge model.
        tag: the usage bucket of its calls (the calling step's name).
        blueprint: the style guide the answers should follow, or None.
        length_range: the answers' target length in tokens; None when length is not the point, and the judge
            is told not to count length either way.
        seed: sampling seed passed to providers that honour one.
    """

    template_name: ClassVar[str] = "pair_compare"

    def __init__(
        self,
        model: ModelHandle,
        *,
        tag: str,
        blueprint: str | None = None,
        length_range: tuple[int, int] | None = None,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.tag = tag
        self.template = load_template(self.template_name)
        self.blueprint = blueprint or ""
        self.length_range = length_range
        self.seed = seed

    def request(
        self, prompt: str, context: str, first: str, second: str, images: Sequence[ImagePart] = ()
    ) -> ChatRequest:
        """The request for one order: ``first`` shown as answer A, ``second`` as answer B."""
        low, high = self.length_range or (0, 0)
        messages = self.template.render(
            prompt=prompt,
            context=context,
            blueprint=self.blueprint,
            length_target=self.length_range is not None,
            length_low=low,
            length_high=high,
            answer_a=first,
            answer_b=second,
            tokens_a=approx_tokens(first),
            tokens_b=approx_tokens(second),
        )
        if images and self.model.route.vision:
            messages = with_images(messages, images)
        return ChatRequest(
            messages, max_tokens=PAIR_MAX_TOKENS, temperature=0.0, json_schema=PAIR_SCHEMA, seed=self.seed
        )

    def requests(
        self, prompt: str, context: str, x: str, y: str, images: Sequence[ImagePart] = ()
    ) -> tuple[ChatRequest, ChatRequest]:
        """Both orders' requests: ``x`` first, then ``y`` first."""
        return self.request(prompt, context, x, y, images), self.request(prompt, context, y, x, images)

    async def compare(
        self, prompt: str, context: str, x: str, y: str, images: Sequence[ImagePart] = ()
    ) -> Comparison:
        """Judge ``x`` against ``y`` in both orders (concurrently); model errors are raised."""
        x_first, y_first = self.requests(prompt, context, x, y, images)
        replies = await gather_or_cancel(
            [self.model.chat(x_first, tag=self.tag), self.model.chat(y_first, tag=self.tag)]
        )
        first, second = (_order_verdict(reply.data) for reply in replies)
        return Comparison(first, second)


def _order_verdict(data: Any) -> OrderVerdict:
    values = data if isinstance(data, dict) else {}
    verdict = str(values.get("verdict", "A=B"))
    return OrderVerdict(verdict if verdict in VERDICT_VALUES else "A=B", rationale_of(values))


# ---- length-controlled win rate --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WinRate:
    """A win rate over comparisons, raw and length-controlled (ties count half).

    Attributes:
        comparisons: the comparisons counted.
        raw: the share won (0–1), ties counted as half a win.
        length_controlled: the win rate with the length difference's effect removed, or None when it cannot
            be estimated (fewer than `MIN_LENGTH_CONTROL` comparisons, or no length difference at all).
        length_coefficient: how strongly the longer answer won (the fitted weight of the length term).
    """

    comparisons: int
    raw: float | None
    length_controlled: float | None
    length_coefficient: float | None

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "comparisons": self.comparisons,
            "win_rate": rounded(self.raw),
            "length_controlled_win_rate": rounded(self.length_controlled),
            "length_coefficient": rounded(self.length_coefficient),
        }


#: Fewest comparisons a length-controlled win rate is fitted from.
MIN_LENGTH_CONTROL = 10
#: Ridge penalty of the logistic fit: keeps the fit finite when one side wins every comparison.
_RIDGE = 0.1


def length_controlled_win_rate(outcomes: Sequence[float], length_differences: Sequence[float]) -> WinRate:
    """The win rate of one side over comparisons, and the same with the length difference controlled for.

    Args:
        outcomes: per comparison, 1 for a win, 0.5 for a tie, 0 for a loss.
        length_differences: per comparison, the side's answer length minus the other's (any unit).

    The model (alpaca_eval's length-controlled GLM, reduced to one compared side) is
    ``P(win) = σ(θ₀ + θ₁ · tanh(Δ / s))`` with ``s`` the standard deviation of the length differences,
    fitted by penalised maximum likelihood (ties are half a win and half a loss). The length-controlled win
    rate is ``σ(θ₀)``: the win rate the side would have with answers as long as the other's.
    """
    if len(outcomes) != len(length_differences):
        raise ValueError(f"{len(outcomes)} outcomes but {len(length_differences)} length differences")
    count = len(outcomes)
    if count == 0:
        return WinRate(0, None, None, None)
    y = np.asarray(outcomes, dtype=np.float64)
    raw = float(y.mean())
    deltas = np.asarray(length_differences, dtype=np.float64)
    spread = float(deltas.std())
    if count < MIN_LENGTH_CONTROL or spread == 0.0:
        return WinRate(count, raw, None, None)
    features = np.column_stack([np.ones(count), np.tanh(deltas / spread)])
    theta = _logistic_fit(features, y)
    return WinRate(count, raw, float(_sigmoid(theta[0])), float(theta[1]))


def _sigmoid(value: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-value))


def _logistic_fit(features: np.ndarray, y: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Newton's method on the ridge-penalised logistic log-likelihood (soft targets allowed)."""
    theta = np.zeros(features.shape[1])
    ridge = _RIDGE * np.eye(features.shape[1])
    for _ in range(iterations):
        p = _sigmoid(features @ theta)
        gradient = features.T @ (p - y) + ridge @ theta
        hessian = (features * (p * (1 - p))[:, None]).T @ features + ridge
        step = np.linalg.solve(hessian, gradient)
        theta = theta - step
        if float(np.abs(step).max()) < 1e-9:
            break
    return theta
