"""Column mapping rules of the Adaption API, and the raw-ingest mapping."""

from __future__ import annotations

from typing import Any

import pytest

from datamill.core import (
    ColumnMapping,
    MappingMode,
    SourceColumnMapping,
    check_columns,
    parse_column_mapping,
    parse_source_column_mapping,
)
from datamill.core.errors import ValidationError


def issues(value: Any, parse: Any = parse_column_mapping) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        parse(value)
    return {i.field: i.reason for i in caught.value.issues}


def assert_issue(found: dict[str, str], field: str, *words: str) -> None:
    assert field in found, f"no issue on {field}: {found}"
    for word in words:
        assert word in found[field], f"{word!r} not in {found[field]!r}"


# --- happy paths, one per mode ---------------------------------------------------------------------------


def test_prompt_mode_with_completion_and_context() -> None:
    mapping = parse_column_mapping({"prompt": "q", "completion": "a", "context": ["doc", "title"]})
    assert mapping == ColumnMapping(prompt="q", completion="a", context=("doc", "title"))
    assert mapping.mode is MappingMode.PROMPT


def test_prompt_mode_prompt_alone() -> None:
    mapping = parse_column_mapping({"prompt": "q"})
    assert mapping.mode is MappingMode.PROMPT
    assert mapping.completion is None
    assert mapping.context == ()


def test_universal_prompt_mode_with_context_and_completion() -> None:
    mapping = parse_column_mapping(
        {"universal_prompt": "Summarise the text.", "context": ["text"], "completion": "s"}
    )
    assert mapping.mode is MappingMode.UNIVERSAL_PROMPT
    assert mapping.universal_prompt == "Summarise the text."
    assert mapping.context == ("text",)


def test_universal_prompt_mode_with_image_only() -> None:
    mapping = parse_column_mapping({"universal_prompt": "Describe the picture.", "image": "img"})
    assert mapping.mode is MappingMode.UNIVERSAL_PROMPT
    assert mapping.context == ("img",)


def test_chat_mode() -> None:
    mapping = parse_column_mapping({"chat": "messages"})
    assert mapping.mode is MappingMode.CHAT
    assert mapping.chat == "messages"


def test_chat_mode_with_image() -> None:
    mapping = parse_column_mapping({"chat": "messages", "image": "img"})
    assert mapping.mode is MappingMode.CHAT
    assert mapping.context == ("img",)


def test_image_is_folded_into_context_after_the_given_columns() -> None:
    mapping = parse_column_mapping({"prompt": "q", "context": ["doc"], "image": "img"})
    assert mapping.context == ("doc", "img")
    assert mapping.image == "img"


def test_image_already_in_context_is_not_added_twice_nor_a_duplicate() -> None:
    mapping = parse_column_mapping({"prompt": "q", "context": ["img", "doc"], "image": "img"})
    assert mapping.context == ("img", "doc")


def test_null_keys_count_as_absent() -> None:
    mapping = parse_column_mapping({"prompt": "q", "completion": None, "chat": None, "context": None})
    assert mapping == ColumnMapping(prompt="q")


# --- one test per rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        (
            {"prompt": "q", "universal_prompt": "Do it.", "context": ["c"]},
            "column_mapping.universal_prompt",
            ("prompt", "not both"),
        ),
        ({"chat": "m", "prompt": "q"}, "column_mapping.prompt", ("chat mode", "exclusive")),
        ({"chat": "m", "completion": "a"}, "column_mapping.completion", ("chat mode",)),
        ({"chat": "m", "context": ["c"]}, "column_mapping.context", ("chat mode",)),
        ({"chat": "m", "universal_prompt": "Do it."}, "column_mapping.universal_prompt", ("chat mode",)),
        ({"universal_prompt": "Do it."}, "column_mapping.context", ("context", "image")),
        ({"universal_prompt": "Do it.", "context": []}, "column_mapping.context", ("at least one",)),
        ({"image": "img"}, "column_mapping.image", ("alone", "prompt", "chat", "universal_prompt")),
        ({"completion": "a", "image": "img"}, "column_mapping.image", ("alone",)),
        ({}, "column_mapping", ("mode", "prompt", "chat", "universal_prompt")),
        ({"completion": "a", "context": ["c"]}, "column_mapping", ("mode",)),
    ],
)
def test_mode_rules(value: dict[str, Any], field: str, words: tuple[str, ...]) -> None:
    assert_issue(issues(value), field, *words)


