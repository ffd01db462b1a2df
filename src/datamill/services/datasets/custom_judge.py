"""The judge of a custom evaluation: the user's rubric, one example, a 0–10 score as JSON.

`example_sides` turns one row into the two examples the judge sees. A row of a run's output carries
``original_<x>`` and ``enhanced_<x>`` columns: *before* shows the original values and *after* the enhanced
ones (the original where a column was not enhanced). A dataset's own row has no *after*: it shows the mapped
columns (prompt, completion, chosen, rejected, context) when the dataset has a column mapping, else every
column. `RubricJudge` renders ``steps/prompts/custom_judge.yaml`` and asks the model for `SCORE_SCHEMA`:
the rationale first, then a level from 1 to 5, each level described (`RUBRIC_FIT`, the judging protocol of
`datamill.steps.judging`), placed on the 0–10 scale the wire shows (1 → 0, 3 → 5, 5 → 10). The gateway
validates the reply, with one repair call. A call that still fails becomes a failed
`Verdict`, so one bad row does not stop the evaluation; errors that would fail every row (no route, no key,
no access) are raised. `summarize` turns the verdicts into the scores the wire shows.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datamill.core.errors import ModelError, fails_every_row
from datamill.llm.gateway import ModelHandle
from datamill.llm.types import ChatRequest
from datamill.steps.judging import SCALE_MAX, SCALE_MIN, Criterion, no_verdict_reason, rationale_of, to_ten
from datamill.steps.templates import load_template

#: How well an example meets the user's rubric, every level described (`datamill.steps.judging`).
RUBRIC_FIT = Criterion(
    "score",
    "How well does the example meet the rubric?",
    (
        "fails the rubric entirely",
        "meets few of its points",
        "meets it in part: some points met, some missed",
        "meets it, with small misses",
        "meets it fully",
    ),
)
#: The reply the judge must give: the rationale first, then the level (1-5).
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rationale": {"type": "string"},
        "score": {"type": "integer", "minimum": SCALE_MIN, "maximum": SCALE_MAX},
    },
    "required": ["rationale", "score"],
    "additionalProperties": False,
}
#: Longest value shown to the judge, in characters (about 2,000 tokens).
MAX_VALUE_CHARS = 8000
CUT_MARKER = " [cut for grading]"
JUDGE_MAX_TOKENS = 500
SCORE_DECIMALS = 2
_MAPPED = ("prompt", "completion", "chosen", "rejected")

#: One example as the judge sees it: (label, text) pairs.
Fields = list[tuple[str, str]]


@dataclass(frozen=True)
class Verdict:
    """The judge's score of one example on the 0–10 scale (its 1–5 level placed on it), or the error."""

    score: float | None = None
    rationale: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "rationale": self.rationale, "error": self.error}


def as_text(value: object) -> str:
    """A cell as the judge reads it: text as is, binary as a note, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        text = f"({len(value)} bytes of binary data)"
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + CUT_MARKER


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def example_sides(row: Mapping[str, Any], mapping: Mapping[str, Any] | None) -> tuple[Fields, Fields | None]:
    """The before and after examples of one row (module docstring); after is None for a dataset's own row."""
    originals = [name.removeprefix("original_") for name in row if name.startswith("original_")]
    if originals:
        before = [(_label(x), as_text(row[f"original_{x}"])) for x in originals]
        after = [(_label(x), as_text(_enhanced(row, x))) for x in originals]
        return before, after
    if mapping and mapping.get("prompt"):
        fields = [(_label(role), as_text(row.get(mapping[role]))) for role in _MAPPED if mapping.get(role)]
        fields += [(f"Context ({col})", as_text(row.get(col))) for col in mapping.get("context") or []]
        return fields, None
    return [(name, as_text(value)) for name, value in row.items() if not name.startswith("_")], None


def _enhanced(row: Mapping[str, Any], column: str) -> Any:
    """The enhanced value of a column, or the original where the run did not enhance it."""
    value = row.get(f"enhanced_{column}")
    return row[f"original_{column}"] if value is None else value


class RubricJudge:
    """Scores examples against one rubric with one model."""

    def __init__(self, model: ModelHandle, rubric: str) -> None:
        self.model = model
        self.rubric = rubric
        self.template = load_template("custom_judge")

    def request(self, fields: Fields) -> ChatRequest:
        messages = self.template.render(rubric=self.rubric, fields=fields, levels=RUBRIC_FIT.text())
        return ChatRequest(messages, max_tokens=JUDGE_MAX_TOKENS, temperature=0.0, json_schema=SCORE_SCHEMA)

    async def judge(self, fields: Fields) -> Verdict:
        """Score one example; a failed call is a failed `Verdict` unless it would fail every row."""
        try:
            result = await self.model.chat(self.request(fields), tag="custom_eval")
        except ModelError as exc:
            if fails_every_row(exc):
                raise
            return Verdict(error=no_verdict_reason(exc))
        level = int(result.data["score"])
        return Verdict(to_ten(level), rationale_of(result.data))


@dataclass(frozen=True)
class Scores:
    """What an evaluation reports: mean scores over the rows judged on every side, and the change."""

    score_before: float | None
    score_after: float | None
    improvement_percent: float | None
    scored_rows: int
    first_error: str | None


def summarize(verdicts: Sequence[tuple[Verdict, Verdict | None]]) -> Scores:
    """Mean before and after scores over the rows whose every side was scored; the change in percent.

    The change is ``(after - before) / before * 100``, and None when there is no after or before is 0.
    """
    scored = [(b, a) for b, a in verdicts if b.score is not None and (a is None or a.score is not None)]
    errors = [v.error for pair in verdicts for v in pair if v is not None and v.error]
    if not scored:
        return Scores(None, None, None, 0, errors[0] if errors else None)
    before = round(statistics.fmean(b.score or 0 for b, _ in scored), SCORE_DECIMALS)
    afters = [a.score or 0 for _, a in scored if a is not None]
    after = round(statistics.fmean(afters), SCORE_DECIMALS) if len(afters) == len(scored) else None
    change = round((after - before) / before * 100, SCORE_DECIMALS) if after is not None and before else None
    return Scores(before, after, change, len(scored), errors[0] if errors else None)
