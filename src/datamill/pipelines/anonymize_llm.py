"""``llm``: PII detection by a model, its answers checked against the text they are about.

Texts are sent in batches of at most `MAX_BATCH_CHARS` characters (a longer text is cut into windows that
overlap by `WINDOW_OVERLAP` characters, so an entity on a cut is whole in one of them), each numbered as a
passage. The model answers one JSON object under `reply_schema`: a list of entities, each the passage
number, the exact text of the entity, its type (one of the asked types) and a confidence between 0 and 1.
The gateway checks the reply against the schema and repairs or retries it (refusals, cut or fenced
answers, reasoning around the JSON are its business, as for every model call).

An answer is then checked against the passages: an entity whose passage number does not exist, or whose
text does not occur in that passage, is dropped and counted (`LlmCounters.dropped`); one that does occur
becomes a span at each of its occurrences. Offsets are never taken from the model.

A batch the model could not answer (after the gateway's retries) stops the detection with
`ModelDetectionFailed`, naming the error: a file whose personal data could not be looked for is not
written as if it had been anonymized.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datamill.core.errors import DatamillError, ModelError
from datamill.llm.types import ChatRequest, Message
from datamill.text.pii.types import PII_TYPES, Entity

if TYPE_CHECKING:
    from datamill.llm.gateway import ModelHandle

#: Characters of text per request.
MAX_BATCH_CHARS = 6_000
#: How much consecutive windows of a long text share.
WINDOW_OVERLAP = 200
#: Requests in flight at once.
DEFAULT_CONCURRENCY = 4
#: Usage tag of the detection calls.
TAG = "anonymize"

SYSTEM = (
    "You find personal data in text so that it can be masked. For every occurrence of personal data "
    "of the requested types, answer its passage number, its exact text as written in the passage (copy it "
    "character for character, without surrounding words), its type and your confidence between 0 and 1. "
    "Report nothing else; answer an empty list when a passage holds none."
)


class ModelDetectionFailed(DatamillError):
    """The model could not answer for some text, so its personal data was not looked for."""


@dataclass
class LlmCounters:
    """Entities the model named, and those dropped because they were not in the text."""

    named: int = 0
    dropped: int = 0


def reply_schema(labels: Collection[str]) -> dict[str, Any]:
    """The JSON schema of the model's answer."""
    entity = {
        "type": "object",
        "properties": {
            "passage": {"type": "integer", "minimum": 1},
            "text": {"type": "string", "minLength": 1},
            "label": {"type": "string", "enum": sorted(labels)},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["passage", "text", "label", "score"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"entities": {"type": "array", "items": entity}},
        "required": ["entities"],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class _Piece:
    """A window of one text: which text, and where the window starts in it."""

    index: int
    offset: int
    text: str


def _pieces(texts: Sequence[str], limit: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    for index, text in enumerate(texts):
        if not text.strip():
            continue
        start = 0
        while True:
            pieces.append(_Piece(index, start, text[start : start + limit]))
            if start + limit >= len(text):
                break
            start += limit - WINDOW_OVERLAP
    return pieces


def _batches(pieces: Sequence[_Piece], limit: int) -> list[list[_Piece]]:
    batches: list[list[_Piece]] = []
    size = 0
    for piece in pieces:
        if batches and size + len(piece.text) <= limit:
            batches[-1].append(piece)
            size += len(piece.text)
        else:
            batches.append([piece])
            size = len(piece.text)
    return batches


class LlmDetector:
    """Finds the entities of `labels` in texts with `model` (see the module docstring)."""

    def __init__(
        self,
        model: ModelHandle,
        labels: Collection[str],
        *,
        max_chars: int = MAX_BATCH_CHARS,
        concurrency: int = DEFAULT_CONCURRENCY,
        counters: LlmCounters | None = None,
    ) -> None:
        self.model = model
        # The model is asked for whole names; first and last names are cut from them afterwards.
        asked = set(labels)
        if asked & {"first_name", "last_name"}:
            asked.add("person")
        if "date_of_birth" in asked:
            asked.add("date")
        self.labels = sorted(asked)
        self.schema = reply_schema(self.labels)
        self.max_chars = max_chars
        self.concurrency = concurrency
        self.counters = counters if counters is not None else LlmCounters()

    def request(self, batch: Sequence[_Piece]) -> ChatRequest:
        types = "\n".join(f"- {label}: {PII_TYPES.get(label, label)}" for label in self.labels)
        passages = "\n\n".join(
            f'<passage number="{n}">\n{piece.text}\n</passage>' for n, piece in enumerate(batch, 1)
        )
        user = f"Types to find:\n{types}\n\nPassages:\n\n{passages}"
        budget = 256 + sum(len(p.text) for p in batch) // 2
        return ChatRequest(
            (Message("system", SYSTEM), Message("user", user)),
            max_tokens=budget,
            temperature=0.0,
            json_schema=self.schema,
        )

    async def detect(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The candidate entities of each text, in the order of `texts`.

        Raises:
            ModelDetectionFailed: a batch could not be answered.
        """
        found: list[list[Entity]] = [[] for _ in texts]
        batches = _batches(_pieces(texts, self.max_chars), self.max_chars)
        pending = iter(batches)

        async def work() -> None:
            for batch in pending:
                for piece, entities in zip(batch, await self._ask(batch), strict=True):
                    found[piece.index].extend(
                        Entity(e.start + piece.offset, e.end + piece.offset, e.label, e.score)
                        for e in entities
                    )

        workers = [asyncio.create_task(work()) for _ in range(min(self.concurrency, len(batches)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return found

    async def _ask(self, batch: Sequence[_Piece]) -> list[list[Entity]]:
        try:
            result = await self.model.chat(self.request(batch), tag=TAG)
        except ModelError as exc:
            raise ModelDetectionFailed(
                f"the model {self.model.name} could not look for personal data: {type(exc).__name__}: {exc}"
            ) from exc
        data = result.data if isinstance(result.data, dict) else {}
        return self._spans(batch, data.get("entities"))

    def _spans(self, batch: Sequence[_Piece], named: object) -> list[list[Entity]]:
        spans: list[list[Entity]] = [[] for _ in batch]
        for item in named if isinstance(named, list) else []:
            self.counters.named += 1
            entity = _checked(item, batch, self.labels)
            if entity is None:
                self.counters.dropped += 1
                continue
            number, text, label, score = entity
            passage = batch[number - 1].text
            at = passage.find(text)
            while at >= 0:
                spans[number - 1].append(Entity(at, at + len(text), label, score))
                at = passage.find(text, at + len(text))
        return [list(dict.fromkeys(found)) for found in spans]  # an entity named twice counts once


def _checked(
    item: object, batch: Sequence[_Piece], labels: Collection[str]
) -> tuple[int, str, str, float] | None:
    """``(passage, text, label, score)`` of one named entity, or None when it is not in the text."""
    if not isinstance(item, dict):
        return None
    number, text, label, score = (item.get(k) for k in ("passage", "text", "label", "score"))
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= len(batch):
        return None
    if not isinstance(text, str) or not text.strip() or label not in labels:
        return None
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        return None
    text = text.strip()
    if text not in batch[number - 1].text:
        return None
    return number, text, str(label), float(score)
