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
from typing import TYPE_CHECKING, Any

from datamill.pipelines.evaluation_sample import UNKNOWN_LANGUAGE, RowPair, SideText
from datamill.text.langid import MIN_CONFIDENCE, MIN_LETTERS, LanguageDetector, count_letters

if TYPE_CHECKING:
    from datamill.pipelines.evaluation_population import SideTally

#: Percentiles reported for each length distribution.
LENGTH_PERCENTILES = (10, 50, 90)
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
    #: One length per row, as compact arrays (8 bytes a row) when counted by a `SideTally`.
    prompt_tokens: Sequence[int] = field(default_factory=list)
    answer_tokens: Sequence[int] = field(default_factory=list)
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


def side_stats(tally: SideTally, languages: LanguageCount) -> SideStats:
    """The statistics of one side from its tally, with its languages as `language_counts` counted them."""
    return SideStats(
        rows=tally.rows,
        prompt_tokens=tally.prompt_tokens,
        answer_tokens=tally.answer_tokens,
        language_count=languages,
    )


def language_counts(
    before: SideTally,
    after: SideTally,
    sample: Iterable[RowPair],
    *,
    detector: LanguageDetector | None = None,
) -> tuple[LanguageCount, LanguageCount]:
    """The languages of both sides, over one population (see the module doc for which)."""
    if before.has_language and after.has_language:
        return _column_count(before), _column_count(after)
    if detector is None:
        return LanguageCount(), LanguageCount()
    both = [(p.before, p.after) for p in sample if p.after is not None]
    found = [
        LanguageCount(_ordered(Counter(_detect(detector, text) for text in texts)), JUDGED_SAMPLE, len(both))
        for texts in ([b for b, _ in both], [a for _, a in both])
    ]
    return found[0], found[1]


def _column_count(tally: SideTally) -> LanguageCount:
    return LanguageCount(_ordered(Counter(tally.languages)), ALL_ROWS, tally.rows)


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
