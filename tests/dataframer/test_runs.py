"""Generation runs through the official SDK: gates on a scripted model, downloads, ZIP, cancel, secrets."""

from __future__ import annotations

import base64
import io
import json
import secrets
import time
import zipfile
from collections.abc import Iterator

import httpx
import pytest
from df_models import FAIL_EVERY, gate_reply, loopback_models, plain_reply, scripted_routes
from df_waits import wait_run, wait_spec, wait_zip
from sqlalchemy import MetaData, select
from test_specs import seedless_spec

import dataframer
from conftest import RunningServer, running_server
from datamill.llm.fake_server import FakeOpenAIServer, FakeResponse
from datamill.server.context import ServerContext
from datamill.services.settings.runs import RunSettings
from datamill.services.settings.server import ServerSettings

GATE_MODEL = "openai/gpt-6-astra-thinking"
SLOW_MODEL = "openai/gpt-6-luna"
BROKEN_SPEC_MODEL = "openai/gpt-6.1-sol-thinking"


def refuse(body: dict[str, object]) -> FakeResponse:
    return FakeResponse(401, {"error": {"message": "invalid api key"}})


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, FakeOpenAIServer]]:
    """A server whose GATE_MODEL fails some drafts, SLOW_MODEL is slow and BROKEN_SPEC_MODEL answers 401."""
    gate = FakeOpenAIServer(reply=gate_reply)
    slow = FakeOpenAIServer(reply=plain_reply, latency_s=0.2)
    broken = FakeOpenAIServer(reply=refuse)
    with loopback_models(gate, slow, broken):
        data_dir = tmp_path_factory.mktemp("dataframer-scripted")
        loopback = {GATE_MODEL: gate.base_url, SLOW_MODEL: slow.base_url, BROKEN_SPEC_MODEL: broken.base_url}
        routes = scripted_routes(data_dir / "routes.yaml", loopback)
        runs = RunSettings(routes_path=routes, poll_s=0.1)
        settings = ServerSettings.for_data_dir(data_dir)
        with running_server(settings, context=ServerContext.build(settings, runs=runs)) as server:
            yield server, slow


@pytest.fixture
def scripted_client(scripted: tuple[RunningServer, FakeOpenAIServer]) -> Iterator[dataframer.Dataframer]:
    server, _ = scripted
    with dataframer.Dataframer(base_url=server.base_url, api_key=server.new_key(), max_retries=0) as made:
        yield made


def test_gated_run_delivers_exactly_n_and_reports_candidates(scripted_client: dataframer.Dataframer) -> None:
    client = scripted_client
    spec_id = seedless_spec(client)
    run = client.dataframer.runs.create(
        spec_id=spec_id,
        number_of_samples=12,
        generation_model=GATE_MODEL,
        revision_model=GATE_MODEL,
        revision_types=["coherence_flow", "conformance"],
        filtering_types=["structural", "conformance"],
        max_revision_cycles=1,
        skip_outline=True,
        # The scripted model writes the same sample for the same properties: no novelty gate.
        extra_body={"novelty_threshold": 1},
    )
    assert run.status == "PENDING"
    assert run.spec_version == 1
    done = wait_run(client, run.id)
    assert done.status == "SUCCEEDED", done.error
    samples = [f for f in done.generated_files if f.path.startswith("sample_") and f.path.endswith(".txt")]
    assert len(samples) == 12
    assert done.samples_completed == 12
    assert done.samples_failed > 0  # the judge rejected every draft whose seed is a multiple of 3
    assert done.summary["candidates"] == 12 + done.samples_failed
    assert done.summary["rejected_by_gate"]["conformance"] == done.samples_failed
    assert done.runtime_params.revision_types == ["coherence_flow", "conformance"]
    assert done.runtime_params.max_revision_cycles == 1
    assert done.total_cost > 0
    for sample in samples:
        text = httpx.get(client.dataframer.runs.files.download(sample.id, run_id=run.id).download_url).text
        assert int(text.rsplit("draft-seed-", 1)[1]) % FAIL_EVERY != 0


