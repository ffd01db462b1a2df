"""A server run's own steps and prompt templates (``custom_steps`` and ``prompt_templates`` in the SDK's
``extra_body``) executed by the Ray executor: launched through the official SDK on a server process without
a worker, claimed by a worker whose runs go to Ray actors on a local Ray instance, on the provider simulator.
The actors rebuild the custom step and the template from the stored plan: every row gets the step's column,
the completions are written from the tenant's template, and the output matches the same run executed
locally."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from fleet_helpers import Fleet  # noqa: E402
from server_helpers import wait_for, write_rows  # noqa: E402

from datamill.llm.simulator import serve_in_thread  # noqa: E402
from datamill.services.settings.runs import RunSettings  # noqa: E402
from datamill.services.tenants import TenantService  # noqa: E402
from datamill.services.wiring import RunServices  # noqa: E402
from datamill.store import Store, blob_store_from_url  # noqa: E402

SIM = "sim-openai/gpt"
ROWS = 10
MAPPING = {"prompt": "question", "completion": "answer"}
NO_RECIPES = {
    "recipes": {"deduplication": False, "prompt_rephrase": False, "prompt_metadata_injection": False}
}
TOPIC_STEP = {
    "name": "topic",
    "output": "topic",
    "after": "completion",
    "template": "Classify this exchange.\nQuestion: {{ original_prompt }}\nAnswer: {{ enhanced_completion }}",
    "schema": {
        "type": "object",
        "properties": {"topic": {"type": "string", "enum": ["account", "billing", "other"]}},
        "required": ["topic"],
        "additionalProperties": False,
    },
}
#: A second step of the run's own, on a model of another provider, after the first.
SUMMARY_STEP = {
    "name": "summary",
    "output": "summary",
    "after": "topic",
    "template": "Summarise this ticket in five words: {{ original_prompt }}",
    "model": "sim-anthropic/claude",
}
ACME = "You are the support desk of Acme. Answer in one sentence."
COMPLETION = {
    "version": 1,
    "messages": [
        {"role": "system", "content": ACME},
        {"role": "user", "content": "Customer asks: {{ prompt }}"},
    ],
}


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _questions(name: str) -> list[dict[str, Any]]:
    """The rows of one run; each run has its own questions, so neither is answered from the other's cache."""
    return [
        {"id": i, "question": f"{name} question {i}: why is my bill {i} dollars?", "answer": "?"}
        for i in range(ROWS)
    ]


def test_custom_steps_and_templates_of_a_server_run_execute_on_ray_actors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import adaption

    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'datamill.db'}"
    store = Store.from_url(url)
    store.migrate()
    key = TenantService(store).create_key("ray").key
    own = {"custom_steps": [TOPIC_STEP, SUMMARY_STEP], "prompt_templates": {"completion": COMPLETION}}
    sent: dict[str, list[str]] = {}
    apis: dict[str, set[str]] = {}
    with serve_in_thread(seed=11) as sim:
        routes = sim.write_routes(tmp_path / "routes.yaml")
        env = os.environ | {
            "DATAMILL_MODEL": SIM,
            "DATAMILL_ROUTES": str(routes),
            "DATAMILL_RUN_EVALUATE": "0",
        }
        fleet = Fleet(tmp_path, url, env)
        try:
            client = adaption.Adaption(api_key=key, base_url=fleet.serve(), max_retries=0)
            datasets = []
            for name in ("Local", "Ray"):
                path = write_rows(tmp_path / f"{name}.jsonl", _questions(name))
                dataset_id = client.datasets.upload_file(path).dataset_id
                wait_for(client, dataset_id)
                client.datasets.adapt(
                    dataset_id, column_mapping=MAPPING, recipe_specification=NO_RECIPES, extra_body=own
                )
                datasets.append(dataset_id)
            blobs = blob_store_from_url(str(data_dir / "blobs"))
            caplog.set_level(logging.INFO, logger="datamill.services.jobs.adaptation")
            for executor in ("local", "ray"):  # the runs are claimed oldest first
                settings = RunSettings(
                    model=SIM, routes_path=routes, evaluate=False, executor=executor, ray_actors=2
                )
                worker = RunServices.build(store, blobs, settings, data_dir).worker.worker
                sim.log.clear()
                assert asyncio.run(worker.run_once())
                sent[executor] = sim.log.prompts()
                apis[executor] = {e.api for e in sim.log if "Summarise this ticket" in e.prompt}
            statuses = [client.datasets.get_status(d).status for d in datasets]
            local, remote = (_rows(client, d) for d in datasets)
            client.close()
        finally:
            fleet.close()
            store.close()

    assert statuses == ["succeeded", "succeeded"]
    on_ray = [r.getMessage() for r in caplog.records if "on Ray actors" in r.getMessage()]
    assert len(on_ray) == 1  # the second run only
    assert len(remote) == ROWS
    for row in remote:
        assert row["topic"]["topic"] in {"account", "billing", "other"}
        assert row["enhanced_completion"].startswith("[sim] Customer asks: Ray question ")
        assert row["summary"].startswith("[sim] Summarise this ticket in five words: Ray question ")
    # The actors sent what the local run sent: the tenant's template for each completion, then the step.
    assert sum(ACME in prompt for prompt in sent["ray"]) == ROWS
    assert sum("Classify this exchange." in prompt for prompt in sent["ray"]) == ROWS
    assert apis == {"local": {"anthropic"}, "ray": {"anthropic"}}  # the step's own model, on the actors too
    assert sorted(p.replace("Ray question", "Local question") for p in sent["ray"]) == sorted(sent["local"])
    assert [_same(row) for row in remote] == [_same(row) for row in local]


def _rows(client: Any, dataset_id: str) -> list[dict[str, Any]]:
    lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
    return [json.loads(line) for line in lines]


def _same(row: dict[str, Any]) -> str:
    """A row of the Ray run as the local run wrote it (the questions differ only in their first word)."""
    return json.dumps(row, sort_keys=True).replace("Ray question", "Local question")
