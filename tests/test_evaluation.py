"""Before/after evaluation on the fake model: rubric, fairness, sample, penalties, intervals, failures."""

from __future__ import annotations

import random
import re

import orjson
import pytest

from datamill.core.errors import ValidationError
from datamill.llm.gateway import Gateway
from datamill.llm.providers.fake import FakeProvider
from datamill.llm.routing import Routing
from datamill.llm.types import ChatRequest, Route
from datamill.pipelines.evaluation import evaluate
from datamill.pipelines.evaluation_judge import CUT_MARKER, MAX_JUDGED_CHARS, QualityJudge, StyleJudge
from datamill.pipelines.evaluation_rubric import (
    CRITERIA,
    JUDGE_SCHEMA,
    QUALITY_CRITERIA,
    STYLE_SCHEMA,
)
from datamill.pipelines.evaluation_sample import (
    SideText,
    pair_rows,
)
from datamill.steps.judging import PAIR_SCHEMA, RATIONALE_MAX_CHARS
from datamill.text.langid import FakeLanguageDetector

_ANSWER = re.compile(r"Answer(?: \(about \d+ tokens\))?:\n<<<\n(.*)\n>>>", re.DOTALL)
BLUEPRINT = "Speak like a pirate."


def _scores(level: int) -> str:
    return orjson.dumps({"rationale": f"all {level}", "scores": dict.fromkeys(CRITERIA, level)}).decode()


def _answer_of(request: ChatRequest) -> str:
    # A repair call appends turns, so look for the example in the last user turn that holds one.
    found = (_ANSWER.search(m.content) for m in reversed(request.messages) if m.role == "user")
    match = next((m for m in found if m), None)
    return match.group(1) if match else ""


def _level(answer: str) -> int:
    return 5 if "GREAT" in answer else 4 if "GOOD" in answer else 3


def _pair_verdict(request: ChatRequest) -> str:
    text = request.messages[-1].content
    a = text.split("<<<BEGIN ANSWER A>>>")[1].split("<<<END ANSWER A>>>")[0]
    b = text.split("<<<BEGIN ANSWER B>>>")[1].split("<<<END ANSWER B>>>")[0]
    diff = _level(a) - _level(b)
    verdict = "A=B" if diff == 0 else "A>B" if diff > 0 else "B>A"
    return orjson.dumps({"rationale": "compared", "verdict": verdict}).decode()


def scripted(route: Route, request: ChatRequest) -> str:
    """Judge by keyword in the answer: GREAT → 5, GOOD → 4, BROKEN → not JSON, anything else → 3."""
    if request.json_schema == PAIR_SCHEMA:
        return _pair_verdict(request)
    answer = _answer_of(request)
    if "BROKEN" in answer:
        return "I refuse to answer in JSON"
    if request.json_schema == STYLE_SCHEMA:
        level = 5 if "Arr" in answer else 2
        return orjson.dumps({"rationale": "style", "scores": {"style": level}}).decode()
    if "GREAT" in answer:
        return _scores(5)
    return _scores(4) if "GOOD" in answer else _scores(3)


def _judge(responder=scripted):
    fake = FakeProvider(responder=responder)
    gateway = Gateway(Routing.load(), providers={"fake": fake})
    return gateway.model("fake/test"), fake


WORDS = (
    "river",
    "mountain",
    "kettle",
    "invoice",
    "garden",
    "printer",
    "lantern",
    "violin",
    "harbour",
    "pepper",
    "ticket",
    "saddle",
    "meadow",
    "compass",
    "blanket",
    "engine",
    "orchard",
    "pillow",
    "canyon",
    "ladder",
    "mirror",
    "parcel",
    "ribbon",
    "tunnel",
    "wallet",
    "candle",
    "anchor",
    "basket",
    "cactus",
    "dolphin",
    "feather",
    "glacier",
    "hammer",
    "island",
    "jacket",
    "magnet",
    "needle",
    "oyster",
    "pencil",
)


def _prompt(i: int) -> str:
    """A request unlike every other row's, so no two rows are near duplicates by accident."""
    return "Tell me about " + " ".join(random.Random(i).sample(WORDS, 5)) + f" ({i})?"


