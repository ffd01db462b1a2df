"""Grading one sample with a judge: the tenant's rubric, its dimensions, one JSON verdict.

The reply follows datamill's judging protocol (`datamill.steps.judging`): the reasoning first, then one
entry per dimension (its notes, then its score), then the judge's confidence. A ``scale_1_5`` dimension is
scored 1–5 against levels the prompt describes and reported on 0–1 (``(score − 1) / 4``); a ``pass_fail``
dimension passes or fails (1 or 0). ``overall_score`` is the mean of the required dimensions (of every
dimension when none is required). Values are shown to the judge as the custom evaluations show them
(`datamill.services.datasets.custom_judge.as_text`: text as is, anything else as JSON, cut at 8,000
characters). A call the gateway could not turn into a valid verdict (a refusal, a cut, a reply off the
schema after its repair) is a failed `Graded` naming the reason; errors that would fail every sample (no
route, no key) are raised.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datamill.core.errors import ModelError, fails_every_row
from datamill.llm.gateway import ModelHandle
from datamill.llm.types import ChatRequest, Message
from datamill.services.datasets.custom_judge import as_text
from datamill.steps.judging import SCALE_MAX, SCALE_MIN

SCORING_MODELS = ("scale_1_5", "pass_fail")
#: The levels of a ``scale_1_5`` dimension, as the prompt describes them.
LEVELS = (
    "does not meet the rubric at all",
    "meets a small part of the rubric; major problems",
    "meets about half of the rubric; clear problems",
    "meets the rubric with minor problems",
    "fully meets the rubric",
)
CONFIDENCE = {"low": 0.33, "medium": 0.67, "high": 1.0}
JUDGE_MAX_TOKENS = 1500
SCORE_DECIMALS = 4
TAG = "judge"

_SYSTEM = (
    "You are a strict, fair evaluator. Grade the interaction below against the rubric. Reason first, then "
    "give each dimension its notes and its score. Answer with JSON only."
)


@dataclass(frozen=True)
class Dimension:
    """One graded dimension of a judge."""

    dimension_id: str
    name: str
    scoring_model: str
    required: bool
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension_id": self.dimension_id,
            "name": self.name,
            "scoring_model": self.scoring_model,
            "required": self.required,
            "description": self.description,
        }


@dataclass(frozen=True)
class Graded:
    """The verdict on one sample (``verdict`` in the wire's shape), or why there is none."""

    verdict: dict[str, Any] | None
    error: str | None = None


def _schema(dimensions: Sequence[Dimension]) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for d in dimensions:
        if d.scoring_model == "pass_fail":
            verdict: dict[str, Any] = {"type": "boolean"}
            key = "passed"
        else:
            verdict = {"type": "integer", "minimum": SCALE_MIN, "maximum": SCALE_MAX}
            key = "score"
        entries[d.name] = {
            "type": "object",
            "properties": {"notes": {"type": "string"}, key: verdict},
            "required": ["notes", key],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "dimensions": {
                "type": "object",
                "properties": entries,
                "required": [d.name for d in dimensions],
                "additionalProperties": False,
            },
            "confidence": {"type": "string", "enum": list(CONFIDENCE)},
        },
        "required": ["reasoning", "dimensions", "confidence"],
        "additionalProperties": False,
    }


def _prompt(rubric: str, dimensions: Sequence[Dimension], fields: Sequence[tuple[str, Any]]) -> str:
    lines = ["Rubric:", rubric, "", "Dimensions:"]
    for d in dimensions:
        about = f": {d.description}" if d.description else ""
        if d.scoring_model == "pass_fail":
            lines.append(f"- {d.name}{about} (passed: true or false)")
        else:
            lines.append(f"- {d.name}{about} (score {SCALE_MIN}-{SCALE_MAX}):")
            lines += [f"    {SCALE_MIN + i} = {level}" for i, level in enumerate(LEVELS)]
    lines += ["", "The interaction to grade:"]
    for label, value in fields:
        lines += [f"<{label}>", as_text(value), f"</{label}>"]
    return "\n".join(lines)


def render(fields: Sequence[tuple[str, Any]]) -> str:
    """The text a judge grades, as stored in an evaluation's ``rendered_text``."""
    return "\n\n".join(f"{label}:\n{as_text(value)}" for label, value in fields)


class DimensionJudge:
    """Grades samples against a rubric on its dimensions, with one model."""

    def __init__(self, model: ModelHandle, rubric: str, dimensions: Sequence[Dimension]) -> None:
        self.model, self.rubric, self.dimensions = model, rubric, tuple(dimensions)

    async def grade(self, fields: Sequence[tuple[str, Any]]) -> Graded:
        """The verdict on one sample, shown as ``(label, value)`` pairs."""
        request = ChatRequest(
            (Message("system", _SYSTEM), Message("user", _prompt(self.rubric, self.dimensions, fields))),
            max_tokens=JUDGE_MAX_TOKENS,
            temperature=0.0,
            json_schema=_schema(self.dimensions),
        )
        try:
            result = await self.model.chat(request, tag=TAG)
        except ModelError as exc:
            if fails_every_row(exc):
                raise
            return Graded(None, f"{type(exc).__name__}: {exc}")
        return Graded(self._verdict(result.data))

    def _verdict(self, data: dict[str, Any]) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        scores: list[float] = []
        for d in self.dimensions:
            entry = data["dimensions"][d.name]
            passed = bool(entry["passed"]) if d.scoring_model == "pass_fail" else None
            score = (
                float(passed)
                if passed is not None
                else (int(entry["score"]) - SCALE_MIN) / (SCALE_MAX - SCALE_MIN)
            )
            scores.append(score)
            rows.append(
                {
                    "dimension_id": d.dimension_id,
                    "name": d.name,
                    "scoring_model": d.scoring_model,
                    "score": round(score, SCORE_DECIMALS),
                    "passed": passed,
                    "label": None,
                    "labels": None,
                    "notes": str(entry.get("notes", "")).strip(),
                }
            )
        counted = [s for s, d in zip(scores, self.dimensions, strict=True) if d.required] or scores
        return {
            "overall_score": round(statistics.fmean(counted), SCORE_DECIMALS),
            "confidence": CONFIDENCE[str(data["confidence"])],
            "reasoning": str(data.get("reasoning", "")).strip(),
            "dimensions": rows,
        }


def summarize(verdicts: Sequence[Graded]) -> dict[str, Any] | None:
    """The verdict of several samples: each dimension's and the overall mean over the graded ones.

    None when no sample was graded.
    """
    graded = [g.verdict for g in verdicts if g.verdict is not None]
    if not graded:
        return None
    dimensions = []
    for index, first in enumerate(graded[0]["dimensions"]):
        scores = [float(v["dimensions"][index]["score"]) for v in graded]
        row = dict(first) | {"score": round(statistics.fmean(scores), SCORE_DECIMALS), "notes": None}
        if first["scoring_model"] == "pass_fail":
            row["passed"] = all(v["dimensions"][index]["passed"] for v in graded)
        dimensions.append(row)
    return {
        "overall_score": round(statistics.fmean(float(v["overall_score"]) for v in graded), SCORE_DECIMALS),
        "confidence": round(statistics.fmean(float(v["confidence"]) for v in graded), SCORE_DECIMALS),
        "reasoning": f"the mean over {len(graded)} graded samples of {len(verdicts)}",
        "dimensions": dimensions,
    }
