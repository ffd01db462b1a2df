"""Evaluations of generation runs through the official SDK: a run → evaluation SUCCEEDED with its analysis;
refusals (run not SUCCEEDED, bad model, bad body); tenants; the list of a run's evaluations.

The judge is the shipped fake model, which answers each property's first value, so the analysis is known
from the values drawn for each sample (read back from the run's metadata files).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from df_waits import wait_run, wait_spec

import dataframer
from datamill.store.generation_runs import files_of_run

SPEC_YAML = """
spec:
  description: A short support email
  requirements: [Two sentences]
  data_property_variations:
    - property_name: Tone
      property_values: [formal, casual]
      base_distributions: {formal: 50, casual: 50}
    - property_name: Topic
      property_values: [billing, shipping, returns]
      conditional_distributions:
        Tone:
          formal: {billing: 60, shipping: 20, returns: 20}
"""
SAMPLES = 8
DEADLINE_S = 60.0


def succeeded_run(client: dataframer.Dataframer, samples: int = SAMPLES) -> Any:
    """A SUCCEEDED run of `SPEC_YAML` (a seedless spec, edited to it), made through the SDK."""
    spec = client.dataframer.specs.create(name="emails", generation_objectives="Short support emails")
    assert wait_spec(client, spec.id).status == "SUCCEEDED"
    client.dataframer.specs.update(spec.id, content_yaml=SPEC_YAML)
    run = client.dataframer.runs.create(
        spec_id=spec.id,
        number_of_samples=samples,
        skip_outline=True,
        extra_body={"novelty_threshold": 1},  # the fake's copies
    )
    done = wait_run(client, run.id)
    assert done.status == "SUCCEEDED", done
    return done


def wait_evaluation(client: dataframer.Dataframer, evaluation_id: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        evaluation = client.dataframer.evaluations.retrieve(evaluation_id)
        if evaluation.status in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            return evaluation
        time.sleep(0.05)


def drawn_values(client: dataframer.Dataframer, run: Any) -> dict[str, dict[str, str]]:
    """Sample name → the values drawn for it, from the run's metadata files (downloaded by URL)."""
    out = {}
    for file in run.generated_files:
        if file.path.endswith(".metadata.json"):
            link = client.dataframer.runs.files.download(file.id, run_id=run.id)
            assert link.download_url is not None
            meta = httpx.get(link.download_url, timeout=10).json()
            out[file.path.removesuffix(".metadata.json")] = meta["properties"]
    return out


def test_a_run_is_evaluated_with_distributions_score_and_classifications(client: dataframer.Dataframer):
    run = succeeded_run(client)
    created = client.dataframer.evaluations.create(run_id=run.id)
    assert created.status in ("PENDING", "PROCESSING")
    assert created.run_id == run.id
    assert created.distribution_analysis is None
    assert created.sample_classifications == []
    assert created.created_by_email.endswith("@datamill.local")

    done = wait_evaluation(client, created.id)
    assert done.status == "SUCCEEDED", done.error_message
    assert done.error_message is None
    assert done.completed_at is not None
    drawn = drawn_values(client, run)
    assert len(drawn) == SAMPLES

    tone, topic = done.distribution_analysis
    assert tone.property_name == "Tone"
    assert tone.requested_distributions == {"formal": 50.0, "casual": 50.0}
    formal = sum(d["Tone"] == "formal" for d in drawn.values())
    assert tone.expected_distributions == {
        "formal": 100 * formal / SAMPLES,
        "casual": 100 - 100 * formal / SAMPLES,
    }
    # The fake judge answers the first value of every property.
    assert tone.evaluated_distributions == {"formal": 100.0, "casual": 0.0}
    assert (tone.total_samples, tone.total_samples_analyzed) == (SAMPLES, SAMPLES)
    assert topic.requested_distributions == pytest.approx(
        {"billing": 46.67, "shipping": 26.67, "returns": 26.67}, abs=0.01
    )

    by_name = {c.sample_identifier: c for c in done.sample_classifications}
    assert set(by_name) == set(drawn)
    for name, item in by_name.items():
        assert item.evaluation_id == done.id
        assert item.id
        assert item.created_at is not None
        assert item.classifications == {"Tone": "formal", "Topic": "billing"}
        assert item.drawn_properties == drawn[name]
    matched = sum(d["Tone"] == "formal" for d in drawn.values()) + sum(
        d["Topic"] == "billing" for d in drawn.values()
    )
    assert done.conformance_score == round(100 * matched / (2 * SAMPLES), 2)
    areas = done.conformant_areas + done.non_conformant_areas
    assert {(a["property_name"], a["value"]) for a in areas} >= {("Tone", "formal"), ("Topic", "billing")}
    assert all("reason" in a for a in done.non_conformant_areas)
    assert created.evaluation_model is None
    assert done.evaluation_model == "fake/test-model"  # the server's model, as none was asked for


