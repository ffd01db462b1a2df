"""The published quality rubric (version 2): criteria scored 1–5 with every level described, and the grades.

Four quality criteria make the grade; a style criterion is scored apart. Each criterion describes all five
levels; the row score and the A–E grade bands follow.

A judge model scores one example (a request and its answer) with the levels below, which
``steps/prompts/judge_quality.yaml`` and ``docs/evaluation.md`` state word for word (`criteria_text`). The
quality criteria ask what the example is *meant* to be — a clear request, a right and helpful answer, a safe
exchange — and are judged on both sides without the run's targets, so the source data is not graded against
a style guide or a length it never aimed at:

- ``instruction_clarity``: is the request clear, specific and answerable?
- ``correctness``: is the answer factually and logically right?
- ``helpfulness_completeness``: does the answer do all the request asks, usable as is?
- ``safety``: is the example free of violent, self-harm, harassing, hateful or sexual content?

Target adherence is scored apart and reported beside the grade, never in it: ``style`` (`STYLE_CRITERION`,
only with a blueprint, ``steps/prompts/judge_style.yaml``) and the share of answers within the length target
(counted, not judged).

The row score is the unweighted mean of the four quality criteria placed on the 0–10 scale (1 → 0, 3 → 5,
5 → 10; `datamill.steps.judging.to_ten`). An empty answer scores the lowest level on correctness and
helpfulness_completeness whatever the judge says (`EMPTY_ANSWER_LOWEST`), so a prompt-only dataset cannot
earn those points for an answer it lacks.

Grades (`grade_for`): A ≥ 8.5, B ≥ 7.0, C ≥ 5.5, D ≥ 4.0, else E, applied to the dataset score rounded to
`SCORE_DECIMALS` places, so the shown score and the grade always agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datamill.steps.judging import SCALE_MIN, Criterion, scores_schema, to_ten

#: Bump when the criteria, levels or the combination change; reported with every evaluation.
RUBRIC_VERSION = 2

QUALITY_CRITERIA: tuple[Criterion, ...] = (
    Criterion(
        "instruction_clarity",
        "Is the request clear, specific and answerable? (Instructions about the answer's length, tone or "
        "format neither add to nor take from clarity.)",
        (
            "empty, unintelligible, or not a request at all",
            "the task can only be guessed: key information is missing or contradictory",
            "understandable but vague, ambiguous or sloppy: an answer has to assume things",
            "clear, with small vagueness or sloppiness that does not change the answer",
            "clear and specific: one reading, and everything needed to answer is given",
        ),
    ),
    Criterion(
        "correctness",
        "Is the answer factually and logically right?",
        (
            "empty, wrong or off-topic",
            "major errors: the main point or key steps are wrong",
            "partly right: the main point holds, but with errors or unsupported claims",
            "right, with a minor slip that does not mislead",
            "fully correct: every fact, number, step and line of reasoning holds",
        ),
    ),
    Criterion(
        "helpfulness_completeness",
        "Does the answer do all the request asks, usable as is?",
        (
            "empty or useless",
            "touches the request but leaves most of it undone",
            "answers part of it or stops short: the asker needs more",
            "answers all of it, with small gaps or needless padding",
            "complete and directly usable: every part answered, nothing needless",
        ),
    ),
    Criterion(
        "safety",
        "Is the example free of violent, self-harm, harassing, hateful or sexual content?",
        (
            "clearly harmful: it helps with or promotes such content",
            "harmful in part: some of it helps with or promotes such content",
            "borderline or careless: risky content without the care it needs",
            "safe, with a careless phrase",
            "safe",
        ),
    ),
)

#: Target adherence to the run's style guide, scored apart from the grade.
STYLE_CRITERION = Criterion(
    "style",
    "Does the answer follow the style guide (voice, register, format and manner)?",
    (
        "ignores the style guide",
        "follows little of it",
        "follows it in part, or loosely",
        "follows it, with small lapses",
        "follows it throughout",
    ),
)

#: The quality criteria, in report order, with the question each answers.
CRITERIA: dict[str, str] = {c.name: c.question for c in QUALITY_CRITERIA}

#: Criteria set to the lowest level when the answer is empty: nothing was answered, so nothing can be right.
EMPTY_ANSWER_LOWEST: tuple[str, ...] = ("correctness", "helpfulness_completeness")

MIN_SCORE = 0
MAX_SCORE = 10

#: Lowest dataset score for each grade, best first; below the last band the grade is E.
GRADE_BANDS: tuple[tuple[str, float], ...] = (("A", 8.5), ("B", 7.0), ("C", 5.5), ("D", 4.0))
LOWEST_GRADE = "E"

#: Decimal places of reported scores (the grade is taken from the rounded value).
SCORE_DECIMALS = 2

#: The JSON schemas of a quality and a style judgement: the rationale first, then the scores (1–5).
JUDGE_SCHEMA: dict[str, Any] = scores_schema(QUALITY_CRITERIA)
STYLE_SCHEMA: dict[str, Any] = scores_schema((STYLE_CRITERION,))


def row_score(scores: Mapping[str, int]) -> float:
    """The score of one judged example on the 0–10 scale: the mean of the quality criteria."""
    return to_ten(sum(scores[name] for name in CRITERIA) / len(CRITERIA))


def apply_empty_answer_rule(scores: Mapping[str, int], answer: str) -> dict[str, int]:
    """The criterion scores with `EMPTY_ANSWER_LOWEST` set to the lowest level when ``answer`` is blank."""
    out = {name: int(scores[name]) for name in CRITERIA}
    if not answer.strip():
        for name in EMPTY_ANSWER_LOWEST:
            out[name] = SCALE_MIN
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
        "scale": "each criterion 1-5, every level described; row score = mean placed on 0-10",
        "criteria": {c.name: {"question": c.question, "levels": list(c.levels)} for c in QUALITY_CRITERIA},
        "style": {"question": STYLE_CRITERION.question, "levels": list(STYLE_CRITERION.levels)},
        "row_score": "mean of the quality criteria, (mean - 1) x 2.5",
        "empty_answer_lowest": list(EMPTY_ANSWER_LOWEST),
        "grades": {grade: lowest for grade, lowest in GRADE_BANDS} | {LOWEST_GRADE: 0.0},
    }
