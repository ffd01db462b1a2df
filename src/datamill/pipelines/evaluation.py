"""Before/after evaluation: a published rubric, a stratified sample, per-row judgements and an A–E grade.

The same source rows are judged twice with the rubric of `evaluation_rubric` (``docs/evaluation.md``):
*before* (original prompt and original completion; a missing completion is an empty answer) and *after*
(enhanced prompt and enhanced completion). Rows are drawn by `evaluation_sample` (seeded, stratified by
prompt length and language). A side's score is

    score = clamp(mean row score − dataset penalties, 0, 10)

with the penalties of `evaluation_penalties` (duplicates, empty or truncated rows, language mismatch). A row
whose before or after judgement failed is excluded from both means, so both sides average the same rows; the
failure is kept in the per-row results.

``quality`` has the Adaption evaluation shape (Adaption API): grades (A ≥ 8.5, B ≥ 7.0, C ≥ 5.5,
D ≥ 4.0, else E), scores, ``improvement_percent`` = (after − before) / before × 100 (None when before is 0),
and ``percentile_after``: the percentage of the judged rows' *before* scores at or below the after score,
i.e. how the adapted dataset ranks among the original rows (100: it scores at least as well as every
original row). ``status`` is ``succeeded`` when at least one row was scored on both sides, ``failed`` when
every judged row failed, and ``skipped`` when no row reached the output to be judged; `to_dict` gives a null
``quality`` unless the status is ``succeeded``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from datamill.core.errors import ValidationError
from datamill.pipelines.evaluation_judge import Judgement, QualityJudge
from datamill.pipelines.evaluation_penalties import (
    Penalty,
    after_duplicate_penalty,
    before_duplicate_penalty,
    empty_or_truncated_penalty,
    language_mismatch_penalty,
)
from datamill.pipelines.evaluation_rubric import SCORE_DECIMALS, clamp_score, grade_for, rubric_summary
from datamill.pipelines.evaluation_sample import (
    Row,
    RowPair,
    SideText,
    after_side,
    before_side,
    pair_rows,
    stratified_sample,
)
from datamill.pipelines.evaluation_stats import SideStats, side_stats
from datamill.steps.gather import gather_or_cancel
from datamill.text.langid import LanguageDetector

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle
    from datamill.pipelines.adapt import RunCounters

T = TypeVar("T")

#: Rows judged per evaluation when the caller does not say (two judge calls each).
DEFAULT_SAMPLE_SIZE = 50
#: Judge errors quoted in the report (the rest are counted).
MAX_REPORTED_ERRORS = 5


@dataclass(frozen=True, slots=True)
class Quality:
    """The grade in the Adaption ``Quality`` shape; every field is None until there is a score."""

    grade_before: str | None = None
    grade_after: str | None = None
    score_before: float | None = None
    score_after: float | None = None
    percentile_after: float | None = None
    improvement_percent: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "grade_before": self.grade_before,
            "grade_after": self.grade_after,
            "score_before": self.score_before,
            "score_after": self.score_after,
            "percentile_after": self.percentile_after,
            "improvement_percent": self.improvement_percent,
        }

    def summary(self) -> dict[str, Any]:
        """The dataset's ``evaluation_summary`` (Adaption API): the quality without the percentile."""
        out = self.to_dict()
        del out["percentile_after"]
        return out


@dataclass(slots=True)
class RowJudgement:
    """One judged source row: its texts and both judgements."""

    pair: RowPair
    before: Judgement
    after: Judgement

    @property
    def scored(self) -> bool:
        """Both sides were judged, so the row counts in both means."""
        return self.before.ok and self.after.ok

    def to_dict(self) -> dict[str, Any]:
        pair = self.pair
        return {
            "row_id": pair.row_id,
            "stratum": pair.stratum,
            "language": pair.language,
            "context": pair.context,
            "excluded": not self.scored,
            "before": {"prompt": pair.before.prompt, "answer": pair.before.answer} | self.before.to_dict(),
            "after": {"prompt": pair.after.prompt, "answer": pair.after.answer} | self.after.to_dict(),
        }


