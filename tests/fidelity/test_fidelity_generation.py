"""Row fidelity of ``datamill generate`` against the provider simulator."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from fidelity_helpers import (
    CACHE_WRITE_PRICE,
    CACHED_INPUT_PRICE,
    INPUT_PRICE,
    MARKERS,
    MODELS,
    OUTPUT_PRICE,
    REALISTIC_MIX,
    routes,
)

import dataframer
from datamill.cli.main import cli
from datamill.llm.simulator import ProviderSimulator, WireRequest
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings
from server_conftest import load_server_conftest

_server = load_server_conftest()

DESCRIPTION = "Short product reviews written by shoppers"
RULE = "Mention the product by name"
SPEC = f"""spec:
  description: {DESCRIPTION}
  requirements:
    - {RULE}
  data_property_variations:
    - property_name: Sentiment
      property_values: [positive, negative]
    - property_name: Product
      property_values: [kettle-zeta, toaster-omega]
"""


def _generate(
    sim: ProviderSimulator, tmp_path: Path, *args: str, samples: int = 3
) -> tuple[int, str, Any, list[Any]]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i, text in enumerate(["The kettle is great.", "The toaster broke after a week."]):
        (seeds / f"seed{i}.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    argv = ["generate", "--spec", str(spec), "-n", str(samples), "-o", str(out), "--model", MODELS["openai"]]
    argv += ["--routes", str(routes(sim, tmp_path)), "--json", "--no-cache", "--seeds", str(seeds), *args]
    env = {"DATAMILL_HOME": str(tmp_path / "home"), "DATAMILL_ROUTES": None, "DATAMILL_MODEL": None}
    result = CliRunner().invoke(cli, argv, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    summary = json.loads(result.stdout) if result.exit_code == 0 else None
    samples_out = [orjson.loads(line) for line in out.read_bytes().splitlines()] if out.is_file() else []
    return result.exit_code, result.output, summary, samples_out


def _assert_invariants(
    sim: ProviderSimulator, code: int, output: str, summary: Any, samples: list[Any]
) -> None:
    if code != 0:
        assert output.strip(), "the run failed without saying why"
        return
    assert summary["delivered"] == len(samples)
    cut = {e.text for e in sim.log if e.behaviour == "truncation" and e.text}
    for sample in samples:
        text = sample["sample"]
        assert text.strip(), f"sample {sample['id']} is empty"
        assert text not in cut, f"sample {sample['id']} is a truncated answer"
        for marker in MARKERS:
            assert marker not in text, f"sample {sample['id']} keeps quirk output: {text!r}"
    billed = sim.log.billed()
    total = summary["usage"]["total"]
    assert total["input_tokens"] == billed.input_tokens
    assert total["output_tokens"] + total["thinking_tokens"] == billed.output_tokens + billed.reasoning_tokens
    expected = billed.cost_usd(
        INPUT_PRICE, OUTPUT_PRICE, cached_input_price=CACHED_INPUT_PRICE, cache_write_price=CACHE_WRITE_PRICE
    )
    assert math.isclose(summary["cost_usd"], expected, rel_tol=1e-6, abs_tol=1e-9)


GATES = ("--filtering-types", "structural,conformance", "--revision-types", "consistency")


def test_every_sample_is_written_from_the_spec_and_its_drawn_properties(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    code, output, summary, samples = _generate(sim, tmp_path, *GATES)

    assert code == 0, output
    _assert_invariants(sim, code, output, summary, samples)
    assert len(samples) == 3
    for sample in samples:
        wanted = [DESCRIPTION, RULE] + [f"{name}: {value}" for name, value in sample["properties"].items()]
        prompts = [
            e.prompt for e in sim.log if e.status == 200 and (e.text or "").strip() == sample["sample"]
        ]
        assert prompts, f"sample {sample['id']}: no request was answered with it"
        for prompt in prompts:
            for text in wanted:
                assert text in prompt, (
                    f"sample {sample['id']}: {text!r} did not reach the request that wrote it"
                )


def _drafts(request: WireRequest) -> bool:
    """The requests that write or revise sample text (every JSON request is a plan or a verdict)."""
    return not request.wants_json


#: Quirks on every draft and revision, and the words a run that delivers nothing names them by (None: a
#: quirk a client reads through, so every sample is delivered).
DRAFT_QUIRKS: dict[str, str | None] = {
    "reasoning_field": None,
    "think": None,
    "refusal_text": "refused",
    "refusal_field": "refused",
    "empty": "empty",
    "truncation": "cut off",
    "content_filter": "content filter",
}


@pytest.mark.parametrize("behaviour", list(DRAFT_QUIRKS))
def test_a_quirk_on_every_draft_keeps_no_garbage(
    sim: ProviderSimulator, tmp_path: Path, behaviour: str
) -> None:
    sim.set(behaviour, 1.0, when=_drafts)
    code, output, summary, samples = _generate(sim, tmp_path, *GATES)

    assert sim.log.with_behaviour(behaviour)
    _assert_invariants(sim, code, output, summary, samples)
    named = DRAFT_QUIRKS[behaviour]
    if named is None:
        assert code == 0, output
        assert len(samples) == 3
    else:
        assert code != 0, "every draft was unusable, yet the run succeeded"
        assert named in output, output


def test_a_generation_run_through_the_server_keeps_no_garbage_and_bills_what_was_billed(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    runs = RunSettings(model=MODELS["openai"], routes_path=routes(sim, tmp_path), poll_s=0.05, evaluate=False)
    settings = ServerSettings.for_data_dir(tmp_path / "data")
    with _server.running_server(settings, context=ServerContext.build(settings, runs=runs)) as server:
        client = dataframer.Dataframer(base_url=server.base_url, api_key=server.new_key(), max_retries=0)
        with client:
            spec = client.dataframer.specs.create(
                name="reviews", generation_objectives="Short product reviews"
            )
            assert (
                _wait(lambda: client.dataframer.specs.retrieve(spec.id), ("SUCCEEDED", "FAILED"))
                == "SUCCEEDED"
            )
            client.dataframer.specs.update(spec.id, content_yaml=SPEC)
            sim.reset()
            sim.set_rates(**REALISTIC_MIX)
            sim.behaviours.seed = 1
            run = client.dataframer.runs.create(
                spec_id=spec.id,
                number_of_samples=6,
                skip_outline=True,
                filtering_types=["structural", "conformance"],
                revision_types=["consistency"],
                # The simulator echoes its prompt: samples of the same properties are copies.
                extra_body={"novelty_threshold": 1},
            )
            status = _wait(
                lambda: client.dataframer.runs.retrieve(run.id), ("SUCCEEDED", "FAILED", "CANCELED")
            )
            done = client.dataframer.runs.retrieve(run.id)
            texts = {}
            for file in done.generated_files:
                if file.path.startswith("sample_") and file.path.endswith(".txt"):
                    link = client.dataframer.runs.files.download(file.id, run_id=run.id)
                    assert link.download_url is not None
                    texts[file.path] = httpx.get(link.download_url, timeout=10).text

    assert status == "SUCCEEDED", done.error
    assert {e.behaviour for e in sim.log} - {None}, "no quirk was met"
    assert len(texts) == 6
    cut = {e.text for e in sim.log if e.behaviour == "truncation" and e.text}
    for path, text in texts.items():
        assert text.strip(), f"{path} is empty"
        assert text.strip() not in cut, f"{path} is a truncated answer"
        for marker in MARKERS:
            assert marker not in text, f"{path} keeps quirk output: {text!r}"
    for entry in sim.log:
        if entry.status == 200 and not (entry.body or {}).get("response_format"):  # drafts and revisions
            assert DESCRIPTION in entry.prompt
            assert RULE in entry.prompt
    billed = sim.log.billed().cost_usd(
        INPUT_PRICE, OUTPUT_PRICE, cached_input_price=CACHED_INPUT_PRICE, cache_write_price=CACHE_WRITE_PRICE
    )
    assert math.isclose(done.total_cost, billed, rel_tol=1e-3, abs_tol=1e-6), (done.total_cost, billed)


def _wait(read: Any, ended: tuple[str, ...]) -> str:
    deadline = time.monotonic() + 60
    while True:
        status = str(read().status)
        if status in ended or time.monotonic() > deadline:
            return status
        time.sleep(0.05)
