"""A server whose routing file sets a route to `batch: true` runs that route's calls through the provider's
batch API: the same rows as online, billed at the batch price."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_fidelity_server as online
from fidelity_helpers import (
    BLUEPRINT,
    CACHE_WRITE_PRICE,
    CACHED_INPUT_PRICE,
    INPUT_COLUMNS,
    INPUT_PRICE,
    MODELS,
    OUTPUT_PRICE,
    assert_accounted,
    assert_no_quirk_output,
    rows,
)

from datamill.llm.simulator import ProviderSimulator
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings

PRICES = {
    "input_price": INPUT_PRICE,
    "output_price": OUTPUT_PRICE,
    "cached_input_price": CACHED_INPUT_PRICE,
    "cache_write_price": CACHE_WRITE_PRICE,
}


@pytest.fixture
def server(sim: ProviderSimulator, tmp_path: Path) -> Iterator[Any]:
    """The server, its routes to the simulator set to batch mode (no evaluation, small batches)."""
    routes = sim.write_routes(tmp_path / "routes.yaml", batch=True, batch_poll_s=0.05, vision=True, **PRICES)
    runs = RunSettings(
        model=MODELS["anthropic"], routes_path=routes, batch_size=2, poll_s=0.05, evaluate=False
    )
    settings = ServerSettings.for_data_dir(tmp_path / "data")
    context = ServerContext.build(settings, runs=runs)
    with online._server.running_server(settings, context=context) as running:
        yield running


def test_a_route_set_to_batch_runs_through_the_batch_api_at_the_batch_price(
    server: Any, sim: ProviderSimulator, tmp_path: Path
) -> None:
    source = rows(tmp_path)
    run = online._server_run(
        server,
        sim,
        tmp_path,
        source,
        column_mapping={"prompt": "question", "context": ["product", "price"]},
        brand_controls={"blueprint": BLUEPRINT, "length": "concise"},
        recipe_specification=online.NO_REPHRASE,
    )

    assert run.code == 0, run.output
    assert_accounted(run)
    assert_no_quirk_output(run, INPUT_COLUMNS)
    assert len(run.rows) == len(source)
    answered = sim.log.answered()
    assert answered
    assert all(e.batch is not None for e in answered)
    assert sim.log.operations("batch_create")
    assert run.summary is not None
    billed = sim.log.cost_usd(**PRICES, batch_discount=0.5)
    assert math.isclose(run.summary["cost_usd"], billed, rel_tol=1e-3, abs_tol=1e-7), (run.summary, billed)