def _before(n: int, *, answer: str = "An OKAY answer {i}.", language: str | None = None) -> list[dict]:
    rows = []
    for i in range(1, n + 1):
        row = {"_row": i, "original_prompt": _prompt(i), "_context": ""}
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
            public
            | {"enhanced_prompt": f"{_prompt(i)} Please explain.", "enhanced_completion": answer.format(i=i)}
        )
    return out


async def test_scripted_scores_give_exact_grades_and_improvement():
    before = _before(12)
    model, fake = _judge()
    report = await evaluate(before, _after(before), model, sample_size=50, seed=0)
    q = report.quality
    # Level 3 on every criterion is 5.0 on the 0-10 scale, level 4 is 7.5.
    assert (q.grade_before, q.grade_after) == ("D", "B")
    assert (q.score_before, q.score_after) == (5.0, 7.5)
    assert q.improvement_percent == 50.0
    assert q.percentile_after == 100.0
    assert report.status == "succeeded"
    # Every row judged once per side, and its two answers compared in both orders.
    assert len([c for c in fake.calls if c.json_schema == JUDGE_SCHEMA]) == 24
    assert len([c for c in fake.calls if c.json_schema == PAIR_SCHEMA]) == 24
    pairwise = report.to_dict()["raw_results"]["pairwise"]
    assert (pairwise["compared"], pairwise["after_wins"], pairwise["inconsistent"]) == (12, 12, 0)
    assert pairwise["win_rate"] == 1.0
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


async def test_neither_side_is_judged_against_the_run_targets_which_are_scored_apart():
    before = _before(6, answer="An OKAY answer {i}.")
    after = _after(before, answer="Arr, a GOOD answer {i}.")
    model, fake = _judge()
    report = await evaluate(before, after, model, blueprint=BLUEPRINT, length_range=(2, 5))
    quality = [c for c in fake.calls if c.json_schema == JUDGE_SCHEMA]
    style = [c for c in fake.calls if c.json_schema == STYLE_SCHEMA]
    compared = [c for c in fake.calls if c.json_schema == PAIR_SCHEMA]
    assert len(compared) == 12
    # The grade's comparison ignores the targets too: length is no merit, and no style guide is shown.
    assert all("Length is no merit" in c.messages[0].content for c in compared)
    assert not any(BLUEPRINT in m.content for c in compared for m in c.messages)
    assert len(quality) == len(style) == 12
    assert not any(BLUEPRINT in m.content for c in quality for m in c.messages)
    assert not any("tokens." in m.content and "Length" in m.content for c in quality for m in c.messages)
    assert all(BLUEPRINT in "\n".join(m.content for m in c.messages) for c in style)
    # The grade is the quality rubric alone; adherence is reported beside it.
    assert (report.quality.score_before, report.quality.score_after) == (5.0, 7.5)
    adherence = report.to_dict()["raw_results"]["adherence"]
    assert adherence["style"]["before"] == {"score": 2.5, "judged": 6}
    assert adherence["style"]["after"] == {"score": 10.0, "judged": 6}
    assert adherence["length"]["target"] == "2 to 5 tokens"
    assert adherence["length"]["before"] == {"within": 6, "checked": 6, "rate": 1.0}
    assert adherence["length"]["after"]["within"] == 0


def _varied(route: Route, request: ChatRequest) -> str:
    """A judge whose levels depend on the text, so equal grades are not equal by accident."""
    answer = _answer_of(request)
    if request.json_schema == STYLE_SCHEMA:
        return orjson.dumps({"rationale": "s", "scores": {"style": 1 + len(answer) % 5}}).decode()
    levels = {name: 1 + (len(answer) + i) % 5 for i, name in enumerate(CRITERIA)}
    return orjson.dumps({"rationale": "varied", "scores": levels}).decode()


