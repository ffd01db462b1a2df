"""Before/after evaluation: a published rubric, a stratified sample, per-row judgements and an A–E grade.

The same source rows are judged on both sides with the quality rubric of `evaluation_rubric`
(``docs/evaluation.md``): *before* (original prompt and original completion; a missing completion is an
empty answer) and *after* (enhanced prompt and enhanced completion). Neither side is shown the run's style
guide or length target: both are graded on what the data is meant to be (a clear request, a right and
helpful answer, a safe exchange), and adherence to the targets is scored apart and reported beside the grade
(`adherence`). Rows are drawn by `evaluation_sample` (seeded, stratified by prompt length and language) from
every source row, those the run removed included: a removed row is judged before and is missing after. A
side's score is

    score = clamp(mean row score − dataset penalties, 0, 10)

with the penalties of `evaluation_penalties` (duplicates, empty or truncated rows, rejected rows, language
mismatch), each computed the same way on both sides. A row whose before or after judgement failed is
excluded from both means; the failure is kept in the per-row results. `evaluation_confidence` adds
bootstrap intervals of both scores and of the improvement.

``quality`` has the Adaption evaluation shape (Adaption API): grades (A ≥ 8.5, B ≥ 7.0, C ≥ 5.5,
D ≥ 4.0, else E), scores, ``improvement_percent`` = (after − before) / before × 100 (None when before is 0),
and ``percentile_after``: the percentage of the judged rows' *before* scores at or below the after score,
i.e. how the adapted dataset ranks among the original rows. ``status`` is ``succeeded`` when at least one
row was scored, ``failed`` when every judged row failed, and ``skipped`` when no row reached the output;
`to_dict` gives a null ``quality`` unless the status is ``succeeded``. The intervals, the adherence scores
and the judge's relation to the generator are in ``raw_results``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datamill.core.errors import ModelError, ValidationError, fails_every_row
from datamill.pipelines.evaluation_confidence import Confidence, bootstrap, mean_interval
from datamill.pipelines.evaluation_judge import (
    QUALITY_TEMPLATE,
    STYLE_TEMPLATE,
    Judgement,
    QualityJudge,
    StyleJudge,
    cut,
    length_target,
)
from datamill.pipelines.evaluation_penalties import (
    Penalty,
    duplicate_penalty,
    empty_or_truncated_penalty,
    language_mismatch_penalty,
    rejected_penalty,
)
from datamill.pipelines.evaluation_population import Population, RowSource, SideTally, gather
from datamill.pipelines.evaluation_rubric import SCORE_DECIMALS, clamp_score, grade_for, rubric_summary
from datamill.pipelines.evaluation_sample import (
    RowPair,
    SideText,
    approx_tokens,
)
from datamill.pipelines.evaluation_stats import LanguageCount, SideStats, language_counts, side_stats
from datamill.steps.dedup import normalize_text
from datamill.steps.gather import gather_or_cancel
from datamill.steps.judging import Comparison, OrderVerdict, PairwiseJudge, length_controlled_win_rate
from datamill.steps.templates import template_source
from datamill.text.langid import LanguageDetector

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle
    from datamill.llm.judge_choice import JudgeChoice
    from datamill.pipelines.adapt import RunCounters

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
    """One judged source row: its texts, both quality judgements and, with a blueprint, both style ones.

    ``after`` is None for a removed row (no output row): it counts in the before mean only.
    """

    pair: RowPair
    before: Judgement
    after: Judgement | None
    style_before: Judgement | None = None
    style_after: Judgement | None = None
    #: After against before, judged in both orders (None: removed, or the comparison failed).
    comparison: Comparison | None = None
    comparison_error: str | None = None

    @property
    def scored(self) -> bool:
        """Every side the row has was judged, so it counts in the means."""
        return self.before.ok and (self.after is None or self.after.ok)

    def to_dict(self) -> dict[str, Any]:
        pair = self.pair
        after_texts: dict[str, Any] = {"prompt": None, "answer": None}
        if pair.after is not None:
            after_texts = {"prompt": pair.after.prompt, "answer": pair.after.answer}
        after = self.after.to_dict() if self.after is not None else Judgement().to_dict()
        return {
            "row_id": pair.row_id,
            "stratum": pair.stratum,
            "language": pair.language,
            "context": pair.context,
            "removed": pair.removed,
            "excluded": not self.scored,
            "before": {"prompt": pair.before.prompt, "answer": pair.before.answer}
            | self.before.to_dict()
            | {"style": _style(self.style_before)},
            "after": after_texts | after | {"style": _style(self.style_after)},
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "comparison_error": self.comparison_error,
        }


def _style(judgement: Judgement | None) -> dict[str, Any] | None:
    return None if judgement is None else judgement.to_dict()


@dataclass(slots=True)
class SideResult:
    """One side's mean row score, penalties, final score, score interval and statistics."""

    mean_row_score: float | None
    penalties: list[Penalty]
    stats: SideStats
    interval: tuple[float, float] | None = None

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
        interval = None if self.interval is None else [round(v, SCORE_DECIMALS) for v in self.interval]
        return {
            "mean_row_score": None if mean is None else round(mean, SCORE_DECIMALS + 2),
            "penalty_points": round(self.penalty_points, 4),
            "penalties": {p.name: p.to_dict() for p in self.penalties},
            "score": self.score,
            "score_interval": interval,
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
    confidence: Confidence | None = None
    adherence: dict[str, Any] = field(default_factory=dict)
    pairwise: dict[str, Any] | None = None

    def raw_results(self) -> dict[str, Any]:
        """The free-form ``raw_results``: rubric, sample, judge, per-side details and per-row judgements."""
        return {
            "rubric": rubric_summary(),
            "sample": self.sample,
            "judge": self.judge,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "confidence": None if self.confidence is None else self.confidence.to_dict(),
            "adherence": self.adherence,
            "pairwise": self.pairwise,
            "dedup": dict(self.dedup_stats),
            "rejections": dict(self.rejection_stats),
            "rows": [j.to_dict() for j in self.judgements],
        }

    def to_dict(self) -> dict[str, Any]:
        """``status``, ``quality`` (null unless the evaluation succeeded) and ``raw_results``."""
        quality = self.quality.to_dict() if self.status == "succeeded" else None
        return {"status": self.status, "quality": quality, "raw_results": self.raw_results()}


async def evaluate(
    before_rows: RowSource,
    after_rows: RowSource,
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
    judge_choice: JudgeChoice | None = None,
    pairwise: bool = True,
    counters: RunCounters | None = None,
) -> EvaluationReport:
    """Judge a stratified sample before and after, apply the penalties and grade both sides.

    Args:
        before_rows: the mapped source rows the run processed (``original_*``, ``_context``, ``_row``).
        after_rows: the output rows (``original_*`` and ``enhanced_*`` columns, passthrough columns).
            Both are read in passes (`datamill.pipelines.evaluation_population`): give a callable that
            answers a fresh iterable each time, or a list; only the sampled rows are kept whole.
        judge: the judge model.
        blueprint: the run's style guide: style adherence is scored beside the grade, not in it.
        length_range: the run's target answer length in tokens: the share of answers within it is reported
            beside the grade, not in it.
        sample_size: source rows to judge (each judged once per side it has).
        seed: seeds the sample and the bootstrap (and is passed to the judge).
        dedup_stats: duplicates the run's dedup removed, by kind (reported).
        rejection_stats: rows the run rejected, by step: failures count in the after side's rejected
            penalty (`evaluation_penalties.REMOVED_BY_DESIGN` do not).
        language_detector: a `datamill.text.langid.LanguageDetector` (e.g. ``FastLangDetector()``), for the
            language-mismatch penalty (optional).
        language_column: the column holding each row's language, when the data has one.
        judge_choice: how the judge was chosen (`datamill.llm.judge_choice`), reported with the judge.
        pairwise: also compare each sampled row's after answer with its before answer in both orders, for
            the (length-controlled) win rate reported beside the grade.
        counters: told the judgements to make and those made (`judged` of `to_judge`), for a progress bar.

    Raises:
        ValidationError: ``sample_size`` is below 1 or ``length_range`` is not a (low ≤ high) pair.
        ConfigError: the judge model cannot be called at all.
    """
    _check_arguments(sample_size, length_range)
    rows = gather(
        before_rows,
        after_rows,
        sample_size=sample_size,
        seed=seed,
        language_column=language_column,
        length_range=length_range,
    )
    sample = rows.sample
    quality_judge = QualityJudge(judge, seed=seed)
    style_judge = StyleJudge(judge, blueprint, seed=seed) if blueprint else None
    pair_judge = PairwiseJudge(judge, tag=QualityJudge.name, seed=seed) if pairwise else None
    prompts = [QUALITY_TEMPLATE, *([STYLE_TEMPLATE] if blueprint else [])]
    prompts += [PairwiseJudge.template_name] if pairwise else []
    overridden = {name: where for name in prompts if (where := template_source(name)) is not None}
    judgements = await _judge_all(quality_judge, style_judge, sample, counters)
    if pair_judge is not None:
        await _compare_all(pair_judge, judgements)
    scored = [j for j in judgements if j.scored]
    side = _SideInputs(sample, language_detector)
    languages = language_counts(rows.before, rows.after, sample, detector=language_detector)
    before_result = side.result(
        rows.before,
        [p.before for p in sample],
        [j.before.score for j in scored],
        [
            duplicate_penalty(rows.before.duplicates.count, rows.before.rows),
            empty_or_truncated_penalty(rows.before.empty_or_truncated, rows.before.rows),
            rejected_penalty(rows.before.rows, None),
        ],
        languages[0],
    )
    after_result = side.result(
        rows.after,
        [p.after for p in sample],
        [j.after.score for j in scored if j.after is not None],
        [
            duplicate_penalty(rows.after.duplicates.count, rows.after.rows),
            empty_or_truncated_penalty(rows.after.empty_or_truncated, rows.after.rows),
            rejected_penalty(rows.before.rows, rejection_stats or {}),
        ],
        languages[1],
    )
    confidence = bootstrap(
        [j.before.score or 0.0 for j in scored],
        [None if j.after is None else j.after.score for j in scored],
        before_penalty=before_result.penalty_points,
        after_penalty=after_result.penalty_points,
        seed=seed,
    )
    before_result.interval, after_result.interval = confidence.score_before, confidence.score_after
    return EvaluationReport(
        status=_status(sample, scored),
        quality=grade(before_result.score, after_result.score, [j.before.score for j in scored]),
        before=before_result,
        after=after_result,
        judgements=judgements,
        sample=_sample_info(sample_size, seed, rows, scored),
        judge=_judge_info(judge.name, quality_judge, style_judge, judge_choice, overridden),
        dedup_stats=dict(dedup_stats or {}),
        rejection_stats=dict(rejection_stats or {}),
        confidence=confidence,
        adherence=_adherence(judgements, rows, length_range, blueprint is not None),
        pairwise=None if pair_judge is None else _pairwise(judgements, seed),
    )


@dataclass(frozen=True, slots=True)
class _SideInputs:
    """What both sides' results are computed from besides their own rows."""

    sample: Sequence[RowPair]
    detector: LanguageDetector | None

    def result(
        self,
        tally: SideTally,
        judged: Sequence[SideText | None],
        scores: Sequence[float | None],
        penalties: list[Penalty],
        languages: LanguageCount,
    ) -> SideResult:
        """One side's result: mean of its scored rows, its penalties (plus language) and its statistics."""
        penalties.append(language_mismatch_penalty(self.sample, judged, self.detector))
        return SideResult(_mean(scores), penalties, side_stats(tally, languages))


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
    quality: QualityJudge,
    style: StyleJudge | None,
    sample: Sequence[RowPair],
    counters: RunCounters | None = None,
) -> list[RowJudgement]:
    """Every judgement of every sampled row, concurrently (the gateway's limiter sets the pace).

    `counters` (``judged`` of ``to_judge``) follow the judgements as they come, for a progress display.
    """
    calls = []
    for pair in sample:
        for side in (pair.before, pair.after):
            if side is not None:
                calls.append(quality.judge(side, pair.context))
                if style is not None:
                    calls.append(style.judge(side, pair.context))
    if counters is not None:
        counters.to_judge, counters.judged = len(calls), 0

    async def counted(call: Awaitable[Judgement]) -> Judgement:
        value = await call
        if counters is not None:
            counters.judged += 1
        return value

    verdicts = iter(await gather_or_cancel([counted(call) for call in calls]))
    out = []
    for pair in sample:
        found: list[Judgement | None] = []
        for side in (pair.before, pair.after):
            if side is None:
                found += [None, None]
            else:
                found += [next(verdicts), next(verdicts) if style is not None else None]
        before, style_before, after, style_after = found
        assert before is not None
        out.append(RowJudgement(pair, before, after, style_before, style_after))
    return out


