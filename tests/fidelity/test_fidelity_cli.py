"""Row fidelity of ``datamill adapt`` against the provider simulator, mode by mode and quirk by quirk."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
from fidelity_helpers import (
    BLUEPRINT,
    INPUT_COLUMNS,
    LENGTH_TEXT,
    MODELS,
    MODES,
    REALISTIC_MIX,
    UNIVERSAL,
    Run,
    adapt,
    answer_text,
    assert_accounted,
    assert_completion_requests_carry,
    assert_no_quirk_output,
    assert_usage_matches,
    png,
    requests_answered_with,
    rows,
)

from datamill.llm.simulator import ProviderSimulator, WireRequest


def _needs(run: Run, source: list[dict[str, Any]], mode: str) -> dict[str, list[str]]:
    by_id = {row["id"]: row for row in source}
    needs = {}
    for row in run.rows:
        original = by_id[str(row["id"])]
        wanted = [BLUEPRINT, LENGTH_TEXT]
        if row.get("expansion") == "translate":
            wanted.append(row["original_prompt"])  # the translated request
        elif mode != "chat":
            wanted.append(original["product"])
        if mode == "universal":
            wanted += [UNIVERSAL, original["price"]]
        if mode == "prompt":
            wanted.append(original["price"])
        if mode == "improve":
            wanted.append(original["answer"])  # the answer to improve on
        needs[str(row["id"]) + str(row.get("expansion"))] = wanted
    return needs


def _check_invariants(run: Run) -> None:
    assert_accounted(run)
    assert_no_quirk_output(run, INPUT_COLUMNS)
    assert_usage_matches(run)


@pytest.mark.parametrize("mode", list(MODES))
def test_a_clean_run_keeps_every_row_and_sends_each_row_what_it_needs(
    sim: ProviderSimulator, tmp_path: Path, mode: str
) -> None:
    source = rows(tmp_path)
    # The meaning check (an embedding model) runs where it can revert a rephrase that carries the context.
    check = () if mode in ("prompt", "universal") else ("--no-rephrase-check",)
    run = adapt(sim, tmp_path, source, *MODES[mode], *check)

    _check_invariants(run)
    assert len({str(r["id"]) for r in run.rows}) == len(source), run.rejected
    if mode == "chat":
        _assert_chat_turns_carry_the_system_message(run, source)
        return
    keyed = [dict(row, id=str(row["id"]) + str(row.get("expansion"))) for row in run.rows]
    keyed_run = Run(run.code, run.output, run.summary, keyed, run.rejected, run.log, run.input_ids)
    assert_completion_requests_carry(keyed_run, _needs(run, source, mode))
    if mode == "image":
        _assert_images_reach_the_completion(run)
    if mode == "pairs":
        for row in run.rows:
            # The simulator samples deterministically, so each pair is the answer and its revision.
            assert row["pair_method"] == "revision"
            assert row["rejected"] == row["enhanced_completion"]
            assert row["pair_margin"] == 2.0
            prompts = requests_answered_with(run, row["chosen"])
            assert prompts
            assert all(BLUEPRINT in p for p in prompts)  # the revision is written against the style guide
    if mode == "reasoning":
        for row in run.rows:
            prompts = requests_answered_with(run, row["reasoning"])
            assert prompts
            # The trace is worked out from the request: the answer it is checked against is not shown.
            assert all(row["enhanced_completion"] not in p for p in prompts)


def _assert_chat_turns_carry_the_system_message(run: Run, source: list[dict[str, Any]]) -> None:
    by_id = {row["id"]: row for row in source}
    for row in run.rows:
        system = by_id[str(row["id"])]["conversation"][0]["content"]
        assert row["enhanced_chat"][0] == {"role": "system", "content": system}
        answers = [turn["content"] for turn in row["enhanced_chat"] if turn["role"] == "assistant"]
        assert len(answers) == 2
        for answer in answers:
            prompts = requests_answered_with(run, answer)
            assert prompts, f"row {row['id']}: no request was answered with {answer!r}"
            for prompt in prompts:
                assert system in prompt
                assert BLUEPRINT in prompt
                assert LENGTH_TEXT in prompt


def _assert_images_reach_the_completion(run: Run) -> None:
    for row in run.rows:
        image = base64.b64encode(png(int(row["id"]))).decode()
        wanted = row["enhanced_completion"].strip()
        entries = [e for e in run.log if e.status == 200 and answer_text(e.text) == wanted]
        assert entries
        for entry in entries:
            assert image in orjson.dumps(entry.body).decode()


@pytest.mark.parametrize("api", ["anthropic", "gemini"])
def test_each_wire_format_keeps_rows_and_accounts_for_usage(
    sim: ProviderSimulator, tmp_path: Path, api: str
) -> None:
    source = rows(tmp_path)
    run = adapt(sim, tmp_path, source, *MODES["pairs"], "--no-rephrase-check", model=MODELS[api])

    _check_invariants(run)
    assert {e.api for e in run.log} == {api}
    assert len(run.rows) == len(source)


def _completion(request: WireRequest) -> bool:
    """The requests that write an answer: their system prompt starts with the row's blueprint."""
    return request.system.startswith(BLUEPRINT)


