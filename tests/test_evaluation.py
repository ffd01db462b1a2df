"""Before/after evaluation on the fake model: rubric, grades, sample, penalties, pairing, judge failures."""

from __future__ import annotations

import re

import orjson
import pytest

from datamill.core.errors import ValidationError
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.evaluation import evaluate, grade
from datamill.pipelines.evaluation_judge import CUT_MARKER, MAX_JUDGED_CHARS, QualityJudge
from datamill.pipelines.evaluation_penalties import declared_language, looks_truncated
from datamill.pipelines.evaluation_rubric import CRITERIA, JUDGE_SCHEMA, grade_for
from datamill.pipelines.evaluation_sample import (
    RowPair,
    SideText,
    allocate,
    pair_rows,
    stratified_sample,
)
from datamill.steps.templates import load_template
from datamill.text.langid import FakeLanguageDetector

_ANSWER = re.compile(r"Answer \(about \d+ tokens\):\n<<<\n(.*)\n>>>", re.DOTALL)


def _scores(value: int) -> str:
    return orjson.dumps({"scores": dict.fromkeys(CRITERIA, value), "rationale": f"all {value}"}).decode()


def scripted(route: Route, request: ChatRequest) -> str:
    """Judge by keyword in the answer: GOOD → 9, GREAT → 10, BROKEN → not JSON, anything else → 6."""
    # A repair call appends turns, so look for the example in the last user turn that holds one.
    found = (_ANSWER.search(m.content) for m in reversed(request.messages) if m.role == "user")
    match = next((m for m in found if m), None)
    answer = match.group(1) if match else ""
    if "BROKEN" in answer:
        return "I refuse to answer in JSON"
    if "GREAT" in answer:
        return _scores(10)
    return _scores(9) if "GOOD" in answer else _scores(6)


def _judge(responder=scripted):
    fake = FakeProvider(responder=responder)
    gateway = Gateway(Routing.load(), providers={"fake": fake})
    return gateway.model("fake/test"), fake


def _before(n: int, *, answer: str = "An OKAY answer {i}.", language: str | None = None) -> list[dict]:
    rows = []
    for i in range(1, n + 1):
        row = {"_row": i, "original_prompt": f"Question number {i}?", "_context": ""}
        row["original_completion"] = answer.format(i=i)
        if language is not None:
            row["language"] = language
        rows.append(row)
    return rows


def _after(before: list[dict], *, answer: str = "A GOOD answer {i}.") -> list[dict]:
    out = []
    for row in before:
        public = {k: v for k, v in row.items() if not k.startswith("_")}
        i = row["_row"]
        out.append(
            public | {"enhanced_prompt": f"What is question {i}?", "enhanced_completion": answer.format(i=i)}
        )
    return out


async def test_scripted_scores_give_exact_grades_and_improvement():
    before = _before(12)
    model, fake = _judge()
    report = await evaluate(before, _after(before), model, sample_size=50, seed=0)
    q = report.quality
    assert (q.grade_before, q.grade_after) == ("C", "A")
    assert (q.score_before, q.score_after) == (6.0, 9.0)
    assert q.improvement_percent == 50.0
    assert q.percentile_after == 100.0
    assert report.status == "succeeded"
    assert len(fake.calls) == 24  # every row, judged twice
    assert report.to_dict()["quality"] == q.to_dict()
    assert set(q.to_dict()) == {
        "grade_before",
        "grade_after",
        "score_before",
        "score_after",
        "percentile_after",
        "improvement_percent",
    }
    assert "percentile_after" not in q.summary()


