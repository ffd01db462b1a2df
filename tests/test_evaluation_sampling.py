"""The evaluation's building blocks that need no judge: grade bands, the stratified sample, the
truncation heuristic and declared languages."""

from __future__ import annotations

import pytest

from datamill.pipelines.evaluation import grade
from datamill.pipelines.evaluation_penalties import declared_language, looks_truncated
from datamill.pipelines.evaluation_rubric import (
    grade_for,
)
from datamill.pipelines.evaluation_sample import (
    RowPair,
    SideText,
    allocate,
    stratified_sample,
)


def test_grade_bands_and_improvement_rules():
    assert [grade_for(s) for s in (10, 8.5, 8.49, 7.0, 5.5, 5.49, 4.0, 3.99, 0)] == list("AABBCDDEE")
    assert grade_for(None) is None
    assert grade(0.0, 5.0, [0.0]).improvement_percent is None
    assert grade(4.0, 5.0, [3.0, 5.0, 6.0, 8.0]).percentile_after == 50.0
    assert grade(8.0, 6.0, []).improvement_percent == -25.0


def _pairs(n_per_stratum: dict[tuple[int, str], int]) -> list[RowPair]:
    pairs, row_id = [], 0
    for (length, language), count in n_per_stratum.items():
        for _ in range(count):
            row_id += 1
            side = SideText("x" * length, "a")
            pairs.append(RowPair(row_id, side, side, "", language))
    return pairs


def test_stratified_sample_is_deterministic_and_covers_every_stratum():
    pairs = _pairs({(20, "en"): 120, (20, "fr"): 40, (250, "en"): 30, (900, "de"): 6, (3000, "en"): 4})
    first = [p.row_id for p in stratified_sample(pairs, 20, seed=3)]
    assert first == [p.row_id for p in stratified_sample(pairs, 20, seed=3)]
    assert first != [p.row_id for p in stratified_sample(pairs, 20, seed=4)]
    assert len(first) == 20
    assert first == sorted(first)
    chosen = stratified_sample(pairs, 20, seed=3)
    assert {p.stratum for p in chosen} == {p.stratum for p in pairs}
    assert sum(p.stratum == "short/en" for p in chosen) > sum(p.stratum == "short/fr" for p in chosen)


def test_allocation_is_proportional_with_one_per_stratum():
    assert allocate(20, {"a": 80, "b": 15, "c": 5}) == {"a": 15, "b": 3, "c": 2}
    assert allocate(2, {"a": 80, "b": 15, "c": 5}) == {"a": 1, "b": 1}
    assert allocate(500, {"a": 3, "b": 2}) == {"a": 3, "b": 2}


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("Paris", False),
        ("The capital of France is Paris.", False),
        ("- first item\n- second item", False),
        ("Here is the list:", True),
        ("It depends on the weather and", True),
        ("```python\nprint('hi')", True),
        ("This sentence runs on for quite a long way and then simply stops without any ending", True),
        ("Done! 🎉", False),
        ("", False),
    ],
)
def test_truncation_heuristic(text, cut):
    assert looks_truncated(text) is cut


def test_declared_language_accepts_codes_and_english_names():
    assert declared_language("EN") == "en"
    assert declared_language("English") == "en"
    assert declared_language("zh_hant") == "zh-Hant"
    assert declared_language("Klingon") == "Klingon"