def test_failed_analysis_fails_the_spec_and_refuses_edits_and_runs(
    scripted_client: dataframer.Dataframer,
) -> None:
    client = scripted_client
    created = client.dataframer.specs.create(
        name="doomed", generation_objectives="Emails", spec_generation_model_name=BROKEN_SPEC_MODEL
    )
    spec = wait_spec(client, created.id)
    assert spec.status == "FAILED"
    assert "cannot be used" in spec.error
    assert spec.content_yaml is None
    assert client.dataframer.specs.retrieve(spec.id, include_versions=True).versions == []
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.specs.update(spec.id, content_yaml="spec:\n  description: x\n")
    assert caught.value.body["code"] == "spec_not_ready"
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.runs.create(spec_id=spec.id, number_of_samples=1)
    assert caught.value.body["code"] == "spec_not_ready"


def test_files_and_zip_download(client: dataframer.Dataframer) -> None:
    spec_id = seedless_spec(client)
    run = client.dataframer.runs.create(
        spec_id=spec_id,
        number_of_samples=3,
        skip_outline=True,
        extra_body={"novelty_threshold": 1},  # the fake's copies
    )
    done = wait_run(client, run.id)
    assert done.status == "SUCCEEDED"
    paths = [f.path for f in done.generated_files]
    assert paths == [
        "sample_1.txt",
        "sample_1.metadata.json",
        "sample_2.txt",
        "sample_2.metadata.json",
        "sample_3.txt",
        "sample_3.metadata.json",
        "run_summary.json",
    ]
    contents = {}
    for file in done.generated_files:
        link = client.dataframer.runs.files.download(file.id, run_id=run.id)
        assert link.filename == file.path
        assert link.content_type == file.file_type
        body = httpx.get(link.download_url)
        assert body.status_code == 200
        assert len(body.content) == file.size_bytes
        contents[file.path] = body.content
    assert json.loads(contents["run_summary.json"])["delivered"] == 3
    statuses, ready = wait_zip(client, run.id)
    assert statuses[0] == 202
    assert statuses[-1] == 200
    fetched = httpx.get(ready.download_url)
    assert fetched.headers["content-type"] == "application/zip"
    assert len(fetched.content) == ready.size_bytes
    with zipfile.ZipFile(io.BytesIO(fetched.content)) as archive:
        names = archive.namelist()
        for path, body in contents.items():
            assert archive.read(path) == body
        meta = json.loads(archive.read("sample_2.metadata"))
        top = json.loads(archive.read("top_level.metadata"))
    assert {"sample_1.metadata", "sample_2.metadata", "sample_3.metadata", "top_level.metadata"} <= set(names)
    assert meta["properties"] == json.loads(contents["sample_2.metadata.json"])["properties"]
    assert top["run_summary"]["delivered"] == 3
    again = client.dataframer.runs.files.with_raw_response.download_all(run.id)
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"number_of_samples": 0}, "number_of_samples"),
        ({"number_of_samples": 20001}, "number_of_samples"),
        ({"spec_version": 0}, "spec_version"),
        ({"spec_version": 99}, "spec_version"),
        ({"spec_version": 2**63}, "spec_version"),  # more than any database integer holds
        ({"spec_version": 1e308}, "spec_version"),
        ({"seed": 2**64}, "seed"),
        ({"max_revision_cycles": 6}, "max_revision_cycles"),
        (
            {"generation_model": "openai/gpt-6-luna", "generation_thinking_budget": 2048},
            "generation_thinking_budget",
        ),
        (
            {"generation_model": "openai/gpt-6-luna-thinking", "generation_thinking_budget": 100},
            "generation_thinking_budget",
        ),
        ({"generation_model": "bogus/model"}, "generation_model"),
        ({"revision_model": "fake/test-model"}, "revision_model"),
        ({"revision_types": ["nope"]}, "revision_types[0]"),
        ({"generation_model": "databricks/system.ai.gpt-6-astra"}, "databricks_client_secret"),
    ],
)
def test_out_of_range_fields_are_400_naming_the_field(
    client: dataframer.Dataframer, fields: dict[str, object], field: str
) -> None:
    spec_id = seedless_spec(client)
    body = {"number_of_samples": 2} | fields
    number = body.pop("number_of_samples")
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.runs.create(spec_id=spec_id, number_of_samples=number, extra_body=body)  # type: ignore[arg-type]
    assert field in [d["field"] for d in caught.value.body["details"]]
    assert client.dataframer.runs.list() == []