async def test_penalties_for_duplicates_and_empty_answers_are_applied():
    before = _before(16)
    before += [
        {"_row": 17, "original_prompt": "Prompt only one?", "original_completion": None, "_context": ""},
        {"_row": 18, "original_prompt": "Prompt only two?", "original_completion": None, "_context": ""},
    ]
    # Rows 19 and 20 repeat rows 1 and 2; the run's dedup removed them, so they have no output rows.
    before += [dict(before[0], _row=19), dict(before[1], _row=20)]
    after = _after(before[:18])
    model, _ = _judge()
    report = await evaluate(
        before, after, model, dedup_stats={"exact": 2}, rejection_stats={"deduplication": 2}
    )
    raw = report.to_dict()["raw_results"]
    penalties = raw["before"]["penalties"]
    assert penalties["duplicates"] == {"affected": 2, "checked": 20, "rate": 0.1, "points": 1.0}
    assert penalties["empty_or_truncated"]["affected"] == 2
    assert penalties["empty_or_truncated"]["points"] == 1.0
    # 16 rows at 6.0 and two empty answers at (6 + 0 + 0 + 0 + 6) / 5 = 2.4: mean 5.6, minus 2.0.
    assert raw["before"]["mean_row_score"] == pytest.approx(5.6)
    assert report.quality.score_before == 3.6
    assert report.quality.grade_before == "E"
    assert report.quality.score_after == 9.0
    assert report.quality.improvement_percent == 150.0
    assert raw["after"]["penalty_points"] == 0.0
    assert raw["sample"]["paired_rows"] == 18
    empty = next(r for r in raw["rows"] if r["row_id"] == 17)
    assert empty["before"]["scores"]["correctness"] == 0
    assert empty["before"]["scores"]["instruction_clarity"] == 6


async def test_truncated_and_duplicated_output_rows_cost_the_after_score():
    before = _before(10)
    after = _after(before)
    after[0]["enhanced_completion"] = (
        "A GOOD answer that goes on for a while and then stops in the middle of a"
    )
    after[1]["enhanced_completion"] = after[2]["enhanced_completion"]
    after[1]["enhanced_prompt"] = after[2]["enhanced_prompt"]
    model, _ = _judge()
    report = await evaluate(before, after, model)
    penalties = report.to_dict()["raw_results"]["after"]["penalties"]
    assert penalties["empty_or_truncated"]["affected"] == 1
    assert penalties["duplicates"]["affected"] == 1
    assert report.quality.score_after == 9.0 - 1.0 - 1.0


async def test_language_mismatch_penalty_uses_the_detector():
    before = _before(10, answer="Bonjour, je pense que le chat est sur la table {i}.", language="en")
    after = _after(before, answer="A GOOD answer: the cat is on the table {i}.")
    model, _ = _judge()
    report = await evaluate(before, after, model, language_detector=FakeLanguageDetector())
    raw = report.to_dict()["raw_results"]
    assert raw["before"]["penalties"]["language_mismatch"] == {
        "affected": 10,
        "checked": 10,
        "rate": 1.0,
        "points": 2.0,
    }
    assert raw["after"]["penalties"]["language_mismatch"]["checked"] == 10
    assert raw["after"]["penalties"]["language_mismatch"]["affected"] == 0
    assert report.quality.score_before == 4.0
    no_detector = await evaluate(before, after, model)
    assert no_detector.to_dict()["raw_results"]["before"]["penalties"]["language_mismatch"]["checked"] == 0


async def test_detected_languages_are_counted_when_rows_have_no_language_column():
    before = _before(4, answer="Bonjour, je pense que le chat est sur la table {i}.")
    after = _after(before, answer="A GOOD answer: the cat is on the table {i}.")
    model, _ = _judge()
    report = await evaluate(before, after, model, language_detector=FakeLanguageDetector())
    assert report.before.stats.languages == {"fr": 4}
    assert report.after.stats.languages == {"en": 4}


