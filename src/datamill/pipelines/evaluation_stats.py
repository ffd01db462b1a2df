"""Dataset statistics the evaluation reports beside the grade: lengths and languages of each side.

Lengths are approximate tokens (characters ÷ 4, rounded up) of every row's prompt and answer: the original
columns for the source rows, the enhanced ones for the output rows. Languages count the values of the
language column over all rows of a side (so language expansion shows as new languages after); when the rows
have no language column but a detector is given, they count the detected language of the judged rows (texts
long enough and detections sure enough for `llm.langid.check_language` to trust them).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from datamill.pipelines.evaluation_sample import Row, SideText, approx_tokens, text_of
from datamill.text.langid import MIN_CONFIDENCE, MIN_LETTERS, LanguageDetector, count_letters

#: Percentiles reported for each length distribution.
LENGTH_PERCENTILES = (10, 50, 90)


@dataclass(slots=True)
class SideStats:
    """Lengths (approximate tokens) and languages of one side's rows."""

    rows: int = 0
    prompt_tokens: list[int] = field(default_factory=list)
    answer_tokens: list[int] = field(default_factory=list)
    languages: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "prompt_tokens": summarize(self.prompt_tokens),
            "answer_tokens": summarize(self.answer_tokens),
            "languages": dict(self.languages),
        }


def summarize(values: Sequence[int]) -> dict[str, float | int | None]:
    """Count, mean, min, max and the `LENGTH_PERCENTILES` of a list of lengths."""
    if not values:
        empty: dict[str, float | int | None] = {"count": 0, "mean": None, "min": None, "max": None}
        return empty | {f"p{p}": None for p in LENGTH_PERCENTILES}
    ordered = sorted(values)
    out: dict[str, float | int | None] = {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 2),
        "min": ordered[0],
        "max": ordered[-1],
    }
    for p in LENGTH_PERCENTILES:
        out[f"p{p}"] = ordered[min(len(ordered) - 1, (len(ordered) * p) // 100)]
    return out


def side_stats(
    rows: Sequence[Row],
    sides: Sequence[SideText],
    *,
    language_column: str,
    judged: Iterable[SideText] = (),
    detector: LanguageDetector | None = None,
) -> SideStats:
    """The statistics of one side (see the module doc for what counts)."""
    languages = Counter(value for value in (text_of(r.get(language_column)).strip() for r in rows) if value)
    if not languages and detector is not None:
        languages = Counter(code for code in (_detect(detector, s) for s in judged) if code)
    return SideStats(
        rows=len(rows),
        prompt_tokens=[approx_tokens(s.prompt) for s in sides],
        answer_tokens=[approx_tokens(s.answer) for s in sides],
        languages=dict(languages.most_common()),
    )


def _detect(detector: LanguageDetector, side: SideText) -> str | None:
    """The language of a judged text (its answer, else its prompt) when the detector is sure enough."""
    text = side.answer if side.answer.strip() else side.prompt
    if count_letters(text) < MIN_LETTERS:
        return None
    code, confidence = detector.detect(text)
    return code if confidence >= MIN_CONFIDENCE else None
