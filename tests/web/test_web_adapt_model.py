"""The adapt page's model choice (headless Chromium, the provider simulator): the select lists the models
the routing file serves with the server's default selected; choosing the second one re-prices the estimate
at its route's prices, and the launched run uses it: the run page names it and the simulator received every
call for it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from runs_helpers import qa_rows, run_settings, runs_server
from web_helpers import drop_file, sign_in

from conftest import RunningServer
from datamill.llm.simulator import ProviderSimulator, serve_in_thread

DEFAULT = "sim-openai/gpt"
SECOND = "sim-anthropic/claude"


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with serve_in_thread(seed=11) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def sim_server(sim: ProviderSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose routing file names two simulator models, the second at ten times the prices."""
    folder = tmp_path_factory.mktemp("web-model")
    routes = sim.routes(input_price=1.0, output_price=2.0)
    table = routes["routes"]
    table[DEFAULT] = table["sim-openai/*"] | {"model": "gpt"}
    table[SECOND] = table["sim-anthropic/*"] | {"model": "claude", "input_price": 10.0, "output_price": 20.0}
    path = folder / "routes.yaml"
    path.write_text(yaml.safe_dump(routes, sort_keys=False), encoding="utf-8")
    settings = run_settings(model=DEFAULT, routes_path=path, evaluate=False)
    with runs_server(folder / "data", settings) as running:
        yield running


def _checked(page: Any, change: Any) -> str:
    page.evaluate("() => { document.getElementById('adapt-form').dataset.state = 'changed'; }")
    change()
    page.wait_for_function(
        "() => ['valid', 'invalid'].includes(document.getElementById('adapt-form').dataset.state)"
    )
    return str(page.get_attribute("#adapt-form", "data-state"))


def _credits(page: Any) -> float:
    return float(page.inner_text("#est-credits").replace(",", ""))


def test_the_adapt_page_runs_the_chosen_model(
    sim_server: RunningServer, sim: ProviderSimulator, browser: Any, tmp_path: Path
) -> None:
    sim.log.clear()
    page = sign_in(browser, sim_server.base_url, sim_server.new_key("acme-model"))
    drop_file(page, "#dropzone", "tickets.jsonl", "".join(json.dumps(row) + "\n" for row in qa_rows(4)))
    page.wait_for_url(re.compile(r".*/datasets/ds_[^/]+$"))
    dataset_url = page.url
    page.click("text=Adapt")
    page.wait_for_selector("#model")
    options = page.eval_on_selector_all("#model option", "els => els.map((e) => e.value)")
    assert options[0] == DEFAULT
    assert SECOND in options
    assert page.input_value("#model") == DEFAULT

    assert _checked(page, lambda: page.select_option("#map-prompt", "question")) == "valid"
    assert _checked(page, lambda: page.select_option("#map-completion", "answer")) == "valid"
    assert page.inner_text("#est-model") == DEFAULT
    default_credits = _credits(page)
    assert _checked(page, lambda: page.select_option("#model", SECOND)) == "valid"
    assert page.inner_text("#est-model") == SECOND
    assert _credits(page) > default_credits  # priced at the second route's prices
    assert sim.log.prompts() == []  # an estimate calls no model

    page.click("#launch")
    page.wait_for_url(f"{dataset_url}/run")
    page.wait_for_selector('#run[data-finished="true"]', timeout=90_000)
    assert page.inner_text("#run-status") == "succeeded"
    assert SECOND in page.inner_text("#run")
    calls = [entry for entry in sim.log if entry.operation is None]
    assert calls
    assert {entry.model for entry in calls} == {"claude"}
    page.context.close()
