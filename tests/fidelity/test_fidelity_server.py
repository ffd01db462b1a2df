"""Row fidelity of runs launched through the server (with the Adaption SDK) against the provider simulator."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import httpx
import orjson
import pytest
from fidelity_helpers import (
    BLUEPRINT,
    CACHE_WRITE_PRICE,
    CACHED_INPUT_PRICE,
    INPUT_COLUMNS,
    INPUT_PRICE,
    LENGTH_TEXT,
    MODELS,
    OUTPUT_PRICE,
    REALISTIC_MIX,
    UNIVERSAL,
    Run,
    assert_accounted,
    assert_completion_requests_carry,
    assert_no_quirk_output,
    png,
    requests_answered_with,
    routes,
    rows,
)
from sqlalchemy import select

from datamill.llm.simulator import ProviderSimulator, WireRequest
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings
from datamill.store.models import Run as StoredRun
from server_conftest import load_server_conftest

_server = load_server_conftest()
BRAND = {"blueprint": BLUEPRINT, "length": "concise"}
NO_DEDUP = {"recipes": {"deduplication": False}}
NO_REPHRASE = {"recipes": {"deduplication": False, "prompt_rephrase": False}}


@pytest.fixture
def server(sim: ProviderSimulator, tmp_path: Path) -> Iterator[Any]:
    """The server, its worker's runs routed to the simulator (no evaluation, small batches)."""
    runs = RunSettings(
        model=MODELS["openai"], routes_path=routes(sim, tmp_path), batch_size=2, poll_s=0.05, evaluate=False
    )
    settings = ServerSettings.for_data_dir(tmp_path / "data")
    context = ServerContext.build(settings, runs=runs)
    with _server.running_server(settings, context=context) as running:
        yield running


def _server_run(
    server: Any, sim: ProviderSimulator, tmp_path: Path, source: list[dict[str, Any]], **launch: Any
) -> Run:
    client: adaption.Adaption = server.client()
    path = tmp_path / "upload.jsonl"
    # On the server an image cell holds a data: URI (it reads no local files).
    uploaded = [
        r | {"image": "data:image/png;base64," + base64.b64encode(png(int(r["id"]))).decode()} for r in source
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in uploaded))
    dataset_id = client.datasets.upload_file(path).dataset_id
    _wait_ready(client, dataset_id)
    client.datasets.adapt(dataset_id, **launch)
    status = client.datasets.wait_for_completion(
        dataset_id, initial_interval=0.05, max_interval=0.2, backoff_factor=1.5, timeout=120
    )
    out = client.datasets.download(dataset_id, file_format="jsonl").text()
    rejected = httpx.get(
        f"{server.base_url}/api/v1/datasets/{dataset_id}/rejected",
        headers={"Authorization": f"Bearer {client.api_key}"},
    )
    rejected.raise_for_status()
    with server.context.store.session() as session:
        (stored,) = session.scalars(select(StoredRun).where(StoredRun.dataset_id == dataset_id))
        summary = {"cost_usd": stored.cost_usd, "status": stored.status}
    code = 0 if status.status == "succeeded" else 1
    return Run(
        code,
        f"{status.status}: {status.error_data}",
        summary,
        [orjson.loads(line) for line in out.splitlines() if line.strip()],
        [orjson.loads(line) for line in rejected.text.splitlines() if line.strip()],
        sim.log,
        [r["id"] for r in source],
    )


def _wait_ready(client: adaption.Adaption, dataset_id: str) -> None:
    """Wait until the upload has been read (the dataset leaves ``pending``)."""
    deadline = time.monotonic() + 60
    while client.datasets.get_status(dataset_id).status == "pending":
        assert time.monotonic() < deadline, "the upload was not read in time"
        time.sleep(0.05)


def _assert_cost_matches(run: Run) -> None:
    assert run.summary is not None
    billed = run.log.billed().cost_usd(
        INPUT_PRICE, OUTPUT_PRICE, cached_input_price=CACHED_INPUT_PRICE, cache_write_price=CACHE_WRITE_PRICE
    )
    assert math.isclose(run.summary["cost_usd"], billed, rel_tol=1e-3, abs_tol=1e-7), (run.summary, billed)


