"""Training examples from a dataset's rows, and the split into training and held-out examples.

A row of an adaptation's output carries ``original_prompt``/``enhanced_prompt`` and
``original_completion``/``enhanced_completion`` (and ``chosen``/``rejected`` when it made preference pairs):
the enhanced value is trained on, the original where a column was not enhanced. A dataset's own row is read
through its column mapping (``prompt``, ``completion``, ``chosen``, ``rejected``: the column names). A row
without a prompt, or without what the training method needs (a completion for SFT, both answers for DPO), is
skipped and counted.

The split is drawn with a fixed seed, so every iteration of a run, and a rerun, holds out the same prompts:
20% of the examples, at least `MIN_HELD_OUT` and at most `MAX_HELD_OUT`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from datamill.core.errors import ValidationError
from datamill.training.lora import Example

MIN_HELD_OUT = 2
MAX_HELD_OUT = 100
HELD_OUT_SHARE = 0.2
#: The fewest examples left to train on.
MIN_TRAIN = 2
SPLIT_SEED = 0


@dataclass(frozen=True)
class Split:
    """The examples trained on, the examples held out for the win rate, and the rows skipped."""

    train: list[Example]
    held_out: list[Example]
    skipped: int


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def example_of(row: Mapping[str, Any], mapping: Mapping[str, Any] | None) -> Example:
    """The example one row holds (module docstring); fields the row lacks are empty."""
    if "original_prompt" in row or "enhanced_prompt" in row:

        def value(role: str) -> str:
            return _text(row.get(f"enhanced_{role}")) or _text(row.get(f"original_{role}"))

        return Example(
            value("prompt"), value("completion"), _text(row.get("chosen")), _text(row.get("rejected"))
        )
    names = mapping or {}

    def column(role: str) -> str:
        name = names.get(role)
        return _text(row.get(name)) if isinstance(name, str) else ""

    return Example(column("prompt"), column("completion"), column("chosen"), column("rejected"))


def usable(example: Example, method: str) -> bool:
    if not example.prompt:
        return False
    return bool(example.chosen and example.rejected) if method == "dpo" else bool(example.completion)


def split_examples(
    rows: Iterable[Mapping[str, Any]], mapping: Mapping[str, Any] | None, method: str
) -> Split:
    """The usable examples of `rows`, shuffled with `SPLIT_SEED` and split (module docstring).

    Raises:
        ValidationError: too few usable rows to train on and hold out (names ``dataset_id``).
    """
    found, skipped = [], 0
    for row in rows:
        example = example_of(row, mapping)
        if usable(example, method):
            found.append(example)
        else:
            skipped += 1
    needed = MIN_TRAIN + MIN_HELD_OUT
    if len(found) < needed:
        what = (
            "a prompt with a chosen and a rejected answer" if method == "dpo" else "a prompt and a completion"
        )
        raise ValidationError.of(
            "dataset_id",
            f"the dataset has {len(found)} usable rows ({skipped} lack {what}); training needs at least "
            f"{needed}: check column_mapping",
        )
    random.Random(SPLIT_SEED).shuffle(found)
    held = min(MAX_HELD_OUT, max(MIN_HELD_OUT, round(len(found) * HELD_OUT_SHARE)))
    held = min(held, len(found) - MIN_TRAIN)
    return Split(found[held:], found[:held], skipped)
