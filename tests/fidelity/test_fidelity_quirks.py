"""Each provider quirk at 100% and in a realistic mix, through `datamill adapt` against the simulator.

A quirk no client can read through (a refusal, a cut, a filtered or an empty reply) rejects every row with a
reason naming it, and a run that delivers nothing fails. A quirk a client can read through (reasoning text,
fences, prose around JSON) loses no row. Failures no retry can fix stop the run after a few requests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fidelity_helpers import (
    INPUT_COLUMNS,
    MODELS,
    MODES,
    Run,
    adapt,
    assert_accounted,
    assert_no_quirk_output,
    assert_usage_matches,
    rows,
)

from datamill.llm.simulator import ProviderSimulator, WireRequest

#: Words the reason of a row rejected for each quirk carries.
NAMED = {
    "refusal_text": "refused",
    "refusal_field": "refused",
    "truncation": "cut off at the token limit",
    "empty": "empty reply",
    "content_filter": "content filter",
}
#: Anthropic's only safety stop is its `refusal` stop reason, so its filtered reply reads as a refusal.
NAMED_ON = {("content_filter", "anthropic"): "refused"}
UNUSABLE = [(behaviour, api) for behaviour in NAMED for api in MODELS]


def _check(run: Run) -> None:
    assert_accounted(run)
    assert_no_quirk_output(run, INPUT_COLUMNS)
    assert_usage_matches(run)


@pytest.mark.parametrize(("behaviour", "api"), UNUSABLE)
def test_an_unusable_reply_on_every_request_rejects_every_row_and_fails_the_run(
    sim: ProviderSimulator, tmp_path: Path, behaviour: str, api: str
) -> None:
    sim.set(behaviour, 1.0)
    source = rows(tmp_path)
    run = adapt(sim, tmp_path, source, *MODES["prompt"], "--no-rephrase-check", model=MODELS[api])

    assert run.code == 1, run.output
    assert f"every row was rejected ({len(source)} rows)" in run.output
    assert run.rows == []
    assert sorted(str(r["row"]["id"]) for r in run.rejected) == sorted(run.input_ids)
    named = NAMED_ON.get((behaviour, api), NAMED[behaviour])
    for rejection in run.rejected:
        assert named in rejection["reason"], rejection["reason"]
    # Each row's first request was asked once more before the row was rejected.
    assert len(sim.log) == 2 * len(source)
    assert not run.crashed


def _json(request: WireRequest) -> bool:
    return request.wants_json


@pytest.mark.parametrize("api", list(MODELS))
def test_reasoning_text_before_every_answer_loses_no_row(
    sim: ProviderSimulator, tmp_path: Path, api: str
) -> None:
    sim.set("think", 1.0)
    source = rows(tmp_path)
    run = adapt(sim, tmp_path, source, *MODES["pairs"], "--no-rephrase-check", model=MODELS[api])

    assert sim.log.with_behaviour("think")
    _check(run)
    assert len(run.rows) == len(source), run.rejected


@pytest.mark.parametrize("behaviour", ["prose_json", "json_fence"])
def test_json_in_prose_or_fences_loses_no_row_and_needs_no_repair(
    sim: ProviderSimulator, tmp_path: Path, behaviour: str
) -> None:
    sim.set(behaviour, 1.0, when=_json)
    source = rows(tmp_path)
    run = adapt(sim, tmp_path, source, *MODES["pairs"], "--no-rephrase-check")

    assert sim.log.with_behaviour(behaviour)
    _check(run)
    assert len(run.rows) == len(source), run.rejected
    assert not any("rejected" in (e.prompt or "") for e in sim.log)  # no repair request was sent


@pytest.mark.parametrize("mode", ["prompt", "pairs", "chat"])
def test_a_realistic_mix_keeps_no_garbage_and_accounts_for_every_row(
    sim: ProviderSimulator, tmp_path: Path, mode: str
) -> None:
    sim.set_rates(
        refusal_text=0.02,
        refusal_field=0.02,
        truncation=0.02,
        think=0.03,
        empty=0.02,
        content_filter=0.01,
        json_fence=0.01,
        prose_json=0.01,
        rate_limit=0.03,
        server_error=0.01,
        overloaded=0.01,
    )
    source = rows(tmp_path, 24)
    run = adapt(sim, tmp_path, source, *MODES[mode], "--no-rephrase-check")

    assert run.code == 0, run.output
    _check(run)
    quirks = {e.behaviour for e in sim.log if e.behaviour}
    assert quirks & {"refusal_text", "refusal_field", "truncation", "think", "empty"}, quirks


@pytest.mark.parametrize("api", list(MODELS))
@pytest.mark.parametrize(
    ("behaviour", "named"), [("insufficient_quota", "no quota"), ("bad_request", "Unsupported")]
)
def test_a_provider_that_refuses_every_request_stops_the_run_early(
    sim: ProviderSimulator, tmp_path: Path, api: str, behaviour: str, named: str
) -> None:
    sim.set(behaviour, 1.0)
    source = rows(tmp_path, 150)
    run = adapt(sim, tmp_path, source, *MODES["prompt"], "--no-rephrase-check", model=MODELS[api])

    assert run.code == 1, run.output
    assert named in run.output
    assert run.rows == []
    assert not run.crashed
    # Without the stop every row's request was sent (a quota's 429 retried); with it only the requests
    # already in flight when the first answers came back (at most the route's concurrency) were sent.
    assert len(sim.log) < len(source)
