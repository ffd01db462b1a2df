"""Language and country codes accepted by translate and localize, with their English names.

Languages are ISO 639-1 two-letter codes plus ``fil`` (Filipino), ``yue`` (Cantonese), ``zh-Hans`` and
``zh-Hant`` (Simplified and Traditional Chinese); a bare ``zh`` means ``zh-Hans``. Countries are ISO 3166-1
alpha-2 codes. Matching ignores case (and accepts ``_`` for ``-``) and returns the canonical spelling:
``EN`` → ``en``, ``zh_hant`` → ``zh-Hant``, ``mx`` → ``MX``.

The lists ship as ``core/data/languages.json`` and ``core/data/countries.json`` and are read on first use,
never at import.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources

from datamill.core.fields import Issues, describe

#: Codes shown as examples when a code is unknown: the most used first.
_EXAMPLE_LANGUAGES = (
    "en",
    "es",
    "fr",
    "de",
    "pt",
    "it",
    "ja",
    "ko",
    "zh-Hans",
    "zh-Hant",
    "ar",
    "hi",
    "fil",
    "yue",
)
_EXAMPLE_COUNTRIES = ("US", "GB", "MX", "ES", "FR", "DE", "BR", "IN", "JP", "CN", "TW", "PH")
#: Codes people often use that ISO does not, with the ISO code they mean.
_COMMON_MISTAKES = {"uk": "GB", "en-us": "en", "en-gb": "en"}


@cache
def _load(name: str) -> dict[str, object]:
    text = resources.files("datamill.core").joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, object] = json.loads(text)
    return data


@cache
def _languages() -> dict[str, str]:
    names: dict[str, str] = _load("languages.json")["languages"]  # type: ignore[assignment]
    return names


@cache
def _language_lookup() -> dict[str, str]:
    """Lower-cased code or alias → canonical code."""
    aliases: dict[str, str] = _load("languages.json")["aliases"]  # type: ignore[assignment]
    lookup = {code.lower(): code for code in _languages()}
    lookup.update({alias.lower(): code for alias, code in aliases.items()})
    return lookup


@cache
def _countries() -> dict[str, str]:
    names: dict[str, str] = _load("countries.json")["countries"]  # type: ignore[assignment]
    return names


def language_codes() -> tuple[str, ...]:
    """Every canonical language code, sorted case-insensitively."""
    return tuple(_languages())


def country_codes() -> tuple[str, ...]:
    """Every ISO 3166-1 alpha-2 country code, sorted."""
    return tuple(_countries())


def normalize_language(code: str) -> str | None:
    """The canonical spelling of a language code, or None if it is not one we know."""
    return _language_lookup().get(code.strip().lower().replace("_", "-"))


def normalize_country(code: str) -> str | None:
    """The canonical (upper-case) spelling of a country code, or None if it is not one we know."""
    upper = code.strip().upper()
    return upper if upper in _countries() else None


def language_name(code: str) -> str:
    """The English name of a language code (any accepted spelling); KeyError if unknown."""
    canonical = normalize_language(code)
    if canonical is None:
        raise KeyError(code)
    return _languages()[canonical]


def country_name(code: str) -> str:
    """The English name of a country code (any case); KeyError if unknown."""
    canonical = normalize_country(code)
    if canonical is None:
        raise KeyError(code)
    return _countries()[canonical]


def read_language(value: object, field: str, issues: Issues) -> str | None:
    """A known language code in canonical spelling; an unknown one gets an issue with examples."""
    if not isinstance(value, str):
        issues.add(field, f"must be a language code (a string), got {describe(value)}")
        return None
    canonical = normalize_language(value)
    if canonical is None:
        hint = _hint(value, _languages())
        issues.add(
            field,
            f"unknown language code {value!r}{hint}; use an ISO 639-1 code (or fil, yue, zh-Hans, "
            f"zh-Hant), for example {', '.join(_EXAMPLE_LANGUAGES)}",
        )
    return canonical


def read_country(value: object, field: str, issues: Issues) -> str | None:
    """A known ISO 3166-1 alpha-2 country code in upper case; an unknown one gets an issue with examples."""
    if not isinstance(value, str):
        issues.add(field, f"must be a country code (a string), got {describe(value)}")
        return None
    canonical = normalize_country(value)
    if canonical is None:
        hint = _hint(value, _countries())
        issues.add(
            field,
            f"unknown country code {value!r}{hint}; use an ISO 3166-1 alpha-2 code, for example "
            f"{', '.join(_EXAMPLE_COUNTRIES)}",
        )
    return canonical


def _hint(value: str, names: dict[str, str]) -> str:
    """A "did you mean" for a name given instead of a code (``English``), or a near miss of a code."""
    wanted = value.strip().lower()
    if wanted in _COMMON_MISTAKES:
        return f" (did you mean {_COMMON_MISTAKES[wanted]}?)"
    by_name = [code for code, name in names.items() if name.lower() == wanted]
    if by_name:
        return f" (that is a name; its code is {by_name[0]})"
    lowered = {code.lower(): code for code in names}
    close = difflib.get_close_matches(wanted, list(lowered), n=3, cutoff=0.75)
    return f" (did you mean {' or '.join(lowered[c] for c in close)}?)" if close else ""
