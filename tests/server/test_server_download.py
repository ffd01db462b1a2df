"""Downloads through the official SDK: every format with its content checked, the partial rows of a failed
run, and the errors (unknown format, no run yet, another tenant)."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adaption
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from runs_helpers import (
    LOOP_MODEL,
    MAPPING,
    loopback_model,
    loopback_reply,
    qa_rows,
    question,
    run_settings,
    runs_server,
    upload,
    wait_done,
    write_routes,
)
from server_helpers import fields_of

from conftest import RunningServer
from datamill.llm.fake_server import FakeResponse

ROWS = 9  # with batches of 4: three shards, the last one short


@dataclass
class Adapted:
    client: adaption.Adaption
    dataset_id: str


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with runs_server(tmp_path_factory.mktemp("downloads")) as running:
        yield running


@pytest.fixture(scope="module")
def adapted(srv: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Adapted:
    client = srv.client()
    path = tmp_path_factory.mktemp("data") / "qa.jsonl"
    dataset_id = upload(client, path, qa_rows(ROWS))
    client.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert wait_done(client, dataset_id).status == "succeeded"
    return Adapted(client, dataset_id)


def _check_rows(rows: list[dict[str, Any]]) -> None:
    """Every input row once, in order, with its original and enhanced texts."""
    assert [int(r["id"]) for r in rows] == list(range(ROWS))
    for row in rows:
        number = int(row["id"])
        assert row["original_prompt"] == question(number)
        assert row["original_completion"] == f"Answer {number}."
        assert row["enhanced_prompt"].startswith("[fake] ")
        assert row["enhanced_completion"].startswith("[fake] ")
        assert not any(key.startswith("_") for key in row)


def test_csv_is_the_default_and_holds_every_row(adapted: Adapted) -> None:
    response = adapted.client.datasets.download(adapted.dataset_id)
    assert response.http_response.headers["content-type"].startswith("text/csv")
    # The dataset was uploaded as qa.jsonl: its csv download is qa.csv, not qa.jsonl.csv.
    assert 'filename="qa.csv"' in response.http_response.headers["content-disposition"]
    assert response.http_response.headers["x-datamill-run-status"] == "succeeded"
    rows = list(csv.DictReader(io.StringIO(response.text())))
    assert {"original_prompt", "enhanced_prompt", "original_completion", "enhanced_completion"} <= set(
        rows[0]
    )
    _check_rows(rows)


def test_json_is_one_array_of_rows(adapted: Adapted) -> None:
    rows = json.loads(adapted.client.datasets.download(adapted.dataset_id, file_format="json").text())
    assert isinstance(rows, list)
    _check_rows(rows)


def test_jsonl_is_one_row_per_line(adapted: Adapted, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    adapted.client.datasets.download(adapted.dataset_id, file_format="jsonl").write_to_file(target)
    lines = target.read_text(encoding="utf-8").splitlines()
    _check_rows([json.loads(line) for line in lines])


def test_parquet_is_a_tar_gz_of_shards(adapted: Adapted) -> None:
    response = adapted.client.datasets.download(adapted.dataset_id, file_format="parquet")
    assert response.http_response.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(response.read()), mode="r:gz") as archive:
        names = archive.getnames()
        tables = [pq.read_table(io.BytesIO(archive.extractfile(name).read())) for name in names]  # type: ignore[union-attr]
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert [t.num_rows for t in tables] == [4, 4, 1]
    _check_rows(pa.concat_tables(tables).to_pylist())


def test_an_unknown_format_is_400_naming_file_format(adapted: Adapted) -> None:
    with pytest.raises(adaption.BadRequestError) as caught:
        adapted.client.datasets.download(adapted.dataset_id, file_format="xlsx")  # type: ignore[arg-type]
    assert fields_of(caught.value) == ["fileFormat"]


def test_no_run_yet_is_422_and_another_tenant_404(
    srv: RunningServer, adapted: Adapted, tmp_path: Path
) -> None:
    fresh = upload(adapted.client, tmp_path / "fresh.csv", qa_rows(2))
    with pytest.raises(adaption.UnprocessableEntityError):
        adapted.client.datasets.download(fresh)
    with pytest.raises(adaption.NotFoundError):
        srv.client().datasets.download(adapted.dataset_id)


def test_a_failed_run_gives_the_rows_finished_before_the_failure(tmp_path: Path) -> None:
    answered = 0

    def reply(body: dict[str, Any]) -> str | FakeResponse:
        nonlocal answered
        answered += 1
        if answered > 8:  # from the ninth call on, the key is refused: every row would fail, so the run stops
            return FakeResponse(401, {"error": {"message": "invalid api key"}})
        return loopback_reply(body)

    with loopback_model(reply=reply) as model:
        routes = write_routes(tmp_path / "routes.yaml", model.base_url, max_concurrency=1)
        settings = run_settings(model=LOOP_MODEL, routes_path=routes, evaluate=False)
        with runs_server(tmp_path / "data", settings) as srv:
            client = srv.client()
            dataset_id = upload(client, tmp_path / "qa.csv", qa_rows(12))
            recipes = {"recipes": {"prompt_rephrase": False, "deduplication": False}}
            client.datasets.adapt(dataset_id, column_mapping=MAPPING, recipe_specification=recipes)
            status = wait_done(client, dataset_id)
            assert status.status == "failed"
            assert status.error_data is not None
            assert status.error_data.code == "E0300"
            assert "401" in (status.error_data.message or "") or "invalid" in (
                status.error_data.message or ""
            )
            lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
            ids = [int(json.loads(line)["id"]) for line in lines]
            evaluation = client.datasets.get_evaluation(dataset_id)
    assert 0 < len(ids) < 12
    assert ids == list(range(len(ids)))  # whole batches, in input order
    assert len(ids) % 4 == 0
    assert evaluation.status == "skipped"
