"""Language expansion: translate or localize a sample of rows into new rows.

``translate`` writes each sampled row again in every target language (``languages``); ``localize`` adapts
it to every (country, language) pair (``pairs``), so that names, units, currency and references fit the
place as well as the language. ``sample_rate`` (0.01 to 1) is the fraction of rows expanded per target, so
a run outputs about ``input × (1 + sample_rate × targets)`` rows (`LanguageExpansion.expected_output_rows`),
and credits are billed on those output rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from datamill.core.fields import (
    Issues,
    join,
    parse_with,
    read_enum,
    read_list,
    read_number,
    read_object,
)
from datamill.core.languages import read_country, read_language

MIN_SAMPLE_RATE = 0.01
MAX_SAMPLE_RATE = 1.0

EXPANSION_FIELDS = ("type", "languages", "pairs", "sample_rate")


class ExpansionType(StrEnum):
    """Translate into languages, or localize into (country, language) pairs."""

    TRANSLATE = "translate"
    LOCALIZE = "localize"


@dataclass(frozen=True, slots=True)
class LocalePair:
    """One localize target: an ISO 3166-1 alpha-2 country and a language code, both canonical."""

    country: str
    language: str

    def to_dict(self) -> dict[str, str]:
        return {"country": self.country, "language": self.language}


@dataclass(frozen=True, slots=True, kw_only=True)
class LanguageExpansion:
    """A validated language expansion; build one with `parse_language_expansion`.

    Attributes:
        type: translate or localize.
        languages: target language codes (translate only), canonical and distinct.
        pairs: target (country, language) pairs (localize only), canonical and distinct.
        sample_rate: fraction of rows expanded per target, 0.01 to 1.
    """

    type: ExpansionType
    languages: tuple[str, ...] = ()
    pairs: tuple[LocalePair, ...] = ()
    sample_rate: float

    @property
    def targets(self) -> int:
        """How many targets each sampled row is expanded into."""
        return len(self.languages) if self.type is ExpansionType.TRANSLATE else len(self.pairs)

    def expected_output_rows(self, input_rows: int) -> int:
        """Output rows for `input_rows` rows: ``input × (1 + sample_rate × targets)``, halves rounded up."""
        # floor(x + 0.5) rather than round(): Python's round() sends 12.5 to 12, which would under-quote.
        return math.floor(input_rows * (1 + self.sample_rate * self.targets) + 0.5)

    def to_dict(self) -> dict[str, object]:
        """The wire shape: ``type``, ``sample_rate`` and the targets of that type."""
        out: dict[str, object] = {"type": self.type.value}
        if self.type is ExpansionType.TRANSLATE:
            out["languages"] = list(self.languages)
        else:
            out["pairs"] = [pair.to_dict() for pair in self.pairs]
        out["sample_rate"] = self.sample_rate
        return out


def parse_language_expansion(value: object, field: str = "language_expansion") -> LanguageExpansion:
    """Validate a wire-shaped language expansion object, or raise a `ValidationError` with every issue."""
    return parse_with(read_language_expansion, value, field)


def read_language_expansion(value: object, field: str, issues: Issues) -> LanguageExpansion | None:
    """Reader form of `parse_language_expansion` (see `core.fields`)."""
    before = len(issues)
    obj = read_object(value, field, EXPANSION_FIELDS, issues)
    if obj is None:
        return None
    kind = read_enum(obj.get("type"), join(field, "type"), issues, ExpansionType)
    if obj.get("type") is None:
        issues.add(join(field, "type"), "type is required: translate or localize")
    expansion = read_expansion_targets(obj, field, kind, issues)
    return None if len(issues) > before else expansion


def read_expansion_targets(
    obj: Mapping[str, object], field: str, kind: ExpansionType | None, issues: Issues
) -> LanguageExpansion | None:
    """Read ``sample_rate`` and the targets of `kind` from an object whose keys were already checked.

    Shared by the ``language_expansion`` of a run and the bodies of the translate and localize endpoints.
    When `kind` is None (a missing or bad type, already reported) only ``sample_rate`` is checked.
    """
    before = len(issues)
    rate = _read_sample_rate(obj.get("sample_rate"), join(field, "sample_rate"), issues)
    languages: tuple[str, ...] = ()
    pairs: tuple[LocalePair, ...] = ()
    if kind is ExpansionType.TRANSLATE:
        if obj.get("pairs") is not None:
            issues.add(
                join(field, "pairs"),
                "pairs are not allowed for translate (they are for localize); list "
                "target language codes in languages",
            )
        languages = _read_languages(obj.get("languages"), join(field, "languages"), issues)
    elif kind is ExpansionType.LOCALIZE:
        if obj.get("languages") is not None:
            issues.add(
                join(field, "languages"),
                "languages are not allowed for localize (they are for "
                "translate); list {country, language} targets in pairs",
            )
        pairs = _read_pairs(obj.get("pairs"), join(field, "pairs"), issues)
    if len(issues) > before or kind is None or rate is None:
        return None
    return LanguageExpansion(type=kind, languages=languages, pairs=pairs, sample_rate=rate)


def _read_sample_rate(value: object, field: str, issues: Issues) -> float | None:
    if value is None:
        issues.add(
            field,
            f"sample_rate is required: the fraction of rows to expand per target, from "
            f"{MIN_SAMPLE_RATE:g} to {MAX_SAMPLE_RATE:g}",
        )
        return None
    return read_number(value, field, issues, minimum=MIN_SAMPLE_RATE, maximum=MAX_SAMPLE_RATE)


def _read_targets(value: object, field: str, what: str, issues: Issues) -> list[object]:
    """The items of a required, non-empty target array (empty when missing or bad, with an issue)."""
    if value is None:
        issues.add(field, f"{field.rsplit('.', 1)[-1]} is required: list at least one {what}")
        return []
    items = read_list(value, field, issues)
    if items == []:
        issues.add(field, f"must list at least one {what}")
    return items or []


def _read_languages(value: object, field: str, issues: Issues) -> tuple[str, ...]:
    found: list[str] = []
    for i, item in enumerate(_read_targets(value, field, "target language code", issues)):
        code = read_language(item, join(field, i), issues)
        if code is None:
            continue
        if code in found:
            issues.add(
                join(field, i),
                f"language {code!r} is listed twice (codes are matched ignoring case, and zh means zh-Hans)",
            )
        else:
            found.append(code)
    return tuple(found)


def _read_pairs(value: object, field: str, issues: Issues) -> tuple[LocalePair, ...]:
    found: list[LocalePair] = []
    for i, item in enumerate(_read_targets(value, field, "{country, language} pair", issues)):
        pair = _read_pair(item, join(field, i), issues)
        if pair is None:
            continue
        if pair in found:
            issues.add(join(field, i), f"pair {pair.country}/{pair.language} is listed twice")
        else:
            found.append(pair)
    return tuple(found)


def _read_pair(value: object, field: str, issues: Issues) -> LocalePair | None:
    obj = read_object(value, field, ("country", "language"), issues)
    if obj is None:
        return None
    country = language = None
    if obj.get("country") is None:
        issues.add(join(field, "country"), "country is required: an ISO 3166-1 alpha-2 code such as MX")
    else:
        country = read_country(obj["country"], join(field, "country"), issues)
    if obj.get("language") is None:
        issues.add(join(field, "language"), "language is required: a language code such as es")
    else:
        language = read_language(obj["language"], join(field, "language"), issues)
    return LocalePair(country, language) if country and language else None