async def test_the_same_data_graded_as_before_and_after_gets_the_same_grade():
    before = _before(30, answer="An answer of some length number {i}" + "." * 0)
    for i, row in enumerate(before):
        row["original_completion"] += " more" * (i % 7)
    before[3]["original_completion"] = ""  # an empty answer
    before[4]["original_completion"] = "It depends on the weather and"  # looks cut off
    before[5] = dict(before[6], _row=6)  # an exact duplicate
    before[7] = dict(before[8], _row=8, original_prompt=before[8]["original_prompt"] + "!")  # a near one
    same = [
        {k: v for k, v in row.items() if not k.startswith("_")}
        | {"enhanced_prompt": row["original_prompt"], "enhanced_completion": row["original_completion"]}
        for row in before
    ]
    model, _ = _judge(_varied)
    report = await evaluate(
        before, same, model, blueprint=BLUEPRINT, length_range=(5, 20), sample_size=20, seed=2
    )
    raw = report.to_dict()["raw_results"]
    assert report.quality.score_before == report.quality.score_after
    assert report.quality.grade_before == report.quality.grade_after
    assert report.quality.improvement_percent == 0.0
    assert raw["before"]["penalties"] == raw["after"]["penalties"]
    assert raw["before"]["penalties"]["duplicates"]["affected"] == 2
    assert raw["before"]["penalty_points"] > 0
    assert raw["adherence"]["style"]["before"] == raw["adherence"]["style"]["after"]
    assert raw["adherence"]["length"]["before"] == raw["adherence"]["length"]["after"]
    assert raw["confidence"]["improvement_points"] == [0.0, 0.0]
    assert raw["before"]["score_interval"] == raw["after"]["score_interval"]
    for row in raw["rows"]:
        assert row["before"]["scores"] == row["after"]["scores"]


async def test_duplicates_count_the_same_way_on_both_sides():
    before = _before(16)
    # Rows 17-19 repeat rows 1-3: two exactly (after normalisation), one nearly. Dedup removed them.
    before += [
        dict(before[0], _row=17),
        dict(before[1], _row=18, original_prompt=before[1]["original_prompt"].upper().rstrip("?")),
        dict(before[2], _row=19, original_prompt=before[2]["original_prompt"] + " thanks"),
    ]
    before += [dict(before[3], _row=20, original_prompt="Which is older, the river or the mountain?")]
    after = _after(before[:16]) + _after([before[19]])
    model, _ = _judge()
    report = await evaluate(
        before,
        after,
        model,
        dedup_stats={"exact": 2, "near": 1},
        rejection_stats={"deduplication": 2, "near_deduplication": 1},
    )
    raw = report.to_dict()["raw_results"]
    assert raw["before"]["penalties"]["duplicates"] == {
        "affected": 3,
        "checked": 20,
        "rate": 0.15,
        "points": 1.5,
    }
    assert raw["after"]["penalties"]["duplicates"]["affected"] == 0
    # Removals by design are not failures.
    assert raw["after"]["penalties"]["rejected"]["affected"] == 0
    assert raw["sample"]["removed_rows"] == 3
    assert report.quality.score_before == 5.0 - 1.5
    assert report.quality.score_after == 7.5


async def test_rejected_rows_are_judged_before_and_count_against_the_after_side():
    before = _before(10)
    before[0]["original_completion"] = "A GREAT answer 1."
    before[1]["original_completion"] = "A GREAT answer 2."
    after = _after(before[2:])  # the run failed on rows 1 and 2
    model, fake = _judge()
    report = await evaluate(
        before, after, model, rejection_stats={"completion": 2, "deduplication": 0, "safety_review": 0}
    )
    raw = report.to_dict()["raw_results"]
    removed = [r for r in raw["rows"] if r["removed"]]
    assert [r["row_id"] for r in removed] == [1, 2]
    assert all(r["before"]["score"] == 10.0 for r in removed)
    assert all(r["after"]["score"] is None and r["after"]["prompt"] is None for r in removed)
    assert len([c for c in fake.calls if c.json_schema == JUDGE_SCHEMA]) == 18
    assert report.to_dict()["raw_results"]["pairwise"]["compared"] == 8
    # The before mean counts the two great rows the output lost: (2 × 10 + 8 × 5) / 10.
    assert raw["before"]["mean_row_score"] == 6.0
    assert raw["after"]["mean_row_score"] == 7.5
    assert raw["before"]["penalties"]["rejected"] == {
        "affected": 0,
        "checked": 10,
        "rate": 0.0,
        "points": 0.0,
    }
    assert raw["after"]["penalties"]["rejected"] == {"affected": 2, "checked": 10, "rate": 0.2, "points": 2.0}
    assert report.quality.score_after == 5.5


