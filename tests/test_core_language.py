"""Language and country codes, language expansion rules, and the translate/localize request bodies."""

from __future__ import annotations

from typing import Any

import pytest

from datamill.core import (
    ExpansionType,
    LanguageExpansion,
    LocalePair,
    country_codes,
    country_name,
    language_codes,
    language_name,
    normalize_country,
    normalize_language,
    parse_language_expansion,
    parse_localize_request,
    parse_translate_request,
)
from datamill.core.errors import ValidationError


def issues(value: Any, parse: Any = parse_language_expansion) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse(value)
    return {i.field: i.reason for i in caught.value.issues}


def assert_issue(found: dict[str, str], field: str, *words: str) -> None:
    assert field in found, f"no issue on {field}: {found}"
    for word in words:
        assert word in found[field], f"{word!r} not in {found[field]!r}"


def translate(**extra: Any) -> dict[str, Any]:
    return {"type": "translate", "languages": ["es", "fr"], "sample_rate": 0.25, **extra}


def localize(**extra: Any) -> dict[str, Any]:
    return {"type": "localize", "pairs": [{"country": "MX", "language": "es"}], "sample_rate": 0.5, **extra}


# --- shipped lists ----------------------------------------------------------------------------------------


def test_shipped_language_list_has_the_contract_codes() -> None:
    codes = set(language_codes())
    assert {"en", "fr", "es", "de", "ja", "fil", "yue", "zh-Hans", "zh-Hant", "tl", "uk"} <= codes
    assert "zh" not in codes  # an alias, not a canonical code
    assert len(codes) >= 180  # the whole of ISO 639-1, not a sample


def test_shipped_country_list_is_iso_3166_alpha_2() -> None:
    codes = country_codes()
    assert {"US", "GB", "MX", "FR", "DE", "JP", "BR", "IN", "PH", "TW"} <= set(codes)
    assert len(codes) == 249
    assert all(len(c) == 2 and c.isupper() for c in codes)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("EN", "en"),
        ("en", "en"),
        ("ZH", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("zh-hant", "zh-Hant"),
        ("ZH_HANS", "zh-Hans"),
        ("FIL", "fil"),
        ("Yue", "yue"),
        (" fr ", "fr"),
    ],
)
def test_language_codes_match_ignoring_case(given: str, canonical: str) -> None:
    assert normalize_language(given) == canonical


@pytest.mark.parametrize("given", ["xx", "english", "en-US", "", "zh-CN"])
def test_unknown_language_codes(given: str) -> None:
    assert normalize_language(given) is None


def test_country_codes_match_ignoring_case() -> None:
    assert normalize_country("mx") == "MX"
    assert normalize_country("Gb") == "GB"
    assert normalize_country("UK") is None
    assert normalize_country("USA") is None


def test_names() -> None:
    assert language_name("EN") == "English"
    assert language_name("zh") == "Chinese (Simplified)"
    assert language_name("fil") == "Filipino"
    assert country_name("mx") == "Mexico"
    with pytest.raises(KeyError):
        language_name("xx")
    with pytest.raises(KeyError):
        country_name("XX")


# --- happy paths --------------------------------------------------------------------------------------------


def test_translate() -> None:
    expansion = parse_language_expansion(translate(languages=["ES", "zh", "fil"]))
    assert expansion == LanguageExpansion(
        type=ExpansionType.TRANSLATE, languages=("es", "zh-Hans", "fil"), sample_rate=0.25
    )
    assert expansion.targets == 3


def test_localize() -> None:
    expansion = parse_language_expansion(
        localize(pairs=[{"country": "mx", "language": "ES"}, {"country": "BR", "language": "pt"}])
    )
    assert expansion.pairs == (LocalePair("MX", "es"), LocalePair("BR", "pt"))
    assert expansion.targets == 2
    assert expansion.languages == ()


@pytest.mark.parametrize("rate", [0.01, 1, 1.0, 0.5])
def test_sample_rate_bounds_are_inclusive(rate: float) -> None:
    assert parse_language_expansion(translate(sample_rate=rate)).sample_rate == rate


@pytest.mark.parametrize("value", [translate(), localize(), translate(languages=["ZH", "yue"])])
def test_round_trip(value: dict[str, Any]) -> None:
    expansion = parse_language_expansion(value)
    assert parse_language_expansion(expansion.to_dict()) == expansion