def test_an_explicit_model_is_used_and_the_run_lists_its_evaluations(client: dataframer.Dataframer):
    run = succeeded_run(client, samples=2)
    first = client.dataframer.evaluations.create(run_id=run.id)
    second = client.dataframer.evaluations.create(run_id=run.id, evaluation_model="openai/gpt-6-astra")
    assert wait_evaluation(client, first.id).status == "SUCCEEDED"
    done = wait_evaluation(client, second.id)
    assert done.status == "SUCCEEDED"
    assert done.evaluation_model == "openai/gpt-6-astra"

    listed = client.dataframer.runs.evaluations.list(run.id)
    assert isinstance(listed, list)
    assert [e.id for e in listed] == [second.id, first.id]
    assert {e.status for e in listed} == {"SUCCEEDED"}
    assert all(e.run_id == run.id and e.completed_at is not None for e in listed)
    assert listed[0].created_by_email == first.created_by_email


def test_a_run_that_did_not_succeed_cannot_be_evaluated(client: dataframer.Dataframer):
    spec = client.dataframer.specs.create(name="big", generation_objectives="Long essays")
    assert wait_spec(client, spec.id).status == "SUCCEEDED"
    run = client.dataframer.runs.create(spec_id=spec.id, number_of_samples=5000, skip_outline=True)
    with pytest.raises(dataframer.BadRequestError) as pending:
        client.dataframer.evaluations.create(run_id=run.id)
    client.dataframer.runs.cancel(run.id)
    assert wait_run(client, run.id).status == "CANCELED"
    with pytest.raises(dataframer.BadRequestError) as canceled:
        client.dataframer.evaluations.create(run_id=run.id)
    for refused in (pending.value, canceled.value):
        assert refused.body["code"] == "run_not_succeeded"
        assert refused.body["details"][0]["field"] == "run_id"
    assert "is CANCELED" in canceled.value.body["error"]
    assert client.dataframer.runs.evaluations.list(run.id) == []


def test_bad_bodies_are_refused_with_the_field(client: dataframer.Dataframer, df_endpoint: tuple[str, str]):
    run = succeeded_run(client, samples=1)
    with pytest.raises(dataframer.BadRequestError) as bad_model:
        client.dataframer.evaluations.create(
            run_id=run.id, evaluation_model="anthropic/claude-sonnet-5-thinking"
        )  # type: ignore[arg-type]
    assert bad_model.value.body["details"][0]["field"] == "evaluation_model"
    assert "is not one of" in bad_model.value.body["details"][0]["reason"]

    base_url, key = df_endpoint
    headers = {"Authorization": f"Bearer {key}"}
    for body, field in (({}, "run_id"), ({"run_id": run.id, "colour": "red"}, "colour"), ([], "body")):
        answer = httpx.post(f"{base_url}/api/dataframer/evaluations/", json=body, headers=headers, timeout=10)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        assert field in [d["field"] for d in answer.json()["details"]]
    answer = httpx.post(
        f"{base_url}/api/dataframer/evaluations/",
        content=b"{not json",
        headers=headers | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.evaluations.create(run_id="genrun_nope")
    assert client.dataframer.runs.evaluations.list(run.id) == []


def test_another_tenant_sees_nothing(client: dataframer.Dataframer, df_server: Any):
    run = succeeded_run(client, samples=1)
    evaluation = client.dataframer.evaluations.create(run_id=run.id)
    other = dataframer.Dataframer(base_url=df_server.base_url, api_key=df_server.new_key(), max_retries=0)
    try:
        with pytest.raises(dataframer.NotFoundError) as missing:
            other.dataframer.evaluations.retrieve(evaluation.id)
        assert missing.value.body["code"]
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.runs.evaluations.list(run.id)
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.evaluations.create(run_id=run.id)
    finally:
        other.close()
    done = wait_evaluation(client, evaluation.id)
    assert done.status == "SUCCEEDED"
    assert [c.sample_identifier for c in done.sample_classifications] == ["sample_1"]


def test_a_run_whose_files_are_lost_fails_with_a_message(client: dataframer.Dataframer, df_server: Any):
    run = succeeded_run(client, samples=2)
    lost = next(f for f in run.generated_files if f.path == "sample_2.txt")
    with df_server.context.store.session() as session:
        key = next(f.blob_key for f in files_of_run(session, run.id) if f.id == lost.id)
    df_server.context.blobs.delete(key)
    done = wait_evaluation(client, client.dataframer.evaluations.create(run_id=run.id).id)
    assert done.status == "FAILED"
    assert done.error_message == "run_id: the run's file sample_2.txt cannot be read"
    assert done.distribution_analysis is None
    assert done.sample_classifications == []
    assert done.completed_at is not None
    assert [e.status for e in client.dataframer.runs.evaluations.list(run.id)] == ["FAILED"]
