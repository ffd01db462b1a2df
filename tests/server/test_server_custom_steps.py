"""A server run's own steps and prompt templates, over loopback HTTP through the official SDK, on the provider
simulator: a run launched on one server (no worker) is executed by a worker of a second server on the same
data, from what the first stored with the run; its custom step with a JSON schema fills a new column, and its
``completion`` template changes what the simulator receives. Bad definitions are refused with a 400 naming
the field, templates that reach for ``__class__``/``__globals__`` included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import pytest
from runs_helpers import MAPPING, qa_rows, run_settings, runs_server, upload, wait_done
from server_helpers import error_body, fields_of

from conftest import RunningServer
from datamill.llm.simulator import ProviderSimulator, serve_in_thread
from datamill.services.adaptation.run_plan import RunPlan, run_fingerprint, run_identity
from datamill.store import runs as runs_repo

SIM = "sim-openai/gpt"
NO_RECIPES = {
    "recipe_specification": {
        "recipes": {"deduplication": False, "prompt_rephrase": False, "prompt_metadata_injection": False}
    }
}
TOPIC_SCHEMA = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "enum": ["account", "billing", "network", "other"]},
        "urgent": {"type": "boolean"},
    },
    "required": ["topic", "urgent"],
    "additionalProperties": False,
}
TOPIC_STEP = {
    "name": "topic",
    "output": "topic",
    "after": "completion",
    "template": (
        "Classify this support exchange.\nQuestion: {{ original_prompt }}\nAnswer: {{ enhanced_completion }}"
    ),
    "schema": TOPIC_SCHEMA,
}
ACME = "You are the support desk of Acme. Answer in two sentences at most."
COMPLETION = {
    "version": 1,
    "messages": [
        {"role": "system", "content": ACME},
        {"role": "user", "content": "Customer asks: {{ prompt }}"},
    ],
}


@pytest.fixture(scope="module")
def sim() -> Iterator[ProviderSimulator]:
    with serve_in_thread(seed=5) as simulator:
        yield simulator


def _settings(sim: ProviderSimulator, folder: Path, *, worker: bool) -> Any:
    routes = sim.write_routes(folder / "routes.yaml")
    return run_settings(model=SIM, routes_path=routes, evaluate=False, worker=worker)


@pytest.fixture(scope="module")
def quiet(sim: ProviderSimulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server without a worker: launches are validated, quoted and stored, never executed."""
    folder = tmp_path_factory.mktemp("custom-quiet")
    with runs_server(folder / "data", _settings(sim, folder, worker=False)) as running:
        yield running


def test_a_run_executes_its_stored_steps_and_templates_on_another_server(
    sim: ProviderSimulator, tmp_path: Path
) -> None:
    sim.log.clear()
    data = tmp_path / "data"
    body = {"custom_steps": [TOPIC_STEP], "prompt_templates": {"completion": COMPLETION}}
    with runs_server(data, _settings(sim, tmp_path, worker=False)) as first:
        client = first.client()
        dataset_id = upload(client, tmp_path / "qa.jsonl", qa_rows(5))
        quoted = client.datasets.adapt(
            dataset_id, column_mapping=MAPPING, estimate=True, extra_body=NO_RECIPES
        )
        plain = client.datasets.adapt(
            dataset_id, column_mapping=MAPPING, estimate=True, extra_body=NO_RECIPES | body
        )
        launched = client.datasets.adapt(dataset_id, column_mapping=MAPPING, extra_body=NO_RECIPES | body)
        assert launched.run_id is not None
        with first.context.store.session() as session:
            stored = runs_repo.get_run_any_tenant(session, launched.run_id)
            assert stored is not None
            request, model, options, estimate = (
                stored.request,
                stored.model,
                stored.options,
                stored.estimate or {},
            )
    # The estimate counts the custom step's call per row.
    assert plain.estimated_credits_consumed >= quoted.estimated_credits_consumed
    assert request["custom_steps"][0]["template"] == TOPIC_STEP["template"]
    assert request["prompt_templates"] == {"completion": COMPLETION}
    assert sim.log.prompts() == []  # nothing was executed yet: no worker

    with runs_server(data, _settings(sim, tmp_path, worker=True)) as second:
        client = adaption.Adaption(api_key=client.api_key, base_url=second.base_url)
        assert wait_done(client, dataset_id).status == "succeeded"
        rows = [
            json.loads(line)
            for line in client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
        ]

    assert len(rows) == 5
    for row in rows:
        assert row["topic"]["topic"] in {"account", "billing", "network", "other"}
        assert isinstance(row["topic"]["urgent"], bool)
        # The completion came from the overriding template: the simulator echoes the user turn it received.
        assert row["enhanced_completion"].startswith("[sim] Customer asks: Question ")
    completions = [e for e in sim.log if e.operation is None and ACME in e.prompt]
    classified = [e for e in sim.log if e.operation is None and "Classify this support exchange." in e.prompt]
    assert len(completions) == 5
    assert len(classified) == 5
    assert all("Customer asks: Question" in e.prompt for e in completions)
    for entry in classified:  # a JSON request, its prompt filled from the row and the completion
        assert entry.body.get("response_format", {}).get("type") == "json_schema"
        assert "Answer: [sim] Customer asks: Question" in entry.prompt
    # The custom steps and templates are part of the run's identity (its checkpoint is not another's).
    plan = RunPlan.of_record("adapt", request, model, options, estimate)
    without = RunPlan.of_record(
        "adapt", {k: v for k, v in request.items() if k != "custom_steps"}, model, options, estimate
    )
    assert run_fingerprint(run_identity("r"), plan, None) != run_fingerprint(run_identity("r"), without, None)