@dataclass(slots=True)
class SideResult:
    """One side's mean row score, penalties, final score and statistics."""

    mean_row_score: float | None
    penalties: list[Penalty]
    stats: SideStats

    @property
    def penalty_points(self) -> float:
        return sum(p.points for p in self.penalties)

    @property
    def score(self) -> float | None:
        if self.mean_row_score is None:
            return None
        return clamp_score(self.mean_row_score - self.penalty_points)

    def to_dict(self) -> dict[str, Any]:
        mean = self.mean_row_score
        return {
            "mean_row_score": None if mean is None else round(mean, SCORE_DECIMALS + 2),
            "penalty_points": round(self.penalty_points, 4),
            "penalties": {p.name: p.to_dict() for p in self.penalties},
            "score": self.score,
            "stats": self.stats.to_dict(),
        }


@dataclass(slots=True)
class EvaluationReport:
    """Everything one evaluation found; `to_dict` has the evaluation response shape (Adaption API)."""

    status: str
    quality: Quality
    before: SideResult
    after: SideResult
    judgements: list[RowJudgement]
    sample: dict[str, Any]
    judge: dict[str, Any]
    dedup_stats: dict[str, int] = field(default_factory=dict)
    rejection_stats: dict[str, int] = field(default_factory=dict)

    def raw_results(self) -> dict[str, Any]:
        """The free-form ``raw_results``: rubric, sample, judge, per-side details and per-row judgements."""
        return {
            "rubric": rubric_summary(),
            "sample": self.sample,
            "judge": self.judge,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "dedup": dict(self.dedup_stats),
            "rejections": dict(self.rejection_stats),
            "rows": [j.to_dict() for j in self.judgements],
        }

    def to_dict(self) -> dict[str, Any]:
        """``status``, ``quality`` (null unless the evaluation succeeded) and ``raw_results``."""
        quality = self.quality.to_dict() if self.status == "succeeded" else None
        return {"status": self.status, "quality": quality, "raw_results": self.raw_results()}


async def evaluate(
    before_rows: Iterable[Row],
    after_rows: Iterable[Row],
    judge: ModelHandle,
    *,
    blueprint: str | None = None,
    length_range: tuple[int, int] | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
    dedup_stats: Mapping[str, int] | None = None,
    rejection_stats: Mapping[str, int] | None = None,
    language_detector: LanguageDetector | None = None,
    language_column: str = "language",
    counters: RunCounters | None = None,
) -> EvaluationReport:
    """Judge a stratified sample before and after, apply the penalties and grade both sides.

    Args:
        before_rows: the mapped source rows the run processed (``original_*``, ``_context``, ``_row``).
        after_rows: the output rows (``original_*`` and ``enhanced_*`` columns, passthrough columns).
        judge: the judge model.
        blueprint: the run's style guide, judged under "adherence".
        length_range: the run's target answer length in tokens, judged under "adherence".
        sample_size: rows to judge (each judged twice).
        seed: seeds the sample (and is passed to the judge).
        dedup_stats: duplicates the run's dedup removed, by kind (every value counts).
        rejection_stats: rows the run rejected, by step (reported, not penalised).
        language_detector: a `datamill.text.langid.LanguageDetector` (e.g. ``FastLangDetector()``), for the
            language-mismatch penalty (optional).
        language_column: the column holding each row's language, when the data has one.
        counters: told the judgements to make and those made (`judged` of `to_judge`), for a progress bar.

    Raises:
        ValidationError: ``sample_size`` is below 1 or ``length_range`` is not a (low ≤ high) pair.
        ConfigError: the judge model cannot be called at all.
    """
    _check_arguments(sample_size, length_range)
    before, after = list(before_rows), list(after_rows)
    population = pair_rows(before, after, language_column=language_column)
    sample = stratified_sample(population, sample_size, seed)
    quality_judge = QualityJudge(judge, blueprint=blueprint, length_range=length_range, seed=seed)
    judgements = await _judge_all(quality_judge, sample, counters)
    scored = [j for j in judgements if j.scored]
    dedup = dict(dedup_stats or {})
    side = _SideInputs(sample, language_detector, language_column)
    before_sides = [before_side(r) for r in before]
    before_result = side.result(
        before,
        before_sides,
        [p.before for p in sample],
        [j.before.score for j in scored],
        [before_duplicate_penalty(before, dedup), empty_or_truncated_penalty(before, before_sides)],
    )
    after_sides = [after_side(r) for r in after]
    after_result = side.result(
        after,
        after_sides,
        [p.after for p in sample],
        [j.after.score for j in scored],
        [after_duplicate_penalty(after_sides), empty_or_truncated_penalty(after, after_sides)],
    )
    return EvaluationReport(
        status=_status(sample, scored),
        quality=grade(before_result.score, after_result.score, [j.before.score for j in scored]),
        before=before_result,
        after=after_result,
        judgements=judgements,
        sample=_sample_info(sample_size, seed, population, sample, scored),
        judge=_judge_info(judge.name, quality_judge),
        dedup_stats=dedup,
        rejection_stats=dict(rejection_stats or {}),
    )