def test_to_dict_uses_canonical_codes() -> None:
    assert parse_language_expansion(translate(languages=["ZH"])).to_dict() == {
        "type": "translate",
        "languages": ["zh-Hans"],
        "sample_rate": 0.25,
    }


@pytest.mark.parametrize(
    ("input_rows", "rate", "targets", "expected"),
    [
        (100, 0.25, 2, 150),
        (100, 1.0, 3, 400),
        (10, 0.05, 5, 13),
        (0, 0.5, 2, 0),
        (7, 0.01, 1, 7),
        (1000, 0.1, 3, 1300),
    ],
)
def test_expected_output_rows(input_rows: int, rate: float, targets: int, expected: int) -> None:
    languages = tuple(language_codes()[:targets])
    expansion = LanguageExpansion(type=ExpansionType.TRANSLATE, languages=languages, sample_rate=rate)
    assert expansion.expected_output_rows(input_rows) == expected


def test_expected_output_rows_counts_pairs_for_localize() -> None:
    pairs = (LocalePair("MX", "es"), LocalePair("ES", "es"))
    expansion = LanguageExpansion(type=ExpansionType.LOCALIZE, pairs=pairs, sample_rate=0.5)
    assert expansion.expected_output_rows(100) == 200


# --- one test per rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        (
            {"languages": ["es"], "sample_rate": 0.5},
            "language_expansion.type",
            ("required", "translate", "localize"),
        ),
        (translate(type="transliterate"), "language_expansion.type", ("translate", "localize")),
        (translate(languages=None), "language_expansion.languages", ("required",)),
        (translate(languages=[]), "language_expansion.languages", ("at least one",)),
        (
            translate(pairs=[{"country": "MX", "language": "es"}]),
            "language_expansion.pairs",
            ("not allowed", "translate"),
        ),
        (localize(pairs=None), "language_expansion.pairs", ("required",)),
        (localize(pairs=[]), "language_expansion.pairs", ("at least one",)),
        (localize(languages=["es"]), "language_expansion.languages", ("not allowed", "localize")),
        (localize(pairs=[{"language": "es"}]), "language_expansion.pairs[0].country", ("required",)),
        (localize(pairs=[{"country": "MX"}]), "language_expansion.pairs[0].language", ("required",)),
        (
            localize(pairs=[{"country": "MX", "language": "es", "city": "x"}]),
            "language_expansion.pairs[0].city",
            ("unknown", "country", "language"),
        ),
        (localize(pairs=["MX/es"]), "language_expansion.pairs[0]", ("object",)),
        (translate(sample_rate=None), "language_expansion.sample_rate", ("required",)),
        (translate(sample_rate=0.005), "language_expansion.sample_rate", ("0.01", "1")),
        (translate(sample_rate=1.5), "language_expansion.sample_rate", ("0.01", "1")),
        (translate(sample_rate=0), "language_expansion.sample_rate", ("between",)),
        (translate(sample_rate="0.5"), "language_expansion.sample_rate", ("number", "string")),
        (translate(sample_rate=True), "language_expansion.sample_rate", ("number", "boolean")),
        (translate(languages="es"), "language_expansion.languages", ("array",)),
        (translate(languages=["es", 1]), "language_expansion.languages[1]", ("string",)),
        (
            translate(extra=1),
            "language_expansion.extra",
            ("unknown", "type", "languages", "pairs", "sample_rate"),
        ),
        ("translate", "language_expansion", ("object",)),
    ],
)
def test_rules(value: Any, field: str, words: tuple[str, ...]) -> None:
    assert_issue(issues(value), field, *words)


def test_unknown_language_code_lists_a_sample_of_valid_ones() -> None:
    found = issues(translate(languages=["es", "xx"]))
    assert_issue(found, "language_expansion.languages[1]", "'xx'", "ISO 639-1", "en", "zh-Hans", "fil")


def test_a_language_name_instead_of_a_code_gets_a_hint() -> None:
    found = issues(translate(languages=["French"]))
    assert_issue(found, "language_expansion.languages[0]", "its code is fr")


def test_unknown_country_code_lists_a_sample_and_suggests_gb_for_uk() -> None:
    found = issues(localize(pairs=[{"country": "UK", "language": "en"}]))
    assert_issue(found, "language_expansion.pairs[0].country", "'UK'", "GB", "3166", "US")