def test_unknown_spec_is_404_and_list_is_newest_first(client: dataframer.Dataframer) -> None:
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.runs.create(spec_id="spec_nope", number_of_samples=1)
    spec_id = seedless_spec(client)
    first = client.dataframer.runs.create(spec_id=spec_id, number_of_samples=1, skip_outline=True)
    second = client.dataframer.runs.create(spec_id=spec_id, number_of_samples=1, skip_outline=True)
    listed = client.dataframer.runs.list()
    assert [r.id for r in listed] == [second.id, first.id]
    assert getattr(listed[0], "generated_files", None) is None


def test_cancel_stops_a_running_run(
    scripted: tuple[RunningServer, FakeOpenAIServer], scripted_client: dataframer.Dataframer
) -> None:
    _, slow = scripted
    client = scripted_client
    spec_id = seedless_spec(client)
    run = client.dataframer.runs.create(
        spec_id=spec_id, number_of_samples=400, generation_model=SLOW_MODEL, skip_outline=True
    )
    deadline = time.monotonic() + 30
    while client.dataframer.runs.retrieve(run.id).samples_completed < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    client.dataframer.runs.cancel(run.id)
    canceled = wait_run(client, run.id)
    assert canceled.status == "CANCELED"
    assert canceled.completed_at is not None
    time.sleep(1.0)  # calls in flight when the worker noticed may still land
    calls = slow.count
    time.sleep(1.5)
    assert slow.count == calls  # nothing more is generated
    assert client.dataframer.runs.retrieve(run.id).samples_completed < 400
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.runs.cancel(run.id)
    assert caught.value.body["code"] == "not_cancelable"


def test_databricks_secret_is_used_but_never_kept(
    df_server: RunningServer, client: dataframer.Dataframer
) -> None:
    secret = f"dbsecret-{secrets.token_hex(8)}"
    with loopback_models(FakeOpenAIServer(reply=plain_reply)) as (workspace,):
        spec_id = seedless_spec(client)
        run = client.dataframer.runs.create(
            spec_id=spec_id,
            number_of_samples=2,
            generation_model="databricks/system.ai.gpt-6-astra",
            skip_outline=True,
            extra_body={
                "databricks_client_id": "client-1",
                "databricks_client_secret": secret,
                "databricks_api_base": workspace.base_url,
            },
        )
        done = wait_run(client, run.id)
        assert done.status == "SUCCEEDED", done.error
        assert workspace.count == 2
        expected = "Basic " + base64.b64encode(f"client-1:{secret}".encode()).decode()
        assert [h.get("authorization") for h in workspace.headers] == [expected, expected]
    answers = [run, done, client.dataframer.runs.list()]
    assert all(secret not in repr(answer) for answer in answers)
    engine = df_server.context.store.engine
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                assert secret not in repr(tuple(row)), table.name


def test_another_tenants_run_is_404(df_server: RunningServer, client: dataframer.Dataframer) -> None:
    spec_id = seedless_spec(client)
    run = client.dataframer.runs.create(spec_id=spec_id, number_of_samples=1, skip_outline=True)
    done = wait_run(client, run.id)
    file_id = done.generated_files[0].id
    with dataframer.Dataframer(
        base_url=df_server.base_url, api_key=df_server.new_key(), max_retries=0
    ) as other:
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.runs.retrieve(run.id)
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.runs.files.download(file_id, run_id=run.id)
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.runs.files.download_all(run.id)
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.runs.cancel(run.id)
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.runs.delete(run.id)
        with pytest.raises(dataframer.NotFoundError):
            other.dataframer.runs.create(spec_id=spec_id, number_of_samples=1)
    client.dataframer.runs.delete(run.id)
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.runs.retrieve(run.id)
