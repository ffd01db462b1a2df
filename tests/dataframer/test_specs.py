"""Specs through the official SDK: the analysis job, versions and edits, validation, delete, tenants."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml
from df_waits import wait_run, wait_spec

import dataframer
from datamill.core.spec import parse_spec_yaml

SEEDS = {
    "a.txt": b"Hi, my order #1 arrived broken. Please refund. -- angry customer",
    "b.txt": b"Thanks for the quick delivery, the laptop works great!",
    "c.txt": b"Where is my parcel? It has been two weeks.",
}


def seed_dataset(client: dataframer.Dataframer, name: str = "support-seeds") -> str:
    files = [(path, body, "text/plain") for path, body in SEEDS.items()]
    dataset = client.dataframer.seed_datasets.create_with_files(
        name=name, dataset_type="MULTI_FILE", files=files, description="three support messages"
    )
    assert dataset.id
    return dataset.id


def seedless_spec(client: dataframer.Dataframer, name: str = "emails") -> str:
    spec = client.dataframer.specs.create(name=name, generation_objectives="Short support emails")
    done = wait_spec(client, spec.id)
    assert done.status == "SUCCEEDED", done.error
    return spec.id


def test_seeded_spec_is_analysed_into_valid_yaml(client: dataframer.Dataframer) -> None:
    dataset_id = seed_dataset(client)
    created = client.dataframer.specs.create(
        name="support-spec",
        dataset_id=dataset_id,
        description="Customer support",
        generate_distributions=True,
        extrapolate_values=True,
        spec_generation_model_name="anthropic/claude-sonnet-5-5-thinking",
    )
    assert created.status == "PROCESSING"
    assert created.content_yaml is None
    spec = wait_spec(client, created.id)
    assert spec.status == "SUCCEEDED", spec.error
    assert spec.error is None
    parsed = parse_spec_yaml(spec.content_yaml)
    assert parsed.axes
    assert parsed.metadata["dataset_id"] == dataset_id
    assert parsed.metadata["dataset_type"] == "MULTI_FILE"
    assert parsed.metadata["seed_samples"] == 3
    assert parsed.metadata["spec_generation_model_name"] == "anthropic/claude-sonnet-5-5-thinking"
    assert parsed.metadata["extrapolate_values"] is True
    assert spec.dataset_id == dataset_id
    assert spec.dataset_name == "support-seeds"
    assert spec.dataset_type == "MULTI_FILE"
    assert spec.runtime_params["spec_generation_model_name"] == "anthropic/claude-sonnet-5-5-thinking"
    assert "/" not in str(parsed.metadata.get("seed_paths", ""))  # no machine paths


def test_seedless_spec_reports_no_dataset(client: dataframer.Dataframer) -> None:
    spec_id = seedless_spec(client)
    spec = client.dataframer.specs.retrieve(spec_id)
    assert spec.dataset_id is None
    assert spec.dataset_name is None
    assert spec.dataset_type == "MULTI_FILE"
    assert parse_spec_yaml(spec.content_yaml).metadata["generation_objectives"] == "Short support emails"
    listed = client.dataframer.specs.list()
    assert [item.id for item in listed] == [spec_id]
    assert listed[0].status == "SUCCEEDED"
    assert spec.versions is None  # only with include_versions=true


def test_update_adds_a_version_and_keeps_the_server_metadata(client: dataframer.Dataframer) -> None:
    spec_id = seedless_spec(client)
    first = client.dataframer.specs.retrieve(spec_id).content_yaml
    edited = yaml.safe_load(first)
    edited["spec"]["description"] = "Edited: polite support emails"
    edited["metadata"] = {"dataset_id": "forged", "spec_generation_model_name": "me"}
    updated = client.dataframer.specs.update(spec_id, content_yaml=yaml.safe_dump(edited))
    assert updated.status == "SUCCEEDED"
    now = parse_spec_yaml(updated.content_yaml)
    assert now.description == "Edited: polite support emails"
    assert now.metadata == parse_spec_yaml(first).metadata  # the user's metadata is ignored
    versions = client.dataframer.specs.retrieve(spec_id, include_versions=True).versions
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].content_yaml == first
    assert versions[1].content_yaml == updated.content_yaml


def test_concurrent_edits_each_get_a_version(client: dataframer.Dataframer) -> None:
    spec_id = seedless_spec(client)
    first = yaml.safe_load(client.dataframer.specs.retrieve(spec_id).content_yaml)

    def edit(number: int) -> str:
        edited = first | {"spec": first["spec"] | {"description": f"Edit {number}"}}
        return str(client.dataframer.specs.update(spec_id, content_yaml=yaml.safe_dump(edited)).status)

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(edit, range(10)))
    assert statuses == ["SUCCEEDED"] * 10
    versions = client.dataframer.specs.retrieve(spec_id, include_versions=True).versions
    assert [v.version for v in versions] == list(range(1, 12))
    descriptions = {yaml.safe_load(v.content_yaml)["spec"]["description"] for v in versions[1:]}
    assert descriptions == {f"Edit {number}" for number in range(10)}


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("spec: [unclosed", "content_yaml"),
        ("specification:\n  description: x\n", "spec"),
        (
            "spec:\n  description: x\n  data_property_variations:\n"
            "    - property_name: Tone\n      property_values: [a, b]\n"
            "      base_distributions: {a: 80, b: 80}\n",
            "spec.data_property_variations[0].base_distributions",
        ),
    ],
)
def test_bad_yaml_is_refused_naming_its_path(client: dataframer.Dataframer, content: str, field: str) -> None:
    spec_id = seedless_spec(client)
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.specs.update(spec_id, content_yaml=content)
    assert caught.value.body["code"] == "validation_error"
    assert field in [d["field"] for d in caught.value.body["details"]]
    versions = client.dataframer.specs.retrieve(spec_id, include_versions=True).versions
    assert len(versions) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"generation_objectives": "x"}, "name"),
        ({"name": "n"}, "generation_objectives"),
        (
            {"name": "n", "generation_objectives": "x", "spec_generation_model_name": "bogus/m"},
            "spec_generation_model_name",
        ),
        (
            {
                "name": "n",
                "generation_objectives": "x",
                "generate_distributions": False,
                "generate_conditional_distributions": True,
            },
            "generate_conditional_distributions",
        ),
        ({"name": "n", "generation_objectives": "x", "colour": "red"}, "colour"),
    ],
)
def test_bad_create_bodies_name_the_field(
    df_endpoint: tuple[str, str], body: dict[str, object], field: str
) -> None:
    base_url, key = df_endpoint
    answer = httpx.post(
        f"{base_url}/api/dataframer/specs/", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 400
    assert field in [d["field"] for d in answer.json()["details"]]


def test_names_are_unique_and_unknown_datasets_are_404(client: dataframer.Dataframer) -> None:
    seedless_spec(client, "taken")
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.specs.create(name="taken", generation_objectives="again")
    assert caught.value.body["code"] == "name_taken"
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.specs.create(name="other", dataset_id="no-such-dataset")


def test_delete_with_runs_needs_force(client: dataframer.Dataframer) -> None:
    spec_id = seedless_spec(client)
    run = client.dataframer.runs.create(
        spec_id=spec_id,
        number_of_samples=2,
        skip_outline=True,
        extra_body={"novelty_threshold": 1},  # the fake's copies
    )
    done = wait_run(client, run.id)
    assert done.status == "SUCCEEDED"
    link = client.dataframer.runs.files.download(done.generated_files[0].id, run_id=run.id).download_url
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.specs.delete(spec_id)
    assert caught.value.body["code"] == "has_runs"
    client.dataframer.specs.delete(spec_id, force=True)
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.specs.retrieve(spec_id)
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.runs.retrieve(run.id)
    assert httpx.get(link).status_code == 404  # the files went with it
    assert client.dataframer.specs.list() == []


def test_another_tenants_spec_is_404(client: dataframer.Dataframer, df_server) -> None:
    spec_id = seedless_spec(client)
    with dataframer.Dataframer(
        base_url=df_server.base_url, api_key=df_server.new_key(), max_retries=0
    ) as other:
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.specs.retrieve(spec_id)
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.specs.update(spec_id, content_yaml="spec:\n  description: x\n")
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.specs.delete(spec_id, force=True)
        assert other.dataframer.specs.list() == []
    assert client.dataframer.specs.retrieve(spec_id).status == "SUCCEEDED"


def test_a_set_of_workbooks_is_analysed_as_their_rows(client: dataframer.Dataframer, tmp_path) -> None:
    import openpyxl

    files = []
    for name, region, sales in (("north.xlsx", "north", 20), ("south.xlsx", "south", 35)):
        book = openpyxl.Workbook()
        book.active.append(("region", "sales"))
        book.active.append((region, sales))
        book.save(tmp_path / name)
        files.append((name, (tmp_path / name).read_bytes(), "application/octet-stream"))
    dataset = client.dataframer.seed_datasets.create_with_files(
        name="workbooks", dataset_type="MULTI_FILE", files=files
    )
    created = client.dataframer.specs.create(name="sales-spec", dataset_id=dataset.id)
    spec = wait_spec(client, created.id)
    assert spec.status == "SUCCEEDED", spec.error
    parsed = parse_spec_yaml(spec.content_yaml)
    assert parsed.metadata["dataset_type"] == "MULTI_FILE"
    assert parsed.metadata["seed_samples"] == 2
