"""Which rows the evaluation judges: before/after pairing and a seeded, stratified sample.

**Pairing.** ``before`` rows are the mapped source rows (canonical columns, ``_context``, passthrough columns,
``_row``); ``after`` rows are output rows (``original_*``, ``enhanced_*``, passthrough columns). An after row
pairs with the source row whose ``_row`` (or ``row_number``) it carries. Output rows usually carry neither,
since internal columns are not written, so they are matched on the public columns both rows share
(``original_prompt``, ``original_completion`` and the passthrough columns): a source row's signature is the
text of those values. When several after rows match one source row (fan-out copies such as translations
follow the row itself), the first is judged. A source row with no output row — rejected by a step, or removed
as a duplicate — is kept as a *removed* pair (``after`` is None): it is part of the source data, so it is
sampled and judged on the before side like any other row, and counts on the after side as a row the output
does not have.

**Sample.** Strata are (prompt-length bucket, language). Prompt length is the characters of the original
prompt plus its context (`LENGTH_BUCKETS`); language is the value of the language column, or ``-`` when the
rows have none. The sample size is split across strata in proportion to their sizes, with every stratum
getting at least one row while the size allows (largest remainders fill the rest, ties in stratum order);
when there are more strata than rows to draw, the largest strata get one each. Rows inside a stratum are
drawn with a random generator seeded by (seed, stratum), so the same seed and rows give the same sample, and
adding rows to one stratum does not change the draw in another.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]

#: The language category of a row whose language is not known (no value, or no sure detection).
UNKNOWN_LANGUAGE = "(unknown)"

#: Upper bounds (exclusive, in characters) of the prompt-length buckets; longer prompts are "very long".
LENGTH_BUCKETS: tuple[tuple[str, int], ...] = (("short", 100), ("medium", 400), ("long", 1500))
LONGEST_BUCKET = "very long"
#: Row-number columns tried, in order, to pair an after row with its source row.
ROW_ID_COLUMNS = ("_row", "row_number")
#: Columns the pipeline writes, never used to match an after row to its source row.
_WRITTEN_PREFIXES = ("enhanced_", "_")
NO_LANGUAGE = "-"


@dataclass(frozen=True, slots=True)
class SideText:
    """One side of an example as the judge sees it."""

    prompt: str
    answer: str


@dataclass(frozen=True, slots=True)
class RowPair:
    """A source row and the output row it became, with what both sides share."""

    row_id: int
    before: SideText
    after: SideText | None
    context: str
    language: str | None

    @property
    def removed(self) -> bool:
        """The source row has no output row (rejected, or removed as a duplicate)."""
        return self.after is None

    @property
    def stratum(self) -> str:
        return stratum_of(self.before.prompt, self.context, self.language)


def text_of(value: object) -> str:
    """A cell as text (None is empty)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def approx_tokens(text: str) -> int:
    """Approximate token count: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


def before_side(row: Row) -> SideText:
    """The original prompt and answer; a missing original completion is an empty answer."""
    return SideText(text_of(row.get("original_prompt")), text_of(row.get("original_completion")))


def after_side(row: Row) -> SideText:
    """The enhanced prompt and answer, falling back to the originals a run did not rewrite."""
    prompt = row.get("enhanced_prompt")
    answer = row.get("enhanced_completion")
    return SideText(
        text_of(prompt if prompt is not None else row.get("original_prompt")),
        text_of(answer if answer is not None else row.get("original_completion")),
    )


def row_id_of(row: Row) -> int | None:
    """The source row number a row carries, if any."""
    for column in ROW_ID_COLUMNS:
        value = row.get(column)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def length_bucket(chars: int) -> str:
    """The prompt-length bucket of a prompt (plus context) of ``chars`` characters."""
    for name, bound in LENGTH_BUCKETS:
        if chars < bound:
            return name
    return LONGEST_BUCKET


def stratum_of(prompt: str, context: str, language: str | None) -> str:
    """The stratum label of a row: ``<length bucket>/<language>``."""
    return f"{length_bucket(len(prompt) + len(context))}/{language or NO_LANGUAGE}"


def pair_rows(
    before: Sequence[Row], after: Iterable[Row], *, language_column: str = "language"
) -> list[RowPair]:
    """Each source row with the first output row it became, or none when it was removed (module doc)."""
    columns = _match_columns(before)
    firsts: dict[Any, Row] = {}
    for row in after:
        key = row_id_of(row)
        firsts.setdefault(key if key is not None else _signature(row, columns), row)
    pairs = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for index, row in enumerate(before, start=1):
        row_id = row_id_of(row)
        match = firsts.get(row_id) if row_id is not None else None
        if match is None:
            signature = _signature(row, columns)
            # A repeat of an earlier source row is that row's duplicate, never its match.
            if signature not in seen:
                match = firsts.get(signature)
            seen.add(signature)
        pairs.append(_pair(row_id or index, row, match, language_column))
    return pairs


def _pair(row_id: int, before: Row, after: Row | None, language_column: str) -> RowPair:
    language = text_of(before.get(language_column)).strip()
    return RowPair(
        row_id=row_id,
        before=before_side(before),
        after=None if after is None else after_side(after),
        context=text_of(before.get("_context")),
        language=language or None,
    )


def _match_columns(before: Sequence[Row]) -> tuple[str, ...]:
    """The public columns of the source rows (the first row's keys are the schema), in name order."""
    if not before:
        return ()
    return tuple(sorted(k for k in before[0] if not k.startswith(_WRITTEN_PREFIXES)))


def _signature(row: Row, columns: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The matching key of a row without a row number: its shared public columns as text."""
    return tuple((name, text_of(row.get(name))) for name in columns)


def stratified_sample(pairs: Sequence[RowPair], size: int, seed: int) -> list[RowPair]:
    """A seeded, stratified sample of at most ``size`` pairs, in row order (see module doc)."""
    strata: dict[str, list[RowPair]] = defaultdict(list)
    for pair in pairs:
        strata[pair.stratum].append(pair)
    quotas = allocate(size, {name: len(members) for name, members in strata.items()})
    chosen: list[RowPair] = []
    for name, quota in quotas.items():
        members = sorted(strata[name], key=lambda p: p.row_id)
        chosen.extend(random.Random(f"{seed}:{name}").sample(members, quota))
    return sorted(chosen, key=lambda p: p.row_id)


def allocate(size: int, sizes: dict[str, int]) -> dict[str, int]:
    """How many rows to draw from each stratum: proportional, at least one each while ``size`` allows."""
    names = sorted(sizes, key=lambda n: (-sizes[n], n))
    total = sum(sizes.values())
    size = min(max(size, 0), total)
    if size < len(names):
        return {name: 1 for name in names[:size]}
    quotas = dict.fromkeys(names, 1)
    spare = size - len(names)
    room = total - len(names)
    if spare == 0 or room == 0:
        return quotas
    shares = {name: spare * (sizes[name] - 1) / room for name in names}
    for name in names:
        quotas[name] += math.floor(shares[name])
    left = size - sum(quotas.values())
    order = {name: i for i, name in enumerate(names)}
    by_remainder = sorted(names, key=lambda n: (math.floor(shares[n]) - shares[n], order[n]))
    for name in by_remainder[:left]:
        quotas[name] += 1
    return quotas