@pytest.mark.parametrize("key", ["prompt", "completion", "image"])
def test_empty_string_is_not_a_column_name(key: str) -> None:
    value = {"prompt": "q", key: ""} if key != "prompt" else {"prompt": ""}
    assert_issue(issues(value), f"column_mapping.{key}", "empty")


def test_empty_context_entry_is_not_a_column_name() -> None:
    assert_issue(issues({"prompt": "q", "context": ["doc", ""]}), "column_mapping.context[1]", "empty")


def test_empty_universal_prompt_is_refused() -> None:
    assert_issue(
        issues({"universal_prompt": "  ", "context": ["c"]}), "column_mapping.universal_prompt", "empty"
    )


@pytest.mark.parametrize(
    ("value", "field", "first_role"),
    [
        ({"prompt": "q", "completion": "q"}, "column_mapping.completion", "prompt"),
        ({"prompt": "q", "context": ["doc", "q"]}, "column_mapping.context[1]", "prompt"),
        ({"prompt": "q", "context": ["doc", "doc"]}, "column_mapping.context[1]", "context[0]"),
        ({"prompt": "q", "image": "q"}, "column_mapping.image", "prompt"),
        ({"chat": "m", "image": "m"}, "column_mapping.image", "chat"),
    ],
)
def test_duplicate_columns_across_roles(value: dict[str, Any], field: str, first_role: str) -> None:
    assert_issue(issues(value), field, "already mapped as", first_role, "one role")


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"prompt": 3}, "column_mapping.prompt", ("string", "number")),
        ({"prompt": True}, "column_mapping.prompt", ("string", "boolean")),
        ({"prompt": "q", "context": "doc"}, "column_mapping.context", ("array", "string")),
        ({"prompt": "q", "context": ["doc", 7]}, "column_mapping.context[1]", ("string",)),
        ({"prompt": "q", "context": [None]}, "column_mapping.context[0]", ("null",)),
        ("q", "column_mapping", ("object", "string")),
    ],
)
def test_wrong_types(value: Any, field: str, words: tuple[str, ...]) -> None:
    assert_issue(issues(value), field, *words)


def test_a_wrong_type_is_reported_once_not_as_a_mode_problem_too() -> None:
    assert issues({"prompt": 3}) == {"column_mapping.prompt": "must be a string, got the number 3"}


def test_unknown_key_names_the_key_and_lists_the_allowed_ones() -> None:
    found = issues({"prompt": "q", "answer": "a"})
    assert_issue(found, "column_mapping.answer", "answer", "prompt", "completion", "chat", "context", "image")


def test_all_issues_are_collected() -> None:
    found = issues({"chat": "m", "prompt": "q", "completion": "", "extra": 1})
    assert set(found) == {"column_mapping.prompt", "column_mapping.completion", "column_mapping.extra"}


def test_custom_field_path() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_column_mapping({}, field="body.mapping")
    assert caught.value.issues[0].field == "body.mapping"


# --- round trips and wire shape --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"prompt": "q"},
        {"prompt": "q", "completion": "a", "context": ["x", "y"]},
        {"prompt": "q", "context": ["x"], "image": "img"},
        {"universal_prompt": "Do it.", "image": "img"},
        {"universal_prompt": "Do it.", "completion": "a", "context": ["x"]},
        {"chat": "m"},
        {"chat": "m", "image": "img"},
    ],
)
def test_round_trip(value: dict[str, Any]) -> None:
    mapping = parse_column_mapping(value)
    assert parse_column_mapping(mapping.to_dict()) == mapping