async def _compare_all(judge: PairwiseJudge, judgements: Sequence[RowJudgement]) -> None:
    """Each row's after answer against its before answer, in both orders; a failure is kept on the row."""

    async def compare(row: RowJudgement) -> None:
        pair = row.pair
        if pair.after is None or not row.scored:
            return
        if normalize_text(pair.after.answer) == normalize_text(pair.before.answer):
            row.comparison = Comparison(OrderVerdict("A=B", SAME_ANSWER), OrderVerdict("A=B", SAME_ANSWER))
            return
        try:
            row.comparison = await judge.compare(
                pair.before.prompt, pair.context, cut(pair.after.answer), cut(pair.before.answer)
            )
        except ModelError as exc:
            if fails_every_row(exc):
                raise
            row.comparison_error = f"{type(exc).__name__}: {exc}"

    await gather_or_cancel([compare(row) for row in judgements])


def _pairwise(judgements: Sequence[RowJudgement], seed: int) -> dict[str, Any]:
    """The after side's win rate over its before side, raw and length-controlled, with an interval."""
    compared = [j for j in judgements if j.comparison is not None]
    outcomes = [_OUTCOME[j.comparison.winner] for j in compared if j.comparison is not None]
    deltas = [
        approx_tokens(j.pair.after.answer) - approx_tokens(j.pair.before.answer)
        for j in compared
        if j.pair.after is not None
    ]
    rate = length_controlled_win_rate(outcomes, deltas)
    winners = Counter(j.comparison.winner for j in compared if j.comparison is not None)
    interval = mean_interval(outcomes, seed=seed)
    return {
        "method": "after against before, both orders; inconsistent orders count as a tie",
        "compared": len(compared),
        "failed": sum(j.comparison_error is not None for j in judgements),
        "inconsistent": sum(not j.comparison.consistent for j in compared if j.comparison is not None),
        "after_wins": winners["x"],
        "ties": winners["tie"],
        "before_wins": winners["y"],
        "win_rate_interval": None if interval is None else [round(v, 4) for v in interval],
    } | rate.to_dict()


