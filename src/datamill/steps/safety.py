"""Safety review: an LLM judge scores each row's prompt and response against the five safety categories.

Runs last, when ``brand_controls.safety_categories`` is non-empty. One call per row with a JSON schema
(``safety.yaml``, temperature 0) scores the request (``enhanced_prompt``, else ``original_prompt``) and the
response on every `SafetyCategory`, whichever were listed. It follows the judging protocol of
`datamill.steps.judging`: the template defines each category (`CATEGORY_DEFINITIONS`) and describes every
level of the 1–5 scale (`SAFETY_LEVELS`), shows one scored example, and the reply (`SAFETY_SCHEMA`) gives the
rationale first, then a level per category and part. Levels are placed on 0.0–1.0 (1 → 0.0, 2 → 0.25,
3 → 0.5, 4 → 0.75, 5 → 1.0), the scale the columns and the threshold use. The response is what the row
teaches: the chosen answer of a preference pair (``chosen``), else the generated completion
(``enhanced_completion``), else the original one. Columns:

- ``prompt_safety_issues`` / ``response_safety_issues``: the categories scoring at least `SAFETY_THRESHOLD`
  (0.5: level 3, the text does what the category describes, in part or mildly), in `SafetyCategory` order;
- ``safety_scores``: ``{"prompt": {category: score}, "response": {category: score}}``.

Images: the row's images go with the review when the judge's route has vision, so an unsafe image (or a
request that is only unsafe with its image) is scored; a text-only judge scores the text alone.

Removal: with ``remove_violations`` (the default, on the command line, in the Python API and on the server
alike) a row whose *response* reaches the threshold in a category the user *listed* is rejected, with a
reason naming each such category and its score, then the judge's rationale; it lands in the rejected rows
with its scores. A review that gives no verdict (the judge refused, was cut off, filtered or empty, or wrote
no JSON matching the schema after the repair call) rejects the row with a reason naming why
(`no_verdict_reason`), whatever ``remove_violations`` says: an unreviewed row is never passed as safe. The
prompt is
scored and flagged but never removes a row: a harmful request answered with a safe refusal is exactly the
example a model should learn from. Categories not listed are reported in the columns and never remove a row.
``remove_violations=False`` flags only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from datamill.core.brand import SafetyCategory
from datamill.core.errors import ModelError, fails_every_row
from datamill.llm.types import ChatRequest
from datamill.steps.base import Row, RowRejected, RowStep, StepContext
from datamill.steps.images import row_images
from datamill.steps.judging import (
    SCALE_MAX,
    SCALE_MIN,
    Criterion,
    ask_judge,
    no_verdict_reason,
    to_unit,
    verdict_schema,
)
from datamill.steps.metadata_injection import request_text
from datamill.steps.templates import load_template, with_images

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: A score at or above this marks the category as an issue (more present than not).
SAFETY_THRESHOLD = 0.5
#: Output-token cap of one review (a rationale of a few sentences and ten levels in JSON).
DEFAULT_MAX_TOKENS = 400
#: Typical review length in tokens, for estimates only.
EXPECTED_OUTPUT_TOKENS = 130
#: Where a row's text is scored: its request and its response.
PARTS = ("prompt", "response")

#: What each category covers, as the judge is told.
CATEGORY_DEFINITIONS: dict[SafetyCategory, str] = {
    SafetyCategory.VIOLENCE: "threats, incitement or instructions to physically harm people or animals, "
    "or glorifying such harm",
    SafetyCategory.SELF_HARM: "encouraging, instructing or glorifying suicide, self-injury or "
    "disordered eating",
    SafetyCategory.HARASSMENT: "insults, threats, intimidation or bullying aimed at a person or group",
    SafetyCategory.HATE: "demeaning or attacking people for a protected attribute such as race, ethnicity, "
    "religion, gender, sexual orientation or disability",
    SafetyCategory.SEXUAL: "sexually explicit content, or any sexual content involving minors",
}

#: How far a text does what a category describes, every level described (the same scale for each category).
SAFETY_LEVELS = Criterion(
    "level",
    "How far does the text do what the category describes?",
    (
        "not at all: nothing of the kind, or the topic only mentioned, explained or refused",
        "barely: a careless phrase or a hint, with no harmful use",
        "in part: the text does it mildly, or does part of it",
        "clearly: the text does it",
        "severely: explicit or detailed content, or content aimed at real harm",
    ),
)

_LEVELS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        c.value: {"type": "integer", "minimum": SCALE_MIN, "maximum": SCALE_MAX} for c in SafetyCategory
    },
    "required": [c.value for c in SafetyCategory],
    "additionalProperties": False,
}
#: The review's reply: the rationale, then a level per category for the prompt and for the response.
SAFETY_SCHEMA: dict[str, Any] = verdict_schema({part: _LEVELS_SCHEMA for part in PARTS})

Scores = dict[str, dict[str, float]]


def issues(scores: dict[str, float], threshold: float = SAFETY_THRESHOLD) -> list[str]:
    """The categories at or above ``threshold``, in `SafetyCategory` order."""
    return [c.value for c in SafetyCategory if scores.get(c.value, 0.0) >= threshold]


def parse_scores(data: Any) -> Scores:
    """The judge's validated reply as ``{part: {category: score}}``: each 1–5 level placed on 0.0–1.0."""
    out: Scores = {}
    for part in PARTS:
        given = data.get(part) if isinstance(data, dict) else None
        given = given if isinstance(given, dict) else {}
        out[part] = {
            c.value: to_unit(min(SCALE_MAX, max(SCALE_MIN, int(given.get(c.value) or SCALE_MIN))))
            for c in SafetyCategory
        }
    return out


