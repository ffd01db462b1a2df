"""Placeholders for the entities of one file: the same entity always gets the same placeholder.

Without a ``mask_config`` entry, an entity of type ``person`` becomes ``<PERSON_1>``, the next different
person ``<PERSON_2>``, and so on per type. A ``mask_config`` entry replaces that text: ``{n}`` in it is
the entity's number (``{"person": "[name {n}]"}`` gives ``[name 1]``); without ``{n}`` every entity of the
type gets the same text (``{"email": "<EMAIL>"}``). Two spans are the same entity when their text is the
same once case, spaces and punctuation are ignored (for phone numbers: the same digits), so
"Ana Ruiz", "ana ruiz" and "Ana  Ruiz" share a placeholder. Numbers are given in reading order.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

from datamill.text.pii.types import Entity

_NUMBER = "{n}"


def identity(label: str, value: str) -> str:
    """What makes two spans of `label` the same entity."""
    if label in ("phone_number", "credit_card", "iban", "ssn", "national_id", "passport"):
        return re.sub(r"[\W_]", "", value).casefold()
    return re.sub(r"[\W_]+", " ", value).strip().casefold()


class Surrogates:
    """The placeholders of one file (see the module docstring)."""

    def __init__(self, mask_config: Mapping[str, str] | None = None) -> None:
        self._config = dict(mask_config or {})
        self._known: dict[tuple[str, str], str] = {}
        self._counts: Counter[str] = Counter()

    def placeholder(self, label: str, value: str) -> str:
        key = (label, identity(label, value))
        known = self._known.get(key)
        if known is None:
            self._counts[label] += 1
            number = str(self._counts[label])
            template = self._config.get(label)
            known = f"<{label.upper()}_{number}>" if template is None else template.replace(_NUMBER, number)
            self._known[key] = known
        return known

    def apply(self, text: str, entities: Iterable[Entity]) -> str:
        """`text` with each of the disjoint `entities` replaced by its placeholder."""
        pieces: list[str] = []
        at = 0
        for entity in sorted(entities, key=lambda e: e.start):
            pieces.append(text[at : entity.start])
            pieces.append(self.placeholder(entity.label, text[entity.start : entity.end]))
            at = entity.end
        pieces.append(text[at:])
        return "".join(pieces)
