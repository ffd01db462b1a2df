"""The whole user walkthrough through the official SDK, in order: upload seeds, write a spec and wait,
edit it, run with revisions and both gates, poll, download the files and the ZIP, evaluate the run, and
download the ZIP again with the evaluation in it.
"""

from __future__ import annotations

import io
import json
import time
import zipfile

import httpx
import yaml
from df_waits import DEADLINE_S, wait_spec, wait_zip
from test_specs import SEEDS

import dataframer
from datamill.core.spec import parse_spec_yaml

ORDER = ("PENDING", "PROCESSING", "SUCCEEDED")


def test_walkthrough(client: dataframer.Dataframer) -> None:
    files = [(path, body, "text/plain") for path, body in SEEDS.items()]
    dataset = client.dataframer.seed_datasets.create_with_files(
        name="support-seeds", dataset_type="MULTI_FILE", files=files, description="support messages"
    )
    assert dataset.file_count == 3

    spec = client.dataframer.specs.create(
        name="support-spec",
        dataset_id=dataset.id,
        generate_distributions=True,
        extrapolate_values=True,
        spec_generation_model_name="anthropic/claude-sonnet-5-5-thinking",
    )
    assert (spec.status, spec.content_yaml) == ("PROCESSING", None)
    spec = wait_spec(client, spec.id)
    assert spec.status == "SUCCEEDED", spec.error

    doc = yaml.safe_load(spec.content_yaml)
    doc["spec"]["data_property_variations"] = [
        {
            "property_name": "Sentiment",
            "property_values": ["positive", "negative"],
            # The fake judge of the blind conformance gate reads every sample as the first value.
            "base_distributions": {"positive": 100, "negative": 0},
        }
    ]
    client.dataframer.specs.update(spec.id, content_yaml=yaml.safe_dump(doc))
    versions = client.dataframer.specs.retrieve(spec.id, include_versions=True).versions
    assert [v.version for v in versions] == [1, 2]
    assert parse_spec_yaml(versions[-1].content_yaml).axes[0].name == "Sentiment"

    run = client.dataframer.runs.create(
        spec_id=spec.id,
        number_of_samples=4,
        revision_types=["coherence_flow", "consistency", "distinguishability", "conformance"],
        filtering_types=["structural", "conformance"],
        max_revision_cycles=2,
        revision_model="openai/gpt-6-astra-thinking",
        generation_model="anthropic/claude-sonnet-5-5-thinking",
        extra_body={"novelty_threshold": 1},  # the loopback models write copies
    )
    assert (run.status, run.spec_version) == ("PENDING", 2)
    seen = [run.status]
    deadline = time.monotonic() + DEADLINE_S
    while seen[-1] not in ("SUCCEEDED", "FAILED", "CANCELED") and time.monotonic() < deadline:
        time.sleep(0.05)
        polled = client.dataframer.runs.retrieve(run.id)
        if polled.status != seen[-1]:
            seen.append(polled.status)
    assert seen[-1] == "SUCCEEDED", client.dataframer.runs.retrieve(run.id).error
    assert [ORDER.index(s) for s in seen] == sorted(ORDER.index(s) for s in seen)
    done = client.dataframer.runs.retrieve(run.id)
    assert done.samples_completed == 4
    assert done.runtime_params.revision_model == "openai/gpt-6-astra-thinking"
    assert done.runtime_params.max_revision_cycles == 2
    assert done.total_cost > 0
    assert done.completed_at is not None

    downloaded = {}
    for file in done.generated_files:
        link = client.dataframer.runs.files.download(file.id, run_id=run.id)
        downloaded[file.path] = httpx.get(link.download_url).content
    assert sum(p.endswith(".txt") for p in downloaded) == 4
    statuses, ready = wait_zip(client, run.id)
    assert (statuses[0], statuses[-1]) == (202, 200)
    with zipfile.ZipFile(io.BytesIO(httpx.get(ready.download_url).content)) as archive:
        assert {p: archive.read(p) for p in downloaded} == downloaded
        assert json.loads(archive.read("top_level.metadata"))["evaluation"] is None

    evaluation = client.dataframer.evaluations.create(run_id=run.id)
    deadline = time.monotonic() + DEADLINE_S
    while evaluation.status not in ("SUCCEEDED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.05)
        evaluation = client.dataframer.evaluations.retrieve(evaluation.id)
    assert evaluation.status == "SUCCEEDED"
    assert [a.property_name for a in evaluation.distribution_analysis] == ["Sentiment"]
    assert len(evaluation.sample_classifications) == 4
    assert [e.id for e in client.dataframer.runs.evaluations.list(run.id)] == [evaluation.id]

    statuses, ready = wait_zip(client, run.id)  # built again: the evaluation came after the first ZIP
    assert statuses[0] == 202
    with zipfile.ZipFile(io.BytesIO(httpx.get(ready.download_url).content)) as archive:
        top = json.loads(archive.read("top_level.metadata"))
        first = json.loads(archive.read("sample_1.metadata"))
    assert top["evaluation"]["id"] == evaluation.id
    assert "Sentiment" in first["classifications"]
