"""A run's own ``model`` and ``judge_model`` (datamill's fields of run/adapt), over loopback HTTP through the
official SDK's ``extra_body`` on the provider simulator: the routing file serves two simulator families at
different prices; a run naming the dearer one is quoted at its prices, stored with it, and executed by the
worker on it (the simulator's request log names the model of every call). A model no route serves is refused
with a 400 naming the field, before anything is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import pytest
import yaml
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload, wait_done
from server_helpers import error_body, fields_of
from sqlalchemy import select

from datamill.llm.simulator import ProviderSimulator, serve_in_thread
from datamill.store import Run
from datamill.store import runs as runs_repo

DEFAULT = "sim-openai/gpt"
CHOSEN = "sim-anthropic/claude"
NO_RECIPES = {
    "recipe_specification": {
        "recipes": {"deduplication": False, "prompt_rephrase": False, "prompt_metadata_injection": False}
    }
}


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with serve_in_thread(seed=7) as simulator:
        yield simulator


def _settings(sim: ProviderSimulator, folder: Path, *, worker: bool) -> Any:
    routes = sim.routes(input_price=1.0, output_price=2.0)
    # The chosen family costs ten times the default's.
    routes["routes"]["sim-anthropic/*"] |= {"input_price": 10.0, "output_price": 20.0}
    path = folder / "routes.yaml"
    path.write_text(yaml.safe_dump(routes, sort_keys=False), encoding="utf-8")
    return run_settings(model=DEFAULT, routes_path=path, evaluate=False, worker=worker)


def test_a_run_uses_the_model_it_names(sim: ProviderSimulator, tmp_path: Path) -> None:
    sim.log.clear()
    with runs_server(tmp_path / "data", _settings(sim, tmp_path, worker=True)) as server:
        client = server.client()
        dataset_id = upload(client, tmp_path / "qa.jsonl", qa_rows(4))
        default = client.datasets.adapt(
            dataset_id, column_mapping=MAPPING, estimate=True, extra_body=NO_RECIPES
        )
        chosen = client.datasets.adapt(
            dataset_id, column_mapping=MAPPING, estimate=True, extra_body=NO_RECIPES | {"model": CHOSEN}
        )
        # The quote prices the chosen model: ten times the default's prices, so more credits.
        assert chosen.estimated_credits_consumed > default.estimated_credits_consumed
        assert sim.log.prompts() == []  # a quote calls no model
        launched = client.datasets.adapt(
            dataset_id,
            column_mapping=MAPPING,
            extra_body=NO_RECIPES | {"model": CHOSEN, "judge_model": "sim-gemini/flash"},
        )
        assert launched.run_id is not None
        with server.context.store.session() as session:
            stored = runs_repo.get_run_any_tenant(session, launched.run_id)
            assert stored is not None
            model, request, reserved = stored.model, stored.request, float(stored.credits_reserved)
            judge = stored.options["judge_model"]
        assert wait_done(client, dataset_id).status == "succeeded"
    assert model == CHOSEN
    assert request["model"] == CHOSEN
    assert judge == "sim-gemini/flash"  # the judge the run asked for is stored with its options
    assert reserved == pytest.approx(chosen.estimated_credits_consumed, rel=0.01)
    called = {entry.model for entry in sim.log if entry.operation is None}
    assert called == {"claude"}  # the route sends the name's suffix to the provider
    assert all(entry.path == "/v1/messages" for entry in sim.log if entry.operation is None)


@pytest.mark.parametrize("field", ["model", "judge_model"])
def test_an_unrouted_model_is_refused_before_anything_is_stored(
    sim: ProviderSimulator, tmp_path: Path, field: str
) -> None:
    with runs_server(tmp_path / "data", _settings(sim, tmp_path, worker=False)) as server:
        client = server.client()
        dataset_id = upload(client, tmp_path / "qa.jsonl", qa_rows(3))
        with pytest.raises(adaption.BadRequestError) as caught:
            client.datasets.adapt(
                dataset_id, column_mapping=MAPPING, extra_body=NO_RECIPES | {field: "nowhere/model"}
            )
        with server.context.store.session() as session:
            runs = session.scalars(select(Run)).all()
        status = client.datasets.get_status(dataset_id)
    assert fields_of(caught.value) == [field]
    message = str(error_body(caught.value)["message"])
    assert "nowhere/model" in message
    assert "configured models: " in message  # the routed names are listed
    assert "GET /api/v1/models" in message
    assert status.status != "running"
    assert runs == []
