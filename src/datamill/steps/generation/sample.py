"""One sample being generated, and the choice of seed examples shown in its prompts.

A run has `number_of_samples` *slots*. Each slot draws its property values once, so a regenerated candidate
keeps the same target values and gate failures cannot bias the delivered distribution toward easy values.
Each candidate of a slot is an *attempt*; every model request carries a seed made of (run seed, slot,
attempt, call), so a retry is a new request (not a response-cache hit) and a rerun is reproducible.

Seed shuffling (``seed_shuffling_level``) says how often the examples shown change:

| level  | the examples are shuffled ...                 |
|--------|-----------------------------------------------|
| none   | never: every prompt shows the same examples   |
|        | (the default: the prompt prefix is cacheable) |
| sample | once per sample (slot)                        |
| field  | once per field of a multi-field sample        |
| prompt | for every prompt                              |

Each selection takes the leading shuffled seeds up to ``max_examples_in_prompt``, or as many as fit
`DEFAULT_PROMPT_SEED_TOKENS` when no cap is set.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from datamill.core.generation_request import SeedShuffling
from datamill.core.spec import Spec
from datamill.steps.generation.seeds import DEFAULT_PROMPT_SEED_TOKENS, Seed, SeedSet, shuffled, within_budget


@dataclass(frozen=True)
class SampleTask:
    """A candidate for one slot: what it must satisfy and how its requests are seeded."""

    slot: int
    attempt: int
    properties: dict[str, str]
    spec: Spec
    field_names: tuple[str, ...] = ()
    run_seed: int = 0

    def request_seed(self, call: str) -> int:
        """A 31-bit seed distinct per (run seed, slot, attempt, call)."""
        return stable_int(f"{self.run_seed}:{self.slot}:{self.attempt}:{call}") & 0x7FFFFFFF

    def variables(self) -> dict[str, Any]:
        """The template variables every generation prompt shares."""
        return {
            "description": self.spec.description,
            "requirements": list(self.spec.requirements),
            "properties": self.properties,
            "fields": list(self.field_names),
        }


class SeedPicker:
    """Chooses the seed examples a prompt shows (see the module docstring)."""

    def __init__(
        self,
        seeds: SeedSet | None,
        level: SeedShuffling = SeedShuffling.NONE,
        *,
        limit: int | None = None,
        budget: int = DEFAULT_PROMPT_SEED_TOKENS,
        run_seed: int = 0,
    ) -> None:
        self._seeds: tuple[Seed, ...] = seeds.seeds if seeds is not None else ()
        self._level = level
        self._limit = limit
        self._budget = budget
        self._run_seed = run_seed

    @property
    def shares_prefix(self) -> bool:
        """Whether prompts that show seeds share them with later prompts (a prefix worth caching).

        Seeds shuffled per field or per prompt make each prompt's prefix its own: marking it for the
        provider's cache would pay Anthropic's cache-write price for a prefix no later prompt reads.
        """
        return not self._seeds or self._level in (SeedShuffling.NONE, SeedShuffling.SAMPLE)

    def pick(self, task: SampleTask, call: str, field: str = "") -> list[str]:
        """The example texts for one prompt of ``task``; ``call`` names the prompt, ``field`` its field."""
        if not self._seeds:
            return []
        key = {
            SeedShuffling.NONE: "",
            SeedShuffling.SAMPLE: f"{task.slot}",
            SeedShuffling.FIELD: f"{task.slot}:{field}",
            SeedShuffling.PROMPT: f"{task.slot}:{task.attempt}:{call}:{field}",
        }[self._level]
        order = shuffled(self._seeds, random.Random(f"{self._run_seed}:{key}"))
        return [s.text for s in within_budget(order, self._budget, limit=self._limit)]


def stable_int(text: str) -> int:
    """An integer hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