def _refused(server: RunningServer, tmp_path: Path, body: dict[str, Any]) -> tuple[list[str], str]:
    client = server.client()
    dataset_id = upload(client, tmp_path / "qa.jsonl", qa_rows(3))
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.adapt(dataset_id, column_mapping=MAPPING, extra_body=NO_RECIPES | body)
    return fields_of(caught.value), str(error_body(caught.value)["message"])


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"prompt_templates": {"completon": COMPLETION}}, "prompt_templates.completon", "no built-in prompt"),
        (
            {"custom_steps": [TOPIC_STEP | {"template": "{{ original_prompt "}]},
            "custom_steps[0].template",
            "Jinja",
        ),
        (
            {"custom_steps": [TOPIC_STEP | {"schema": {"type": "objekt"}}]},
            "custom_steps[0].schema",
            "JSON schema",
        ),
        ({"custom_steps": [TOPIC_STEP | {"after": "polish"}]}, "custom_steps[0].after", "'polish'"),
        ({"custom_steps": [TOPIC_STEP | {"template": "x" * 20_001}]}, "custom_steps[0].template", "maximum"),
        (
            {"custom_steps": [TOPIC_STEP | {"model": "nowhere/model"}]},
            "custom_steps[0].model",
            "nowhere/model",
        ),
        (
            {"custom_steps": [TOPIC_STEP | {"template": "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"}]},
            "custom_steps[0].template",
            "nests too deeply",
        ),
        (
            {"prompt_templates": {"completion": {"messages": [{"role": "user", "content": "{% if %}"}]}}},
            "prompt_templates.completion",
            "Jinja",
        ),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(
    quiet: RunningServer, tmp_path: Path, body: dict[str, Any], field: str, reason: str
) -> None:
    fields, message = _refused(quiet, tmp_path, body)
    assert fields == [field]
    assert reason in message


@pytest.mark.parametrize(
    "template",
    [
        "{{ original_prompt.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ original_prompt['__class__'] }}",
        "{{ original_prompt|attr('__class__') }}",
        "{{ original_prompt|attr(probe) }}",  # the name comes from the row: the sandbox refuses it
    ],
)
def test_a_template_reaching_for_python_internals_is_refused(
    quiet: RunningServer, tmp_path: Path, template: str
) -> None:
    client = quiet.client()
    rows = [row | {"probe": "__class__"} for row in qa_rows(3)]
    dataset_id = upload(client, tmp_path / "qa.jsonl", rows)
    bodies: list[dict[str, Any]] = [{"custom_steps": [TOPIC_STEP | {"template": template}]}]
    if "probe" not in template:  # a built-in prompt's variables: `prompt`, not the row's columns
        content = template.replace("original_prompt", "prompt")
        bodies.append(
            {"prompt_templates": {"completion": {"messages": [{"role": "user", "content": content}]}}}
        )
    for body in bodies:
        with pytest.raises(adaption.BadRequestError) as caught:
            client.datasets.adapt(dataset_id, column_mapping=MAPPING, extra_body=NO_RECIPES | body)
        (issue,) = error_body(caught.value)["errors"]
        assert issue["field"] in {"custom_steps[0].template", "prompt_templates.completion"}
        assert "may not use names that start with '_'" in issue["reason"] or "is unsafe" in issue["reason"]