async def test_empty_answers_score_the_lowest_level_and_truncated_rows_cost_points():
    before = _before(10)
    before[0]["original_completion"] = None
    after = _after(before)
    after[1]["enhanced_completion"] = (
        "A GOOD answer that goes on for a while and then stops in the middle of a"
    )
    model, _ = _judge()
    report = await evaluate(before, after, model)
    raw = report.to_dict()["raw_results"]
    empty = next(r for r in raw["rows"] if r["row_id"] == 1)
    assert empty["before"]["scores"] == {
        "instruction_clarity": 3,
        "correctness": 1,
        "helpfulness_completeness": 1,
        "safety": 3,
    }
    assert empty["before"]["score"] == 2.5
    assert raw["before"]["penalties"]["empty_or_truncated"]["affected"] == 1
    assert raw["after"]["penalties"]["empty_or_truncated"]["affected"] == 1
    assert report.quality.score_after == 7.5 - 1.0


async def test_intervals_surround_the_scores_and_narrow_with_more_rows():
    def spread(route: Route, request: ChatRequest) -> str:
        if request.json_schema == PAIR_SCHEMA:
            return _pair_verdict(request)
        number = int(re.findall(r"\d+", _answer_of(request))[-1])
        level = 2 + number % 3 + ("GOOD" in _answer_of(request))
        return _scores(min(level, 5))

    model, _ = _judge(spread)
    small = await evaluate(_before(12), _after(_before(12)), model, sample_size=12)
    large = await evaluate(_before(120), _after(_before(120)), model, sample_size=120)
    for report in (small, large):
        confidence = report.to_dict()["raw_results"]["confidence"]
        low, high = confidence["score_before"]
        assert low < report.quality.score_before < high
        low, high = confidence["score_after"]
        assert low < report.quality.score_after < high
        points = confidence["improvement_points"]
        assert points[0] <= report.quality.score_after - report.quality.score_before <= points[1]
        assert confidence["level"] == 0.95
    width = lambda r: r.confidence.score_before[1] - r.confidence.score_before[0]  # noqa: E731
    assert width(large) < width(small)
    again = await evaluate(_before(12), _after(_before(12)), model, sample_size=12)
    assert again.to_dict()["raw_results"]["confidence"] == small.to_dict()["raw_results"]["confidence"]


async def test_the_report_says_when_the_judge_is_the_generator():
    from datamill.llm.judge_choice import GENERATOR, OTHER_FAMILY, JudgeChoice

    model, _ = _judge()
    own = JudgeChoice("fake/test", "fake/test", GENERATOR)
    report = await evaluate(_before(3), _after(_before(3)), model, judge_choice=own)
    judge = report.to_dict()["raw_results"]["judge"]
    assert judge["choice"]["same_model_as_generator"] is True
    assert "the model that generated the data" in judge["note"]
    other = JudgeChoice("anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini", OTHER_FAMILY)
    report = await evaluate(_before(3), _after(_before(3)), model, judge_choice=other)
    assert report.to_dict()["raw_results"]["judge"]["choice"]["same_family_as_generator"] is False


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
    assert report.quality.score_before == 3.0
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
    assert "the judge's reply was not a verdict" in failed["before"]["error"]
    assert failed["after"]["score"] == 10.0
    assert raw["sample"]["scored"] == 5
    assert raw["judge"]["failures"] == 1
    assert report.quality.score_after == 7.5
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
    assert pairs[0].after.prompt == f"{_prompt(1)} Please explain."
    assert pairs[0].language == "en"


def test_pairing_by_row_number_and_missing_enhanced_columns():
    before = _before(3)
    after = [{"row_number": 3, "original_prompt": "changed", "original_completion": "x"}]
    pairs = pair_rows(before, after)
    assert [(p.row_id, p.removed) for p in pairs] == [(1, True), (2, True), (3, False)]
    assert pairs[2].after == SideText("changed", "x")
    assert pairs[2].before.prompt == _prompt(3)