async def test_judge_failure_is_recorded_and_excluded_from_both_sides():
    before = _before(6)
    before[2]["original_completion"] = "A BROKEN answer."
    after = _after(before)
    after[2]["enhanced_completion"] = "A GREAT answer."  # would lift the after mean if it were counted
    model, _ = _judge()
    report = await evaluate(before, after, model)
    raw = report.to_dict()["raw_results"]
    failed = next(r for r in raw["rows"] if r["row_id"] == 3)
    assert failed["excluded"] is True
    assert "OutputValidationError" in failed["before"]["error"]
    assert failed["after"]["score"] == 10.0
    assert raw["sample"]["scored"] == 5
    assert raw["judge"]["failures"] == 1
    assert report.quality.score_after == 9.0
    assert report.status == "succeeded"


async def test_every_judgement_failing_gives_failed_status_and_no_grade():
    before = _before(3, answer="BROKEN {i}.")
    model, _ = _judge()
    report = await evaluate(before, _after(before, answer="BROKEN {i}."), model)
    assert report.status == "failed"
    assert report.to_dict()["quality"] is None
    assert report.to_dict()["raw_results"]["judge"]["failures"] == 6
    assert report.quality.grade_before is None
    assert report.quality.score_after is None


async def test_no_output_rows_means_skipped():
    model, fake = _judge()
    report = await evaluate(_before(4), [], model)
    assert report.status == "skipped"
    assert fake.calls == []


async def test_evaluate_rejects_a_bad_sample_size():
    model, _ = _judge()
    with pytest.raises(ValidationError) as info:
        await evaluate([], [], model, sample_size=0)
    assert info.value.issues[0].field == "sample_size"


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


async def test_the_same_seed_judges_the_same_rows():
    before = [dict(r, original_prompt=r["original_prompt"] * (1 + r["_row"] % 7 * 9)) for r in _before(60)]
    model, _ = _judge()
    one = await evaluate(before, _after(before), model, sample_size=10, seed=5)
    two = await evaluate(before, _after(before), model, sample_size=10, seed=5)
    ids = [j.pair.row_id for j in one.judgements]
    assert ids == [j.pair.row_id for j in two.judgements]
    assert len(ids) == 10
    assert len(one.sample["strata"]) == len(one.sample["population_strata"]) > 1


def test_pairing_by_shared_columns_judges_the_first_of_fanned_out_rows():
    before = _before(2, language="en")
    after = _after(before)
    copy = dict(after[0], enhanced_prompt="¿Cuál es la pregunta 1?", enhanced_completion="Respuesta.")
    pairs = pair_rows(before, [after[0], copy, after[1]])
    assert [p.row_id for p in pairs] == [1, 2]
    assert pairs[0].after.prompt == "What is question 1?"
    assert pairs[0].language == "en"


def test_pairing_by_row_number_and_missing_enhanced_columns():
    before = _before(3)
    after = [{"row_number": 3, "original_prompt": "changed", "original_completion": "x"}]
    pairs = pair_rows(before, after)
    assert [p.row_id for p in pairs] == [3]
    assert pairs[0].after == SideText("changed", "x")
    assert pairs[0].before.prompt == "Question number 3?"


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


def test_judge_request_carries_rubric_targets_texts_and_schema():
    model, _ = _judge()
    judge = QualityJudge(model, blueprint="Speak like a pirate.", length_range=(40, 150))
    row = {
        "original_prompt": "q?",
        "original_completion": None,
        "_context": "product: X",
        "enhanced_prompt": "Better q?",
        "enhanced_completion": "x" * (MAX_JUDGED_CHARS + 10),
    }
    before, after = judge.requests_for(row)
    assert before.json_schema == JUDGE_SCHEMA
    assert before.temperature == 0.0
    stable, last = before.messages[-2].content, before.messages[-1].content
    assert "Speak like a pirate." in stable
    assert "40 to 150 tokens" in stable
    assert "product: X" in last
    assert "(empty)" in last
    assert "Better q?" in after.messages[-1].content
    assert CUT_MARKER.strip() in after.messages[-1].content
    system = (
        load_template("judge_quality")
        .render(blueprint="", length_target="", context="", prompt="", answer="", answer_tokens=0)[0]
        .content
    )
    assert all(name in system for name in CRITERIA)