#: A comparison's outcome for the after side.
_OUTCOME = {"x": 1.0, "tie": 0.5, "y": 0.0}
#: The rationale of a comparison not sent to the judge because both answers are the same.
SAME_ANSWER = "the same answer on both sides"


def _adherence(
    judgements: Sequence[RowJudgement],
    rows: Population,
    length_range: tuple[int, int] | None,
    styled: bool,
) -> dict[str, Any]:
    """Target adherence beside the grade: style (judged on the sample) and length (counted on all rows)."""
    out: dict[str, Any] = {"style": None, "length": None}
    if styled:
        out["style"] = {
            name: _mean_of([getattr(j, f"style_{name}") for j in judgements]) for name in ("before", "after")
        } | {"scale": "0-10, the style level placed on 0-10"}
    if length_range is not None:
        out["length"] = {"target": length_target(length_range)} | {
            name: _within(tally) for name, tally in (("before", rows.before), ("after", rows.after))
        }
    return out


def _mean_of(judgements: Sequence[Judgement | None]) -> dict[str, Any]:
    scores = [j.score for j in judgements if j is not None and j.ok and j.score is not None]
    mean = _mean(scores)
    return {"score": None if mean is None else round(mean, SCORE_DECIMALS), "judged": len(scores)}


def _within(tally: SideTally) -> dict[str, Any]:
    within, checked = tally.within, tally.answered
    rate = within / checked if checked else None
    return {"within": within, "checked": checked, "rate": None if rate is None else round(rate, 4)}