@pytest.mark.parametrize("api", list(MODELS))
def test_reasoning_beside_every_answer_loses_no_row(sim: ProviderSimulator, tmp_path: Path, api: str) -> None:
    sim.set("reasoning_field", 1.0)
    source = rows(tmp_path)
    run = adapt(sim, tmp_path, source, *MODES["pairs"], "--no-rephrase-check", model=MODELS[api])

    assert sim.log.with_behaviour("reasoning_field")
    _check_invariants(run)
    assert len(run.rows) == len(source), run.rejected


#: Words the reason of a row whose answer was unusable carries.
NAMED = {
    "refusal_text": "refused",
    "refusal_field": "refused",
    "truncation": "cut off at the token limit",
    "empty": "empty reply",
    "content_filter": "content filter",
}


@pytest.mark.parametrize("behaviour", list(NAMED))
def test_an_unusable_answer_rejects_its_row_at_the_answer_step_naming_why(
    sim: ProviderSimulator, tmp_path: Path, behaviour: str
) -> None:
    sim.set(behaviour, 1.0, when=_completion)  # the rephrase before it is answered cleanly
    source = rows(tmp_path)
    run = adapt(sim, tmp_path, source, *MODES["pairs"], "--no-rephrase-check")

    assert sim.log.with_behaviour(behaviour)
    _check_invariants(run)
    assert run.code == 1, run.output  # nothing delivered: the run fails
    assert sorted(str(r["row"]["id"]) for r in run.rejected) == sorted(run.input_ids)
    for rejection in run.rejected:
        assert rejection["step"] == "completion"
        assert NAMED[behaviour] in rejection["reason"], rejection["reason"]


@pytest.mark.parametrize("mode", ["universal", "image", "expansion", "reasoning"])
def test_a_realistic_mix_keeps_no_garbage_and_each_kept_row_its_context(
    sim: ProviderSimulator, tmp_path: Path, mode: str
) -> None:
    sim.set_rates(**REALISTIC_MIX)
    source = rows(tmp_path, 16)
    run = adapt(sim, tmp_path, source, *MODES[mode], "--no-rephrase-check")

    assert {e.behaviour for e in sim.log} & {"refusal_text", "refusal_field", "truncation", "think", "empty"}
    _check_invariants(run)
    assert run.rows
    keyed = [dict(row, id=str(row["id"]) + str(row.get("expansion"))) for row in run.rows]
    keyed_run = Run(run.code, run.output, run.summary, keyed, run.rejected, run.log, run.input_ids)
    assert_completion_requests_carry(keyed_run, _needs(run, source, mode))


def test_failures_that_retries_fix_lose_no_row(sim: ProviderSimulator, tmp_path: Path) -> None:
    sim.set_rates(rate_limit=0.1, server_error=0.1, overloaded=0.1, slow_first_byte=0.1, reset=0.1)
    sim.slow_first_byte_s = 0.05
    source = rows(tmp_path, 8)
    run = adapt(sim, tmp_path, source, *MODES["pairs"], "--no-rephrase-check")

    for name in ("rate_limit", "server_error", "overloaded", "slow_first_byte", "reset"):
        assert sim.log.with_behaviour(name), name
    _check_invariants(run)
    assert {str(r["id"]) for r in run.rows} == {r["id"] for r in source}


@pytest.mark.parametrize("api", list(MODELS))
def test_cost_is_what_the_provider_bills_with_a_cached_blueprint(
    sim: ProviderSimulator, tmp_path: Path, api: str
) -> None:
    guide = " ".join(
        f"Rule {i}: answer as a patient pirate would, with care and plain words." for i in range(90)
    )
    args = ["--prompt", "question", "--context", "product", "--blueprint", guide, "--recipes", "none"]
    run = adapt(sim, tmp_path, rows(tmp_path, 4), *args, model=MODELS[api])

    _check_invariants(run)
    billed = run.log.billed()
    assert billed.cached_input_tokens > 0  # the blueprint, first in every answer request, is read from cache
    if api == "anthropic":  # which caches only what a request marks, and bills the first write
        assert billed.cache_write_tokens > 0


@pytest.mark.parametrize("api", list(MODELS))
def test_thinking_routes_under_a_realistic_mix_keep_no_garbage(
    sim: ProviderSimulator, tmp_path: Path, api: str
) -> None:
    sim.set_rates(**REALISTIC_MIX)
    source = rows(tmp_path, 4)
    run = adapt(
        sim, tmp_path, source, *MODES["pairs"], "--no-rephrase-check", model=MODELS[api] + "-thinking"
    )

    assert {e.behaviour for e in sim.log} - {None}, "no quirk was met"
    assert run.log.billed().reasoning_tokens > 0
    _check_invariants(run)
    assert run.rows


@pytest.mark.parametrize("api", ["anthropic", "gemini"])
def test_each_image_reaches_its_answer_in_every_wire_format(
    sim: ProviderSimulator, tmp_path: Path, api: str
) -> None:
    source = rows(tmp_path)
    run = adapt(sim, tmp_path, source, *MODES["image"], "--no-rephrase-check", model=MODELS[api])

    _check_invariants(run)
    assert len(run.rows) == len(source)
    _assert_images_reach_the_completion(run)
