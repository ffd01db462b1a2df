"""Anonymizing seed files: find the personal data of the asked types, replace it with placeholders.

An `Anonymizer` is built for one request: its detection method (``pii_m1``, the offline detector of
`datamill.text.pii.rules`; ``llm``, the model of `datamill.pipelines.anonymize_llm`; or ``all``, both,
their spans merged), the types to mask, the ``mask_config`` placeholders and the ``threshold``. In
structured files a value under a column named for a type is that type too
(`datamill.text.pii.columns`).

`file` splits a file into its texts (`datamill.pipelines.anonymize_files`), collects the candidates,
resolves them into disjoint spans (`datamill.text.pii.resolve`), masks every other occurrence in the file
of a value found in it (`_elsewhere`) and writes the file again with each span replaced
(`datamill.text.pii.surrogates`: one set of placeholders per file, so the same entity reads the same
throughout the file).

Each entity found is reported as ``{start, end, label, score}`` (offsets into the text it was found in,
before replacement) with, beyond them, ``file`` (the file's path), ``sample`` (its sample number, from 0)
and ``field`` (the column or JSON path of the text). The text of the entity itself is never reported.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datamill.pipelines.anonymize_files import split_file
from datamill.pipelines.anonymize_llm import LlmDetector
from datamill.text.pii.columns import COLUMN_SCORE, column_label
from datamill.text.pii.resolve import resolve
from datamill.text.pii.rules import RuleDetector
from datamill.text.pii.surrogates import Surrogates
from datamill.text.pii.types import Entity

#: The detection methods.
METHODS = ("pii_m1", "llm", "all")
#: Values found in a file are looked for in all of its texts from this length on...
MIN_PROPAGATED = 4
#: ... up to this many distinct values per file.
MAX_PROPAGATED = 5_000


@dataclass(frozen=True)
class AnonymizeOptions:
    """What to mask and how: the types, their placeholders, the least confidence that counts."""

    labels: tuple[str, ...]
    mask_config: Mapping[str, str] = field(default_factory=dict)
    threshold: float = 0.35


@dataclass(frozen=True)
class AnonymizedFile:
    """One file, anonymized: where it goes, its type and bytes, its samples and the entities found."""

    path: str
    content_type: str
    data: bytes
    samples: int
    entities: list[dict[str, Any]]


class Anonymizer:
    """Anonymizes files with the detectors given (at least one); see the module docstring."""

    def __init__(
        self,
        options: AnonymizeOptions,
        *,
        rules: RuleDetector | None = None,
        llm: LlmDetector | None = None,
    ) -> None:
        if rules is None and llm is None:
            raise ValueError("an anonymizer needs a detector")
        self.options, self._rules, self._llm = options, rules, llm

    async def candidates(self, texts: Sequence[str], wheres: Sequence[str] = ()) -> list[list[Entity]]:
        """Every detector's candidate spans for each text, and its whole text where its column names a type.

        `wheres` are the texts' columns or JSON paths (`datamill.text.pii.columns`), empty for prose.
        """
        found: list[list[Entity]] = [[] for _ in texts]
        for spans, text, where in zip(found, texts, wheres, strict=False):
            label = column_label(where, self.options.labels) if where else None
            if label is not None and text.strip():
                start = len(text) - len(text.lstrip())
                spans.append(Entity(start, len(text.rstrip()), label, COLUMN_SCORE))
        if self._rules is not None:
            rules, labels = self._rules, self.options.labels
            # The analyzer is CPU-bound: off the event loop, so the job's heartbeat keeps beating.
            by_rules = await asyncio.to_thread(rules.detect_many, texts, labels)
            for spans, more in zip(found, by_rules, strict=True):
                spans.extend(more)
        if self._llm is not None:
            for spans, more in zip(found, await self._llm.detect(texts), strict=True):
                spans.extend(more)
        return found

    async def file(self, path: str, data: bytes) -> AnonymizedFile:
        """The file at `path` with contents `data`, anonymized.

        Raises:
            DataFormatError: the file cannot be read as its extension says.
            ModelDetectionFailed: the model could not look at some of its text.
        """
        template = split_file(path, data)
        texts = [f.text for f in template.fields]
        candidates = await self.candidates(texts, [f.where for f in template.fields])
        options = self.options
        kept = [
            resolve(t, found, options.labels, options.threshold)
            for t, found in zip(texts, candidates, strict=True)
        ]
        for i, more in _elsewhere(texts, kept).items():
            kept[i] = resolve(texts[i], [*kept[i], *more], options.labels, options.threshold)
        kept = _lone_last_names(texts, kept)
        surrogates = Surrogates(self.options.mask_config)
        written: list[str] = []
        entities: list[dict[str, Any]] = []
        for part, text, spans in zip(template.fields, texts, kept, strict=True):
            written.append(surrogates.apply(text, spans))
            where = {"file": template.path, "sample": part.sample, "field": part.where}
            entities.extend(entity.to_dict() | where for entity in spans)
        return AnonymizedFile(
            template.path, template.content_type, template.write(written), template.samples, entities
        )


def _elsewhere(texts: Sequence[str], kept: Sequence[Sequence[Entity]]) -> dict[int, list[Entity]]:
    """Every other occurrence, in the file's texts, of a value found somewhere in the file.

    A name found under a ``name`` column, or by the model in one sentence, is the same personal data where
    a note or another sentence repeats it; these occurrences become candidates of the same type and score
    (values of `MIN_PROPAGATED` characters or more, the first `MAX_PROPAGATED` distinct ones).
    """
    known: dict[str, Entity] = {}
    for text, spans in zip(texts, kept, strict=True):
        for entity in spans:
            value = text[entity.start : entity.end]
            if len(value.strip()) >= MIN_PROPAGATED and len(known) < MAX_PROPAGATED:
                known.setdefault(value, entity)
    if not known:
        return {}
    alternatives = "|".join(re.escape(v) for v in sorted(known, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
    found: dict[int, list[Entity]] = {}
    for i, text in enumerate(texts):
        for match in pattern.finditer(text):
            origin = known[match.group()]
            if not any(e.start <= match.start() and match.end() <= e.end for e in kept[i]):
                found.setdefault(i, []).append(Entity(match.start(), match.end(), origin.label, origin.score))
    return found


def _lone_last_names(texts: Sequence[str], kept: list[list[Entity]]) -> list[list[Entity]]:
    """A one-word name is a ``first_name``, unless the file uses that word as someone's last name only."""
    pairs = zip(texts, kept, strict=True)
    lasts = {t[e.start : e.end] for t, spans in pairs for e in spans if e.label == "last_name"}
    only_last = lasts - _lone_words(texts, kept)
    if not only_last:
        return kept
    return [
        [
            Entity(e.start, e.end, "last_name", e.score)
            if e.label == "first_name" and text[e.start : e.end] in only_last
            else e
            for e in spans
        ]
        for text, spans in zip(texts, kept, strict=True)
    ]


def _lone_words(texts: Sequence[str], kept: Sequence[Sequence[Entity]]) -> set[str]:
    """The first names that open a name of two words or more (``first_name`` followed by ``last_name``)."""
    opening = set()
    for text, spans in zip(texts, kept, strict=True):
        ordered = sorted(spans, key=lambda e: e.start)
        for a, b in itertools.pairwise(ordered):
            if a.label == "first_name" and b.label == "last_name" and not text[a.end : b.start].strip():
                opening.add(text[a.start : a.end])
    return opening
