"""From candidate spans to the disjoint entities that get masked.

`resolve` applies, in order:

1. dates of birth: a ``date`` with a birth word in the `DOB_WINDOW` characters before it ("born", "DOB",
   "date of birth", "geboren", "Geburtsdatum", "né le", "naissance", "nacido", "fecha de nacimiento",
   "nato il"...) becomes ``date_of_birth``, with at least the score `DOB_SCORE`;
2. the threshold: candidates scoring below it are dropped;
3. name parts: when the request names ``first_name`` or ``last_name`` but not ``person``, each name
   becomes its first word (``first_name``) and, for names of two words or more, its last word
   (``last_name``); titles such as "Dr." are not part of a name;
4. the requested types only;
5. overlaps: candidates are taken patterns first (names and places, which a statistical model finds, come
   after every other type, so an address is not cut by the name of the street's namesake), then the
   longest first, then by score. A name or place that overlaps a span of another type is dropped (the
   pattern's span stands); any other candidate that overlaps taken spans widens the longest of them to
   cover them all, keeping its type (one detector found "Ana", another "Ana Ruiz": "Ana Ruiz" is masked;
   a tax number inside a card number is masked as the card number). So no character of a candidate
   above the threshold is left unmasked, except where a name was read into a pattern's span.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from datamill.text.pii.types import Entity

#: The types found by a statistical model: they give way to the others where spans overlap.
NAME_LABELS = frozenset({"person", "first_name", "last_name", "location"})
#: How far before a date a birth word is looked for, in characters.
DOB_WINDOW = 48
#: The least score of a date of birth found by its context.
DOB_SCORE = 0.85
_BIRTH_WORDS = re.compile(
    r"\b(?:born|birth|birthday|dob|d\.o\.b|geboren|geburtsdatum|geburtstag|geb\.|né|née|naissance|"
    r"nacido|nacida|nacimiento|nato|nata|nascita)\b",
    re.IGNORECASE,
)
_TITLES = re.compile(
    r"^(?:(?:mr|mrs|ms|miss|mx|dr|prof|sir|dame|herr|frau|mme|mlle|m|sr|sra|srta|don|doña)\.?\s+)+",
    re.IGNORECASE,
)


def resolve(
    text: str, candidates: Iterable[Entity], labels: Collection[str], threshold: float
) -> list[Entity]:
    """The disjoint entities of `labels` to mask in `text`, by start (see the module docstring)."""
    found = [_birth_date(text, e) if e.label == "date" else e for e in candidates]
    found = [e for e in found if e.score >= threshold]
    if "person" not in labels and {"first_name", "last_name"} & set(labels):
        found = [part for e in found for part in _name_parts(text, e)]
    found = [e for e in found if e.label in labels]
    return disjoint(found)


def disjoint(candidates: Iterable[Entity]) -> list[Entity]:
    """Overlapping candidates resolved (step 5 of the module docstring), sorted by start."""
    taken: list[Entity] = []
    order = sorted(candidates, key=lambda e: (e.label in NAME_LABELS, -(e.end - e.start), -e.score, e.start))
    for candidate in order:
        overlapping = [t for t in taken if t.overlaps(candidate)]
        if not overlapping:
            taken.append(candidate)
            continue
        if candidate.label in NAME_LABELS and any(t.label not in NAME_LABELS for t in overlapping):
            continue  # a name the model saw in an address, an email...: the pattern's span stands
        for t in overlapping:
            taken.remove(t)
        first = max(overlapping, key=lambda t: (t.end - t.start, t.score))
        start = min(candidate.start, *(t.start for t in overlapping))
        end = max(candidate.end, *(t.end for t in overlapping))
        score = max(candidate.score, *(t.score for t in overlapping))
        taken.append(Entity(start, end, first.label, score))
    return sorted(taken, key=lambda e: e.start)


def _birth_date(text: str, entity: Entity) -> Entity:
    before = text[max(0, entity.start - DOB_WINDOW) : entity.start]
    if _BIRTH_WORDS.search(before):
        return Entity(entity.start, entity.end, "date_of_birth", max(entity.score, DOB_SCORE))
    return entity


def _name_parts(text: str, entity: Entity) -> list[Entity]:
    if entity.label != "person":
        return [entity]
    name = text[entity.start : entity.end]
    title = _TITLES.match(name)
    offset = entity.start + (title.end() if title else 0)
    words = [(offset + m.start(), offset + m.end()) for m in re.finditer(r"\S+", text[offset : entity.end])]
    if not words:
        return []
    parts = [Entity(words[0][0], words[0][1], "first_name", entity.score)]
    if len(words) > 1:
        parts.append(Entity(words[-1][0], words[-1][1], "last_name", entity.score))
    return parts