class SafetyReview(RowStep):
    """Scores prompt and response on all five categories; rejects rows whose response violates a listed one.

    Args:
        model: the judge model.
        categories: the categories the user listed (``brand_controls.safety_categories``).
        remove_violations: reject rows whose response reaches the threshold in a listed category (else flag
            only).
        threshold: the score that makes a category an issue.
    """

    name: ClassVar[str] = "safety_review"
    model: ModelHandle
    input_columns = ("enhanced_prompt", "original_prompt", "chosen", "enhanced_completion", "_images")
    output_columns = ("prompt_safety_issues", "response_safety_issues", "safety_scores")
    expected_output_tokens = EXPECTED_OUTPUT_TOKENS

    def __init__(
        self,
        model: ModelHandle,
        *,
        categories: Iterable[SafetyCategory | str] = (),
        remove_violations: bool = True,
        threshold: float = SAFETY_THRESHOLD,
    ) -> None:
        self.model = model
        self.template = load_template("safety")
        self.categories = tuple(SafetyCategory(c) for c in categories)
        self.remove_violations = remove_violations
        self.threshold = threshold
        self.max_tokens = DEFAULT_MAX_TOKENS

    def requests_for(self, row: Row) -> list[ChatRequest]:
        """The one review request for ``row``."""
        response = (
            row.get("chosen")
            or row.get("enhanced_completion")
            or row.get("original_completion")
            or "(no response)"
        )
        messages = self.template.render(
            prompt=request_text(row) or "(no request)",
            response=response,
            categories=[(c.value, CATEGORY_DEFINITIONS[c]) for c in SafetyCategory],
            levels=SAFETY_LEVELS.text(),
        )
        if self.model.route.vision:
            messages = with_images(messages, row_images(row))
        return [ChatRequest(messages, max_tokens=self.max_tokens, temperature=0.0, json_schema=SAFETY_SCHEMA)]

    def violations(self, scores: Scores) -> list[str]:
        """Why the row's response breaks the listed categories, one phrase each; [] when it does not."""
        found = []
        for category in self.categories:
            score = scores["response"][category.value]
            if score >= self.threshold:
                found.append(
                    f"response scored {score:.2f} for {category.value} (threshold {self.threshold:g})"
                )
        return found

    async def process_row(self, row: Row, ctx: StepContext) -> None:
        (request,) = self.requests_for(row)
        try:
            reply = await ask_judge(self.model, request, tag=self.name)
        except ModelError as exc:
            if fails_every_row(exc):
                raise
            raise RowRejected(f"{self.name}: {no_verdict_reason(exc)}") from exc
        scores = parse_scores(reply.data)
        row["safety_scores"] = scores
        row["prompt_safety_issues"] = issues(scores["prompt"], self.threshold)
        row["response_safety_issues"] = issues(scores["response"], self.threshold)
        if self.remove_violations:
            found = self.violations(scores)
            if found:
                raise RowRejected(f"{self.name}: {'; '.join(found)}; the judge: {reply.rationale}")
