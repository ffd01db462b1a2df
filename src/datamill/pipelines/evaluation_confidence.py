"""Bootstrap confidence intervals of the evaluation's scores and of the improvement.

The grade is measured on a sample of rows, so it carries sampling error: 50 rows give a score whose 95%
interval is typically half a point to a point wide. The interval is the percentile bootstrap (Efron): the
judged rows are drawn again with replacement `RESAMPLES` times (a generator seeded by the evaluation's
seed, so a report is reproducible), each draw gives both sides' mean row scores — the before mean over
every drawn row, the after mean over the drawn rows that have an output row — and hence both scores, their
difference and the improvement in percent; the interval holds the middle `LEVEL` of those values. Rows are
drawn as pairs, so the interval of the improvement reflects that both sides judged the same rows. The
dataset penalties are computed on all rows, not on the sample, and are held fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datamill.pipelines.evaluation_rubric import MAX_SCORE, MIN_SCORE, SCORE_DECIMALS

#: Bootstrap draws of the judged rows.
RESAMPLES = 2000
#: Share of the bootstrap distribution an interval holds.
LEVEL = 0.95


@dataclass(frozen=True, slots=True)
class Confidence:
    """Intervals (low, high) of the scores and the improvement; None where there is too little to draw."""

    rows: int
    score_before: tuple[float, float] | None
    score_after: tuple[float, float] | None
    improvement_points: tuple[float, float] | None
    improvement_percent: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        def shown(interval: tuple[float, float] | None) -> list[float] | None:
            return None if interval is None else [round(v, SCORE_DECIMALS) for v in interval]

        return {
            "method": "percentile bootstrap over the judged rows (pairs drawn together)",
            "level": LEVEL,
            "resamples": RESAMPLES,
            "rows": self.rows,
            "score_before": shown(self.score_before),
            "score_after": shown(self.score_after),
            "improvement_points": shown(self.improvement_points),
            "improvement_percent": shown(self.improvement_percent),
        }


def bootstrap(
    before: Sequence[float],
    after: Sequence[float | None],
    *,
    before_penalty: float,
    after_penalty: float,
    seed: int,
) -> Confidence:
    """The intervals from per-row scores (``after[i]`` is None for a row with no output row)."""
    if len(before) != len(after):
        raise ValueError(f"{len(before)} before scores but {len(after)} after scores")
    count = len(before)
    if count < 2:
        return Confidence(count, None, None, None, None)
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray([np.nan if v is None else v for v in after], dtype=np.float64)
    draws = np.random.default_rng(seed).integers(0, count, size=(RESAMPLES, count))
    before_means = b[draws].mean(axis=1)
    drawn_after = a[draws]
    present = ~np.isnan(drawn_after)
    counts = present.sum(axis=1)
    sums = np.where(present, drawn_after, 0.0).sum(axis=1)
    after_means = np.divide(sums, counts, out=np.full(RESAMPLES, np.nan), where=counts > 0)
    score_before = np.clip(before_means - before_penalty, MIN_SCORE, MAX_SCORE)
    score_after = np.clip(after_means - after_penalty, MIN_SCORE, MAX_SCORE)
    points = score_after - score_before
    percent = np.divide(points * 100, score_before, out=np.full(RESAMPLES, np.nan), where=score_before > 0)
    return Confidence(
        count, _interval(score_before), _interval(score_after), _interval(points), _interval(percent)
    )


def _interval(values: np.ndarray) -> tuple[float, float] | None:
    finite = values[np.isfinite(values)]
    if finite.size < RESAMPLES / 2:
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def mean_interval(values: Sequence[float], *, seed: int) -> tuple[float, float] | None:
    """The percentile-bootstrap interval of a mean (None for fewer than two values)."""
    if len(values) < 2:
        return None
    data = np.asarray(values, dtype=np.float64)
    draws = np.random.default_rng(seed).integers(0, len(data), size=(RESAMPLES, len(data)))
    return _interval(data[draws].mean(axis=1))
