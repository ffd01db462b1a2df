"""Dataset-level penalties: what a per-row judge cannot see, subtracted from the mean row score.

Each penalty is ``min(cap, weight × rate)`` points, where the rate is the share of affected rows, and every
penalty is computed the same way on both sides:

===================  ======  ====  ==========================================================================
penalty              weight  cap   rate
===================  ======  ====  ==========================================================================
duplicates           10      2.0   rows whose request (prompt and context) repeats an earlier row's, exactly
                                   (case, punctuation and spacing ignored) or nearly (MinHash Jaccard ≥ 0.8,
                                   the near-dedup step's test), over all rows of that side
empty or truncated   10      3.0   rows whose prompt or answer is empty, or whose answer looks cut off
                                   (`looks_truncated`), over all rows of that side
rejected             10      3.0   source rows the run rejected for a failure — any step but the duplicate
                                   removals (counted as duplicates of the source) and the safety review
                                   (removal the run was asked for) — over the source rows; the source itself
                                   lost nothing, so its rate is 0
language mismatch    10      2.0   judged rows whose answer (the prompt if the answer is empty) a language
                                   detector places in another language than the row's language column,
                                   over the judged rows it could check (`llm.langid.check_language`: too
                                   short texts are skipped, unsure detections pass); only with a detector
                                   and a language column
===================  ======  ====  ==========================================================================

So 5% duplicates cost 0.5 points and 20% empty or truncated rows cost 2.0; the caps keep one flaw from sinking
a grade by itself. "Exact" means equal after the dedup step's normalisation (case, punctuation and spacing
ignored). Semantic duplicates (embeddings) are counted on neither side.

An answer the provider cut at its token limit never reaches the output: the gateway asks again and then
rejects the row (`datamill.llm.replies`). So the heuristic is what finds cut answers, in the source rows
(before) and in answers that stopped early on their own (after).

`looks_truncated` is a text heuristic: an unclosed code fence; a last line ending in ``, ; : - (`` or a
dangling connective (and, the, of, ...); or a prose line of at least `TRUNCATED_MIN_LINE_CHARS` characters
that ends without closing punctuation. List items, table rows, headings and code lines may end bare.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from datamill.core.languages import language_codes, language_name, normalize_language
from datamill.pipelines.evaluation_sample import Row, RowPair, SideText, text_of
from datamill.text.langid import LanguageDetector, check_language

DUPLICATE_WEIGHT, DUPLICATE_CAP = 10.0, 2.0
EMPTY_OR_TRUNCATED_WEIGHT, EMPTY_OR_TRUNCATED_CAP = 10.0, 3.0
REJECTED_WEIGHT, REJECTED_CAP = 10.0, 3.0
#: Steps whose removals are not failures: duplicates (counted as such) and the safety review's removals.
REMOVED_BY_DESIGN = ("deduplication", "near_deduplication", "semantic_deduplication", "safety_review")
LANGUAGE_MISMATCH_WEIGHT, LANGUAGE_MISMATCH_CAP = 10.0, 2.0
#: A bare prose line at least this long that ends without punctuation reads as cut mid-sentence.
TRUNCATED_MIN_LINE_CHARS = 60

_OPEN_ENDINGS = frozenset(",;:-(–—[{")
_DANGLING_WORDS = frozenset(
    ("a", "an", "the", "and", "or", "but", "of", "to", "for", "with", "from", "because")
)
_STRUCTURED_LINE = re.compile(r"^(\s{4,}|\t|[-*+] |\d+[.)] |\||#)")
_LAST_WORD = re.compile(r"(\w+)\W*$")


@dataclass(frozen=True, slots=True)
class Penalty:
    """One dataset-level penalty of one side.

    Attributes:
        name: ``duplicates``, ``empty_or_truncated``, ``rejected`` or ``language_mismatch``.
        affected: rows counted against the dataset.
        checked: rows looked at (the rate's denominator).
        points: points subtracted from the mean row score.
    """

    name: str
    affected: int
    checked: int
    points: float

    @property
    def rate(self) -> float | None:
        return self.affected / self.checked if self.checked else None

    def to_dict(self) -> dict[str, Any]:
        rate = self.rate
        return {
            "affected": self.affected,
            "checked": self.checked,
            "rate": None if rate is None else round(rate, 4),
            "points": round(self.points, 4),
        }


def penalty(name: str, affected: int, checked: int, weight: float, cap: float) -> Penalty:
    """``min(cap, weight × affected / checked)`` points (0 when nothing was checked)."""
    points = min(cap, weight * affected / checked) if checked else 0.0
    return Penalty(name, affected, checked, points)


def looks_truncated(text: str) -> bool:
    """Whether an answer looks cut off mid-sentence (see the module doc for the rules)."""
    stripped = text.rstrip()
    if not stripped:
        return False
    if stripped.count("```") % 2 == 1:
        return True
    last_line = stripped.splitlines()[-1]
    if last_line.strip()[-1] in _OPEN_ENDINGS:
        return True
    word = _LAST_WORD.search(last_line)
    if word is not None and word.group(1).lower() in _DANGLING_WORDS and last_line.rstrip()[-1].isalpha():
        return True
    if _STRUCTURED_LINE.match(last_line) or _ends_closed(last_line):
        return False
    return len(last_line.strip()) >= TRUNCATED_MIN_LINE_CHARS


def _ends_closed(line: str) -> bool:
    """Whether a line ends in closing punctuation or a symbol (emoji, quotes, brackets, full stops)."""
    category = unicodedata.category(line.rstrip()[-1])
    return category[0] in "PS"


def is_empty_or_truncated(side: SideText) -> bool:
    """Whether a row's prompt or answer is empty, or its answer looks cut off."""
    if not side.prompt.strip() or not side.answer.strip():
        return True
    return looks_truncated(side.answer)


def empty_or_truncated_penalty(affected: int, rows: int) -> Penalty:
    """The empty-or-truncated penalty: `affected` of one side's `rows` (`is_empty_or_truncated`)."""
    return penalty("empty_or_truncated", affected, rows, EMPTY_OR_TRUNCATED_WEIGHT, EMPTY_OR_TRUNCATED_CAP)


def request_key(row: Row, side: SideText) -> str:
    """What duplicates are judged on: the request and the context not yet part of it."""
    context = "" if row.get("_context_injected") else text_of(row.get("_context"))
    return f"{side.prompt}\n{context}" if context else side.prompt


def duplicate_penalty(affected: int, rows: int) -> Penalty:
    """Duplicated requests (`request_key`): `affected` of one side's `rows`, exact or near repeats."""
    return penalty("duplicates", affected, rows, DUPLICATE_WEIGHT, DUPLICATE_CAP)


def rejected_penalty(source_rows: int, rejection_stats: Mapping[str, int] | None) -> Penalty:
    """Source rows the run rejected for a failure (not by design), over the source rows; None: the source."""
    affected = 0
    if rejection_stats is not None:
        affected = sum(int(n) for step, n in rejection_stats.items() if step not in REMOVED_BY_DESIGN)
    return penalty("rejected", min(affected, source_rows), source_rows, REJECTED_WEIGHT, REJECTED_CAP)


def language_mismatch_penalty(
    pairs: Sequence[RowPair], sides: Sequence[SideText | None], detector: LanguageDetector | None
) -> Penalty:
    """Judged rows whose text a detector places outside the row's declared language.

    A text too short to judge is not counted; a detection below the detector's confidence bar counts as
    checked and matching (`datamill.text.langid.check_language`).
    """
    checked = affected = 0
    if detector is not None:
        for pair, side in zip(pairs, sides, strict=True):
            if side is None:
                continue
            text = side.answer if side.answer.strip() else side.prompt
            if pair.language is None:
                continue
            verdict = check_language(detector, text, declared_language(pair.language))
            if verdict.detected is None:
                continue
            checked += 1
            affected += not verdict.passed
    return penalty("language_mismatch", affected, checked, LANGUAGE_MISMATCH_WEIGHT, LANGUAGE_MISMATCH_CAP)


def declared_language(value: str) -> str:
    """A language column's value as a language code: codes in any spelling, or English names."""
    code = normalize_language(value)
    if code is not None:
        return code
    return _codes_by_name().get(value.strip().casefold(), value.strip())


@cache
def _codes_by_name() -> dict[str, str]:
    return {language_name(code).casefold(): code for code in language_codes()}
