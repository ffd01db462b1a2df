"""The statistics of a generation evaluation: a confidence interval per value and a goodness-of-fit test.

A fixed tolerance ignores sample size: the standard error of a 30% share is about 10 points with 20 samples
and 0.6 points with 5,000, so "within 10 points" passes anything on a small run and nothing on a large one.
Two standard tools replace it:

- **Wilson score interval** (`wilson_interval`) of the share of samples classified as a value: the interval of
  true shares the observed count is consistent with, at `CONFIDENCE` (95%) for the property as a whole. With
  several values per property the per-value level is Bonferroni-corrected (`z_for`): each interval is at
  1 − 0.05 / m for m values, so a property with many values is not flagged by chance alone. Wilson's
  interval keeps its coverage near 0 and 100% and on small samples, where the normal (Wald) interval fails.
- **Pearson's chi-square goodness-of-fit test** (`goodness_of_fit`) of the classified counts of a property
  against the drawn shares, with k − 1 degrees of freedom for k values drawn. The p-value is the upper tail of
  the chi-square distribution, computed in closed form for integer degrees of freedom (`chi_square_sf`), so
  no statistics package is needed. The test is marked unreliable when an expected count is below 5
  (Cochran's rule); a value classified but never drawn makes the fit fail outright (p = 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any

#: Confidence of the intervals of one property (Bonferroni-split over its values).
CONFIDENCE = 0.95
#: Significance level of the goodness-of-fit test.
ALPHA = 0.05
#: Least expected count per value for the chi-square approximation to hold (Cochran).
MIN_EXPECTED_COUNT = 5.0


def z_for(values: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided normal quantile of one of ``values`` simultaneous intervals at ``confidence``."""
    alpha = (1 - confidence) / max(1, values)
    return NormalDist().inv_cdf(1 - alpha / 2)


def wilson_interval(successes: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion, as shares from 0 to 1; (0, 1) when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def chi_square_sf(statistic: float, dof: int) -> float:
    """P(X ≥ statistic) for X chi-square with ``dof`` (≥ 1) degrees of freedom, in closed form."""
    if statistic <= 0:
        return 1.0
    half = statistic / 2
    if dof % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, dof // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    # Odd: erfc for the first degree, then the same series in half-integer steps.
    total = math.erfc(math.sqrt(half))
    term = math.sqrt(half) * math.exp(-half) * 2 / math.sqrt(math.pi)
    for i in range(1, (dof + 1) // 2):
        total += term
        term *= half / (i + 0.5)
    return min(1.0, max(0.0, total))


def goodness_of_fit(observed: Mapping[str, int], expected_shares: Mapping[str, float]) -> dict[str, Any]:
    """Pearson's chi-square test of ``observed`` counts against ``expected_shares`` (module docstring).

    Returns ``{"test", "statistic", "degrees_of_freedom", "p_value", "samples", "reliable", "fits"}``;
    ``statistic`` and ``p_value`` are None when there is nothing to test (no sample, or one value drawn).
    """
    n = sum(observed.values())
    drawn = {v: p for v, p in expected_shares.items() if p > 0}
    result: dict[str, Any] = {
        "test": "chi-square goodness of fit",
        "statistic": None,
        "degrees_of_freedom": max(0, len(drawn) - 1),
        "p_value": None,
        "samples": n,
        "reliable": False,
        "fits": None,
    }
    outside = sum(count for value, count in observed.items() if value not in drawn)
    if n == 0 or not drawn:
        return result
    if outside:
        return {**result, "p_value": 0.0, "fits": False}
    if len(drawn) < 2:
        return result
    statistic = sum((observed.get(v, 0) - p * n) ** 2 / (p * n) for v, p in drawn.items())
    p_value = chi_square_sf(statistic, len(drawn) - 1)
    return {
        **result,
        "statistic": round(statistic, 4),
        "p_value": round(p_value, 6),
        "reliable": min(p * n for p in drawn.values()) >= MIN_EXPECTED_COUNT,
        "fits": p_value >= ALPHA,
    }