def _mean(scores: Iterable[float | None]) -> float | None:
    values = [s for s in scores if s is not None]
    return statistics.fmean(values) if values else None


def _status(sample: Sequence[RowPair], scored: Sequence[RowJudgement]) -> str:
    if not sample:
        return "skipped"
    return "succeeded" if scored else "failed"


def _sample_info(
    requested: int, seed: int, rows: Population, scored: Sequence[RowJudgement]
) -> dict[str, Any]:
    sample = rows.sample
    return {
        "requested": requested,
        "seed": seed,
        "source_rows": rows.source_rows,
        "paired_rows": rows.paired_rows,
        "removed_rows": rows.removed_rows,
        "judged": len(sample),
        "judged_removed": sum(p.removed for p in sample),
        "scored": len(scored),
        "strata": dict(sorted(Counter(p.stratum for p in sample).items())),
        "population_strata": dict(sorted(rows.strata.items())),
    }


def overridden_prompts_note(overridden: Mapping[str, str]) -> str | None:
    """The report's warning for a grade whose judges read prompts other than the package's, or None."""
    if not overridden:
        return None
    which = ", ".join(f"{name} from {where}" for name, where in sorted(overridden.items()))
    return f"the judges used overridden prompts ({which}), not the package's: this grade is not comparable"


def _judge_info(
    model: str,
    quality: QualityJudge,
    style: StyleJudge | None,
    choice: JudgeChoice | None,
    overridden: Mapping[str, str],
) -> dict[str, Any]:
    judges = [quality] if style is None else [quality, style]
    errors = [e for j in judges for e in j.counters.errors]
    notes = [None if choice is None else choice.note(), overridden_prompts_note(overridden)]
    return {
        "model": model,
        "template_version": quality.template.version,
        "style_template_version": None if style is None else style.template.version,
        "calls": sum(j.counters.calls for j in judges),
        "failures": sum(j.counters.failures for j in judges),
        "errors": errors[:MAX_REPORTED_ERRORS],
        "choice": None if choice is None else choice.to_dict(),
        "overridden_prompts": dict(overridden),
        "note": "; ".join(note for note in notes if note) or None,
    }