def test_unknown_language_in_a_pair() -> None:
    found = issues(localize(pairs=[{"country": "MX", "language": "mexican"}]))
    assert_issue(found, "language_expansion.pairs[0].language", "unknown language code")


@pytest.mark.parametrize("languages", [["es", "es"], ["es", "ES"], ["zh", "zh-Hans"]])
def test_duplicate_languages(languages: list[str]) -> None:
    assert_issue(issues(translate(languages=languages)), "language_expansion.languages[1]", "twice")


def test_duplicate_pairs() -> None:
    pairs = [
        {"country": "MX", "language": "es"},
        {"country": "ES", "language": "es"},
        {"country": "mx", "language": "ES"},
    ]
    found = issues(localize(pairs=pairs))
    assert set(found) == {"language_expansion.pairs[2]"}
    assert_issue(found, "language_expansion.pairs[2]", "MX/es", "twice")


def test_all_issues_are_collected() -> None:
    found = issues(
        {
            "type": "localize",
            "languages": ["es"],
            "pairs": [{"country": "ZZ", "language": "es"}, {"country": "MX"}],
            "sample_rate": 2,
        }
    )
    assert set(found) == {
        "language_expansion.languages",
        "language_expansion.pairs[0].country",
        "language_expansion.pairs[1].language",
        "language_expansion.sample_rate",
    }


# --- translate and localize endpoint bodies (Adaption API) --------------------------------------------------


def test_translate_request_as_the_sdk_sends_it() -> None:
    request = parse_translate_request({"sample_rate": 0.25, "languages": ["es", "fr"]})
    assert request.expansion == LanguageExpansion(
        type=ExpansionType.TRANSLATE, languages=("es", "fr"), sample_rate=0.25
    )
    assert (request.estimate, request.idempotency_key) == (False, None)


def test_localize_request_with_estimate_and_key() -> None:
    body = {
        "sample_rate": 0.5,
        "pairs": [{"country": "MX", "language": "es"}],
        "estimate": True,
        "idempotency_key": "k-1",
    }
    request = parse_localize_request(body)
    assert request.expansion.pairs == (LocalePair("MX", "es"),)
    assert (request.estimate, request.idempotency_key) == (True, "k-1")
    assert parse_localize_request(request.to_dict()) == request


def test_translate_request_round_trip() -> None:
    request = parse_translate_request({"sample_rate": 0.1, "languages": ["de"], "idempotency_key": "x"})
    assert request.to_dict() == {
        "languages": ["de"],
        "sample_rate": 0.1,
        "estimate": False,
        "idempotency_key": "x",
    }
    assert parse_translate_request(request.to_dict()) == request


@pytest.mark.parametrize(
    ("parse", "body", "field", "words"),
    [
        (
            parse_translate_request,
            {"sample_rate": 0.5, "languages": ["es"], "pairs": []},
            "pairs",
            ("unknown",),
        ),
        (
            parse_translate_request,
            {"sample_rate": 0.5, "languages": ["es"], "type": "translate"},
            "type",
            ("unknown",),
        ),
        (parse_translate_request, {"sample_rate": 0.5}, "languages", ("required",)),
        (parse_translate_request, {"languages": ["es"]}, "sample_rate", ("required",)),
        (parse_translate_request, {"sample_rate": 0.5, "languages": ["xx"]}, "languages[0]", ("unknown",)),
        (parse_localize_request, {"sample_rate": 0.5, "languages": ["es"]}, "languages", ("unknown",)),
        (parse_localize_request, {"sample_rate": 0.5}, "pairs", ("required",)),
        (
            parse_localize_request,
            {"sample_rate": 0.5, "pairs": [{"country": "MX", "language": "es"}], "estimate": "true"},
            "estimate",
            ("boolean",),
        ),
        (
            parse_localize_request,
            {"sample_rate": 0.5, "pairs": [{"country": "MX", "language": "es"}], "idempotency_key": ""},
            "idempotency_key",
            ("empty",),
        ),
        (parse_translate_request, [], "body", ("object",)),
    ],
)
def test_expand_request_rules(parse: Any, body: Any, field: str, words: tuple[str, ...]) -> None:
    assert_issue(issues(body, parse), field, *words)