def test_judge_requests_carry_the_levels_the_texts_and_the_schema_but_no_targets():
    model, _ = _judge()
    judge = QualityJudge(model)
    row = {
        "original_prompt": "q?",
        "original_completion": None,
        "_context": "product: X",
        "enhanced_prompt": "Better q?",
        "enhanced_completion": "x" * (MAX_JUDGED_CHARS + 10),
    }
    before, after = judge.requests_for(row)
    assert before.json_schema == JUDGE_SCHEMA
    assert list(JUDGE_SCHEMA["properties"]) == ["rationale", "scores"]
    assert before.temperature == 0.0
    system, last = before.messages[0].content, before.messages[-1].content
    for criterion in QUALITY_CRITERIA:
        for level, text in enumerate(criterion.levels, start=1):
            assert f"{level} = {text}" in system
    assert "product: X" in last
    assert "(empty)" in last
    assert "Better q?" in after.messages[-1].content
    assert CUT_MARKER.strip() in after.messages[-1].content
    assert "Style guide" not in "\n".join(m.content for m in before.messages)
    style_before, _ = StyleJudge(model, BLUEPRINT).requests_for(row)
    assert style_before.json_schema == STYLE_SCHEMA
    # The rationale is bounded only in a constrained grammar, never in the schema a reply must match.
    for request in (before, after, style_before):
        assert request.grammar_max_chars == {"rationale": RATIONALE_MAX_CHARS}
        assert request.json_schema is not None
        assert request.json_schema["properties"]["rationale"] == {"type": "string"}
    assert BLUEPRINT in "\n".join(m.content for m in style_before.messages)


def test_the_documented_levels_are_the_ones_the_judge_is_given():
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "evaluation.md").read_text(encoding="utf-8")
    for criterion in QUALITY_CRITERIA:
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{criterion.name}` |"))
        assert [cell.strip() for cell in row.strip("|").split("|")[2:]] == list(criterion.levels)


async def test_the_after_side_is_compared_with_the_before_side_in_both_orders_with_length_control():
    def first_shown_wins(route: Route, request: ChatRequest) -> str:
        if request.json_schema == PAIR_SCHEMA:
            return orjson.dumps({"rationale": "the first reads better", "verdict": "A>B"}).decode()
        return scripted(route, request)

    before = _before(12)
    model, _ = _judge(first_shown_wins)
    report = await evaluate(before, _after(before), model)
    pairwise = report.to_dict()["raw_results"]["pairwise"]
    # A judge that follows the position prefers neither side: every comparison is inconsistent, a tie.
    assert (pairwise["compared"], pairwise["inconsistent"], pairwise["ties"]) == (12, 12, 12)
    assert pairwise["win_rate"] == 0.5
    row = report.to_dict()["raw_results"]["rows"][0]["comparison"]
    assert row["consistent"] is False
    assert row["x_first"]["verdict"] == row["y_first"]["verdict"] == "A>B"

    # Answers longer after, and better only because longer: the length-controlled win rate sees through it.
    def longer_wins(route: Route, request: ChatRequest) -> str:
        if request.json_schema == PAIR_SCHEMA:
            text = request.messages[-1].content
            a = text.split("<<<BEGIN ANSWER A>>>")[1].split("<<<END ANSWER A>>>")[0]
            b = text.split("<<<BEGIN ANSWER B>>>")[1].split("<<<END ANSWER B>>>")[0]
            verdict = "A>B" if len(a) > len(b) else "B>A"
            return orjson.dumps({"rationale": "longer", "verdict": verdict}).decode()
        return scripted(route, request)

    before = _before(40)
    for row in before[::4]:  # a quarter of the answers get shorter instead
        row["original_completion"] += " in more words" * 10
    after = _after(before)
    for i, row in enumerate(after):
        row["enhanced_completion"] = f"An OKAY answer {i + 1}." + " and so on" * (1 if i % 4 == 0 else 20)
    model, _ = _judge(longer_wins)
    report = await evaluate(before, after, model, sample_size=40)
    pairwise = report.to_dict()["raw_results"]["pairwise"]
    assert pairwise["win_rate"] == 0.75
    assert pairwise["length_controlled_win_rate"] < 0.6
    assert pairwise["length_coefficient"] > 1
    low, high = pairwise["win_rate_interval"]
    assert low < 0.75 < high


async def test_the_same_answer_on_both_sides_is_a_tie_without_a_judge_call():
    before = _before(5)
    same = [
        dict(row, enhanced_prompt=row["original_prompt"], enhanced_completion=row["original_completion"])
        for row in _after(before)
    ]
    model, fake = _judge()
    report = await evaluate(before, same, model)
    assert not [c for c in fake.calls if c.json_schema == PAIR_SCHEMA]
    pairwise = report.to_dict()["raw_results"]["pairwise"]
    assert (pairwise["compared"], pairwise["ties"], pairwise["win_rate"]) == (5, 5, 0.5)