@dataclass(frozen=True, slots=True)
class _SideInputs:
    """What both sides' results are computed from besides their own rows."""

    sample: Sequence[RowPair]
    detector: LanguageDetector | None
    language_column: str

    def result(
        self,
        rows: Sequence[Row],
        sides: Sequence[SideText],
        judged: Sequence[SideText],
        scores: Sequence[float | None],
        penalties: list[Penalty],
    ) -> SideResult:
        """One side's result: mean of its scored rows, its penalties (plus language) and its statistics."""
        penalties.append(language_mismatch_penalty(self.sample, judged, self.detector))
        stats = side_stats(
            rows, sides, language_column=self.language_column, judged=judged, detector=self.detector
        )
        return SideResult(_mean(scores), penalties, stats)


def grade(
    score_before: float | None, score_after: float | None, before_row_scores: Sequence[float | None]
) -> Quality:
    """The contract's quality fields from the two dataset scores and the judged rows' before scores."""
    improvement = None
    if score_before is not None and score_after is not None and score_before > 0:
        improvement = round((score_after - score_before) / score_before * 100, SCORE_DECIMALS)
    row_scores = [s for s in before_row_scores if s is not None]
    percentile = None
    if score_after is not None and row_scores:
        percentile = round(100 * sum(s <= score_after for s in row_scores) / len(row_scores), 1)
    return Quality(
        grade_before=grade_for(score_before),
        grade_after=grade_for(score_after),
        score_before=score_before,
        score_after=score_after,
        percentile_after=percentile,
        improvement_percent=improvement,
    )


def _check_arguments(sample_size: int, length_range: tuple[int, int] | None) -> None:
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise ValidationError.of("sample_size", f"must be an integer of at least 1; got {sample_size!r}")
    if length_range is not None:
        low, high = length_range
        if not 0 <= low <= high:
            raise ValidationError.of(
                "length_range", f"must be (low, high) with 0 ≤ low ≤ high; got {length_range}"
            )


async def _judge_all(
    judge: QualityJudge, sample: Sequence[RowPair], counters: RunCounters | None = None
) -> list[RowJudgement]:
    """Both judgements of every sampled row, concurrently (the gateway's limiter sets the pace).

    `counters` (``judged`` of ``to_judge``) follow the judgements as they come, for a progress display.
    """
    if counters is not None:
        counters.to_judge, counters.judged = 2 * len(sample), 0

    async def counted(call: Awaitable[T]) -> T:
        value = await call
        if counters is not None:
            counters.judged += 1
        return value

    verdicts = await gather_or_cancel(
        [counted(judge.judge(side, pair.context)) for pair in sample for side in (pair.before, pair.after)]
    )
    return [RowJudgement(pair, verdicts[2 * i], verdicts[2 * i + 1]) for i, pair in enumerate(sample)]


def _mean(scores: Iterable[float | None]) -> float | None:
    values = [s for s in scores if s is not None]
    return statistics.fmean(values) if values else None


def _status(sample: Sequence[RowPair], scored: Sequence[RowJudgement]) -> str:
    if not sample:
        return "skipped"
    return "succeeded" if scored else "failed"


def _sample_info(
    requested: int,
    seed: int,
    population: Sequence[RowPair],
    sample: Sequence[RowPair],
    scored: Sequence[RowJudgement],
) -> dict[str, Any]:
    return {
        "requested": requested,
        "seed": seed,
        "paired_rows": len(population),
        "judged": len(sample),
        "scored": len(scored),
        "strata": dict(sorted(Counter(p.stratum for p in sample).items())),
        "population_strata": dict(sorted(Counter(p.stratum for p in population).items())),
    }


def _judge_info(model: str, judge: QualityJudge) -> dict[str, Any]:
    counters = judge.counters
    return {
        "model": model,
        "template_version": judge.template.version,
        "calls": counters.calls,
        "failures": counters.failures,
        "errors": counters.errors[:MAX_REPORTED_ERRORS],
    }
