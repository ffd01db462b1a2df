"""The win rate of a tuned model against a baseline, with a 95% Wilson score interval.

Each held-out prompt is judged twice, once with the tuned answer first and once with it second; the tuned
model scores 1 for a win, 0.5 for a tie and 0 for a loss in each order, and the prompt's score is the mean of
the two (so a verdict that flips with the order counts as a tie). The win rate is the mean over the prompts
judged in both orders, and its interval is the Wilson score interval of that proportion over those prompts
(ties count half a win, the usual convention of pairwise evaluations). Prompts whose judging failed are
left out and counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: z for a two-sided 95% interval.
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class WinRate:
    """Wins, losses and ties over the prompts judged, the win rate and its 95% interval."""

    win_rate: float
    low: float
    high: float
    wins: int
    losses: int
    ties: int
    judged: int
    failed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n``; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - margin) / denominator), min(1.0, (centre + margin) / denominator)


def summarise(scores: Sequence[float | None]) -> WinRate:
    """The `WinRate` of per-prompt scores (None: the prompt could not be judged)."""
    judged = [s for s in scores if s is not None]
    n = len(judged)
    total = sum(judged)
    low, high = wilson(total, n)
    return WinRate(
        win_rate=total / n if n else 0.0,
        low=low,
        high=high,
        wins=sum(1 for s in judged if s > 0.5),
        losses=sum(1 for s in judged if s < 0.5),
        ties=sum(1 for s in judged if s == 0.5),
        judged=n,
        failed=len(scores) - n,
    )
