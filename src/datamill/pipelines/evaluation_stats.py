"""Dataset statistics the evaluation reports beside the grade: lengths and languages of each side.

Lengths are approximate tokens (characters ÷ 4, rounded up) of every row's prompt and answer: the original
columns for the source rows, the enhanced ones for the output rows.

Languages count one population on both sides, so the two can be compared (`language_counts`):

- when the rows of both sides have a language column, its values over all rows of each side (so language
  expansion shows as new languages after); a row without a value counts as `UNKNOWN_LANGUAGE`;
- otherwise, when a detector is given, the detected language of the judged sample's rows that have both
  sides, before and after, so both sides count the same rows; a text too short, or a detection not sure
  enough for `text.langid.check_language` to trust it, counts as `UNKNOWN_LANGUAGE`;
- otherwise nothing is counted.

Each side's statistics say which population was counted and how many rows it holds.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from datamill.pipelines.evaluation_sample import Row, RowPair, SideText, approx_tokens, text_of
from datamill.text.langid import MIN_CONFIDENCE, MIN_LETTERS, LanguageDetector, count_letters

#: Percentiles reported for each length distribution.
LENGTH_PERCENTILES = (10, 50, 90)
#: The language category of a row whose language is not known (no value, or no sure detection).
UNKNOWN_LANGUAGE = "(unknown)"
#: The populations the languages are counted over (module doc).
ALL_ROWS = "all rows"
JUDGED_SAMPLE = "judged sample"


@dataclass(frozen=True, slots=True)
class LanguageCount:
    """The languages of one side's rows, and which rows were counted (`ALL_ROWS`, `JUDGED_SAMPLE` or none)."""

    counts: dict[str, int] = field(default_factory=dict)
    population: str | None = None
    rows: int = 0

    def to_dict(self) -> dict[str, Any] | None:
        return None if self.population is None else {"of": self.population, "rows": self.rows}


@dataclass(slots=True)
class SideStats:
    """Lengths (approximate tokens) and languages of one side's rows."""

    rows: int = 0
    prompt_tokens: list[int] = field(default_factory=list)
    answer_tokens: list[int] = field(default_factory=list)
    language_count: LanguageCount = field(default_factory=LanguageCount)

    @property
    def languages(self) -> dict[str, int]:
        """Rows per language, most frequent first."""
        return self.language_count.counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "prompt_tokens": summarize(self.prompt_tokens),
            "answer_tokens": summarize(self.answer_tokens),
            "languages": dict(self.languages),
            "languages_counted": self.language_count.to_dict(),
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


def side_stats(rows: Sequence[Row], sides: Sequence[SideText], languages: LanguageCount) -> SideStats:
    """The statistics of one side, with its languages as `language_counts` counted them."""
    return SideStats(
        rows=len(rows),
        prompt_tokens=[approx_tokens(s.prompt) for s in sides],
        answer_tokens=[approx_tokens(s.answer) for s in sides],
        language_count=languages,
    )


def language_counts(
    before: Sequence[Row],
    after: Sequence[Row],
    sample: Iterable[RowPair],
    *,
    language_column: str,
    detector: LanguageDetector | None = None,
) -> tuple[LanguageCount, LanguageCount]:
    """The languages of both sides, over one population (see the module doc for which)."""
    if _has_column(before, language_column) and _has_column(after, language_column):
        return _column_count(before, language_column), _column_count(after, language_column)
    if detector is None:
        return LanguageCount(), LanguageCount()
    both = [(p.before, p.after) for p in sample if p.after is not None]
    found = [
        LanguageCount(_ordered(Counter(_detect(detector, text) for text in texts)), JUDGED_SAMPLE, len(both))
        for texts in ([b for b, _ in both], [a for _, a in both])
    ]
    return found[0], found[1]


def _has_column(rows: Sequence[Row], column: str) -> bool:
    return any(text_of(r.get(column)).strip() for r in rows)


def _column_count(rows: Sequence[Row], column: str) -> LanguageCount:
    values = Counter(text_of(r.get(column)).strip() or UNKNOWN_LANGUAGE for r in rows)
    return LanguageCount(_ordered(values), ALL_ROWS, len(rows))


def _ordered(counts: Counter[str]) -> dict[str, int]:
    """Most frequent first, the unknown ones last."""
    unknown = counts.pop(UNKNOWN_LANGUAGE, 0)
    return dict(counts.most_common()) | ({UNKNOWN_LANGUAGE: unknown} if unknown else {})


def _detect(detector: LanguageDetector, side: SideText) -> str:
    """The language of a judged text (its answer, else its prompt); unknown when the detector is unsure."""
    text = side.answer if side.answer.strip() else side.prompt
    if count_letters(text) < MIN_LETTERS:
        return UNKNOWN_LANGUAGE
    code, confidence = detector.detect(text)
    return code if code and confidence >= MIN_CONFIDENCE else UNKNOWN_LANGUAGE
