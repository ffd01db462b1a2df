"""Credits: the operator's billing unit, computed from output rows and model spend.

A text-only run costs

    credits = max(minimum_credits, output_rows × credits_per_row + model_cost_usd × credits_per_usd)

rounded **up** to a hundredth of a credit (so a quote never loses to rounding), and nothing at all when the
run outputs no rows and spends nothing. The row fee covers what every row costs the operator whatever the
model (storage, evaluation, orchestration; it is the whole price on a free local model); the spend term passes
model cost through at a fixed rate, so a run on an expensive model costs more credits than the same run on a
cheap one. Both terms settle from actual usage after the run, the same way the estimate computes them.

The defaults (`PriceTable()`), which an operator overrides in config (`PriceTable.from_mapping`):

=====================  =======  ==========================================================
field                  default  meaning
=====================  =======  ==========================================================
``credits_per_row``    0.01     credits per output row (1 credit per 100 text rows)
``credits_per_usd``    100      credits per USD of model spend (1 credit = 1 cent of spend)
``minimum_credits``    1        smallest charge for a run that outputs rows or spends money
=====================  =======  ==========================================================

**Multimodal pricing** (Adaption API): a run whose image column is also
in context costs 10 credits per started block of 100 output rows, ``10 × ceil(rows / 100)``; so 1–100 rows
cost 10, 101–200 cost 20, and 0 rows cost 0. It replaces the text price; the wire's ``creditMultiplier`` is
the credits per block (`MULTIMODAL_CREDITS_PER_BLOCK`).

**Output rows.** Credits bill output rows. Language expansion writes about ``input × (1 + sample_rate ×
targets)`` of them (`billable_rows`); rows a filter removes are not billed, but an estimate cannot know them
in advance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from datamill.core.errors import ConfigError

if TYPE_CHECKING:
    from datamill.core.expansion import LanguageExpansion

#: Multimodal rule of the Adaption API: this many credits per started block of `MULTIMODAL_BLOCK_ROWS` rows.
MULTIMODAL_CREDITS_PER_BLOCK = 10
MULTIMODAL_BLOCK_ROWS = 100
#: Credits are quoted in hundredths; amounts round up to the next one.
_CREDIT_STEP = 100


def multimodal_credits(output_rows: int) -> int:
    """Credits for a multimodal run: ``10 × ceil(output_rows / 100)`` (1–100 rows cost 10; 0 rows cost 0).

    Raises:
        ValueError: a negative row count.
    """
    if output_rows < 0:
        raise ValueError(f"output_rows must not be negative, got {output_rows}")
    return MULTIMODAL_CREDITS_PER_BLOCK * math.ceil(output_rows / MULTIMODAL_BLOCK_ROWS)


def billable_rows(input_rows: int, expansion: LanguageExpansion | None = None) -> int:
    """Output rows credits are billed on: the input rows, grown by language expansion when there is one."""
    return input_rows if expansion is None else expansion.expected_output_rows(input_rows)


@dataclass(frozen=True, slots=True)
class PriceTable:
    """What a run costs in credits (see the module docstring for the formula and the defaults).

    Attributes:
        credits_per_row: credits per output row of a text-only run.
        credits_per_usd: credits per USD of model spend.
        minimum_credits: the least a run that outputs rows or spends money is charged.
    """

    credits_per_row: float = 0.01
    credits_per_usd: float = 100.0
    minimum_credits: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"price table: {f.name} must be a number, got {value!r}")
            if value < 0:
                raise ConfigError(f"price table: {f.name} must not be negative, got {value!r}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, object] | None, *, source: str = "price table") -> PriceTable:
        """A price table from config; keys left out keep their defaults.

        Raises:
            ConfigError: an unknown key, or a value that is not a non-negative number.
        """
        if not data:
            return cls()
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
        try:
            return cls(**data)  # type: ignore[arg-type]  # __post_init__ checks every value
        except ConfigError as exc:
            raise ConfigError(f"{source}: {str(exc).removeprefix('price table: ')}") from exc

    def text_credits(self, output_rows: int, cost_usd: float) -> float:
        """Credits for a text-only run with ``output_rows`` rows and ``cost_usd`` of model spend."""
        if output_rows < 0 or cost_usd < 0:
            raise ValueError("output_rows and cost_usd must not be negative")
        if output_rows == 0 and cost_usd == 0:
            return 0.0
        raw = output_rows * self.credits_per_row + cost_usd * self.credits_per_usd
        return max(self.minimum_credits, _round_up(raw))

    def credits(self, output_rows: int, cost_usd: float, *, multimodal: bool = False) -> float:
        """Credits for a run: the multimodal rule when ``multimodal``, else `text_credits`."""
        if multimodal:
            return float(multimodal_credits(output_rows))
        return self.text_credits(output_rows, cost_usd)

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _round_up(credits: float) -> float:
    # round() first absorbs float noise (0.1 * 3 = 0.30000000000000004 must stay 0.30, not become 0.31).
    return math.ceil(round(credits * _CREDIT_STEP, 6)) / _CREDIT_STEP