def test_to_dict_leaves_unset_keys_out_and_shows_the_folded_context() -> None:
    mapping = parse_column_mapping({"prompt": "q", "image": "img"})
    assert mapping.to_dict() == {"prompt": "q", "context": ["img"], "image": "img"}


# --- check_columns ----------------------------------------------------------------------------------------


def test_check_columns_accepts_known_columns() -> None:
    mapping = parse_column_mapping({"prompt": "q", "completion": "a", "context": ["doc"], "image": "img"})
    check_columns(mapping, ["q", "a", "doc", "img", "other"])


def test_check_columns_names_each_unknown_column_and_lists_the_available_ones() -> None:
    mapping = parse_column_mapping({"prompt": "question", "completion": "a", "context": ["doc", "notes"]})
    with pytest.raises(ValidationError) as caught:
        check_columns(mapping, ["question", "answer", "doc"])
    found = {i.field: i.reason for i in caught.value.issues}
    assert set(found) == {"column_mapping.completion", "column_mapping.context[1]"}
    assert_issue(found, "column_mapping.completion", "'a'", "not in the dataset", "question, answer, doc")
    assert_issue(found, "column_mapping.context[1]", "'notes'")


def test_check_columns_reports_a_missing_image_column_once() -> None:
    mapping = parse_column_mapping({"prompt": "q", "image": "img"})
    with pytest.raises(ValidationError) as caught:
        check_columns(mapping, ["q"])
    assert [i.field for i in caught.value.issues] == ["column_mapping.image"]


def test_check_columns_is_case_sensitive() -> None:
    with pytest.raises(ValidationError):
        check_columns(parse_column_mapping({"prompt": "Question"}), ["question"])


# --- SourceColumnMapping (raw ingest) ---------------------------------------------------------------------


def test_source_mapping_prompt_and_completion() -> None:
    mapping = parse_source_column_mapping({"prompt": "q", "completion": "a", "context": ["doc"]})
    assert mapping == SourceColumnMapping(prompt="q", completion="a", context=("doc",))
    assert parse_source_column_mapping(mapping.to_dict()) == mapping


def test_source_mapping_preference_pair_needs_no_completion() -> None:
    mapping = parse_source_column_mapping({"prompt": "q", "chosen": "good", "rejected": "bad"})
    assert (mapping.chosen, mapping.rejected, mapping.completion) == ("good", "bad", None)
    assert mapping.to_dict() == {"prompt": "q", "chosen": "good", "rejected": "bad"}


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"completion": "a"}, "column_mapping.prompt", ("required",)),
        ({"prompt": "q"}, "column_mapping.completion", ("required", "chosen", "rejected")),
        ({"prompt": "q", "chosen": "good"}, "column_mapping.rejected", ("required", "chosen")),
        ({"prompt": "q", "rejected": "bad"}, "column_mapping.chosen", ("required", "rejected")),
        ({"prompt": "q", "completion": "q"}, "column_mapping.completion", ("already mapped", "prompt")),
        (
            {"prompt": "q", "completion": "a", "context": ["a"]},
            "column_mapping.context[0]",
            ("already mapped",),
        ),
        ({"prompt": "q", "completion": "a", "chat": "m"}, "column_mapping.chat", ("unknown", "chosen")),
        ({"prompt": "", "completion": "a"}, "column_mapping.prompt", ("empty",)),
        ({"prompt": "q", "completion": "a", "context": "doc"}, "column_mapping.context", ("array",)),
    ],
)
def test_source_mapping_rules(value: dict[str, Any], field: str, words: tuple[str, ...]) -> None:
    assert_issue(issues(value, parse_source_column_mapping), field, *words)


def test_check_columns_works_on_a_source_mapping() -> None:
    mapping = parse_source_column_mapping({"prompt": "q", "completion": "a", "context": ["nope"]})
    with pytest.raises(ValidationError) as caught:
        check_columns(mapping, ["q", "a"], field="source.column_mapping")
    assert [i.field for i in caught.value.issues] == ["source.column_mapping.context[0]"]
    assert "q, a" in caught.value.issues[0].reason