def test_a_prompt_run_sends_each_row_its_context_blueprint_and_length(
    server: Any, sim: ProviderSimulator, tmp_path: Path
) -> None:
    source = rows(tmp_path)
    run = _server_run(
        server,
        sim,
        tmp_path,
        source,
        column_mapping={"prompt": "question", "context": ["product", "price"]},
        brand_controls=BRAND,
        recipe_specification=NO_DEDUP,
    )

    assert run.code == 0, run.output
    assert_accounted(run)
    assert_no_quirk_output(run, INPUT_COLUMNS)
    _assert_cost_matches(run)
    assert len(run.rows) == len(source)
    needs = {r["id"]: [r["product"], r["price"], BLUEPRINT, LENGTH_TEXT] for r in source}
    assert_completion_requests_carry(run, needs)


def test_a_chat_run_keeps_each_rows_system_message(
    server: Any, sim: ProviderSimulator, tmp_path: Path
) -> None:
    source = rows(tmp_path)
    run = _server_run(
        server, sim, tmp_path, source, column_mapping={"chat": "conversation"}, brand_controls=BRAND
    )

    assert run.code == 0, run.output
    assert_accounted(run)
    assert_no_quirk_output(run, INPUT_COLUMNS)
    _assert_cost_matches(run)
    by_id = {r["id"]: r for r in source}
    for row in run.rows:
        system = by_id[str(row["id"])]["conversation"][0]["content"]
        answers = [t["content"] for t in row["enhanced_chat"] if t["role"] == "assistant"]
        assert answers
        for answer in answers:
            prompts = requests_answered_with(run, answer)
            assert prompts
            assert all(system in p and BLUEPRINT in p for p in prompts)


def _answers(request: WireRequest) -> bool:
    return request.system.startswith(BLUEPRINT)


def test_empty_answers_reject_their_rows_with_a_downloadable_reason(
    server: Any, sim: ProviderSimulator, tmp_path: Path
) -> None:
    sim.set("empty", 1.0, when=_answers)
    source = rows(tmp_path)
    run = _server_run(
        server,
        sim,
        tmp_path,
        source,
        column_mapping={"prompt": "question", "context": ["product"]},
        brand_controls=BRAND,
        recipe_specification=NO_REPHRASE,
    )

    assert sim.log.with_behaviour("empty")
    assert_accounted(run)
    assert_no_quirk_output(run, INPUT_COLUMNS)
    _assert_cost_matches(run)
    assert run.rejected
    assert all("empty" in r["reason"] for r in run.rejected)


#: Each mode as the Adaption API launches it (no rephrase: the prompt-mode test above runs it).
LAUNCHES: dict[str, dict[str, Any]] = {
    "universal": {
        "column_mapping": {"universal_prompt": UNIVERSAL, "context": ["product", "price"]},
        "recipe_specification": NO_REPHRASE,
    },
    "image": {
        "column_mapping": {"prompt": "question", "image": "image"},
        "recipe_specification": NO_REPHRASE,
    },
    "pairs": {
        "column_mapping": {"prompt": "question", "context": ["product"]},
        "training_type": "preference_pairs",
        "recipe_specification": {
            "recipes": {"deduplication": False, "prompt_rephrase": False, "reasoning_traces": True}
        },
    },
    "expansion": {
        "column_mapping": {"prompt": "question", "context": ["product"]},
        "language_expansion": {"type": "translate", "languages": ["es"], "sample_rate": 1},
        "recipe_specification": NO_REPHRASE,
    },
}


@pytest.mark.parametrize("mode", list(LAUNCHES))
def test_a_realistic_mix_through_the_server_keeps_no_garbage(
    server: Any, sim: ProviderSimulator, tmp_path: Path, mode: str
) -> None:
    sim.set_rates(**REALISTIC_MIX)
    sim.behaviours.seed = 1  # a draw under which every mode meets quirks
    source = rows(tmp_path, 12)
    run = _server_run(server, sim, tmp_path, source, brand_controls=BRAND, **LAUNCHES[mode])

    assert run.code == 0, run.output
    assert {e.behaviour for e in sim.log} - {None}, "no quirk was met"
    assert_accounted(run)
    assert_no_quirk_output(run, INPUT_COLUMNS)
    _assert_cost_matches(run)
    assert run.rows
    for row in run.rows:
        prompts = requests_answered_with(run, row["enhanced_completion"])
        assert prompts, f"row {row['id']}: no request was answered with its completion"
        assert all(BLUEPRINT in p and LENGTH_TEXT in p for p in prompts)
