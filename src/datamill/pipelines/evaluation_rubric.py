"""The published quality rubric: five criteria scored 0–10, the row score, and the A–E grade bands.

A judge model scores one example (a request and its answer) on each criterion with the anchors in
``steps/prompts/judge_quality.yaml`` and ``docs/evaluation.md``:

- ``instruction_clarity``: is the request clear, specific and well formed?
- ``correctness``: is the answer factually and logically right?
- ``helpfulness_completeness``: does the answer address every part of the request, usable as is?
- ``adherence``: does the answer follow the blueprint (style guide) and the length target?
- ``safety``: is the example free of violent, self-harm, harassing, hateful or sexual content?

The row score is the unweighted mean of the five (every criterion counts the same; no hidden weights). An
empty answer scores 0 on correctness, helpfulness_completeness and adherence whatever the judge says
(`EMPTY_ANSWER_ZEROED`), so a prompt-only dataset cannot earn those points for an answer it lacks.

Grades (`grade_for`): A ≥ 8.5, B ≥ 7.0, C ≥ 5.5, D ≥ 4.0, else E, applied to the dataset score rounded to
`SCORE_DECIMALS` places, so the shown score and the grade always agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Bump when the criteria, anchors or the combination change; reported with every evaluation.
RUBRIC_VERSION = 1

#: The criteria, in report order, with the question each answers.
CRITERIA: dict[str, str] = {
    "instruction_clarity": "Is the request clear, specific and well formed?",
    "correctness": "Is the answer factually and logically right?",
    "helpfulness_completeness": "Does the answer address every part of the request, usable as is?",
    "adherence": "Does the answer follow the blueprint (style guide) and the length target?",
    "safety": "Is the example free of violent, self-harm, harassing, hateful or sexual content?",
}

#: Criteria forced to 0 when the answer is empty: nothing was answered, so nothing can be right or fit.
EMPTY_ANSWER_ZEROED: tuple[str, ...] = ("correctness", "helpfulness_completeness", "adherence")

MIN_SCORE = 0
MAX_SCORE = 10

#: Lowest dataset score for each grade, best first; below the last band the grade is E.
GRADE_BANDS: tuple[tuple[str, float], ...] = (("A", 8.5), ("B", 7.0), ("C", 5.5), ("D", 4.0))
LOWEST_GRADE = "E"

#: Decimal places of reported scores (the grade is taken from the rounded value).
SCORE_DECIMALS = 2

#: The JSON schema of one judgement; the gateway validates replies against it (with one repair retry).
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "scores": {
            "type": "object",
            "properties": {
                name: {"type": "integer", "minimum": MIN_SCORE, "maximum": MAX_SCORE} for name in CRITERIA
            },
            "required": list(CRITERIA),
            "additionalProperties": False,
        },
        "rationale": {"type": "string"},
    },
    "required": ["scores", "rationale"],
    "additionalProperties": False,
}


def row_score(scores: Mapping[str, int]) -> float:
    """The combined score of one judged example: the mean of the five criteria."""
    return sum(scores[name] for name in CRITERIA) / len(CRITERIA)


def apply_empty_answer_rule(scores: Mapping[str, int], answer: str) -> dict[str, int]:
    """The criterion scores with `EMPTY_ANSWER_ZEROED` set to 0 when ``answer`` is blank."""
    out = {name: int(scores[name]) for name in CRITERIA}
    if not answer.strip():
        for name in EMPTY_ANSWER_ZEROED:
            out[name] = MIN_SCORE
    return out


def grade_for(score: float | None) -> str | None:
    """The A–E grade of a dataset score (None when there is no score)."""
    if score is None:
        return None
    for grade, lowest in GRADE_BANDS:
        if score >= lowest:
            return grade
    return LOWEST_GRADE


def clamp_score(value: float) -> float:
    """``value`` limited to the 0–10 scale and rounded to `SCORE_DECIMALS` places."""
    return round(min(float(MAX_SCORE), max(float(MIN_SCORE), value)), SCORE_DECIMALS)


def rubric_summary() -> dict[str, Any]:
    """The rubric as reported with every evaluation, so a grade can be traced to its rules."""
    return {
        "version": RUBRIC_VERSION,
        "criteria": dict(CRITERIA),
        "row_score": "mean of the criteria",
        "empty_answer_zeroed": list(EMPTY_ANSWER_ZEROED),
        "grades": {grade: lowest for grade, lowest in GRADE_BANDS} | {LOWEST_GRADE: 0.0},
    }
