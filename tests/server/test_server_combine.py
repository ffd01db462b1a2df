"""combine and combine/validate through the official SDK: the union of rows, replays, issues, tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import adaption
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from server_helpers import error_body, fields_of, qa_rows, wait_for, write_rows

from conftest import RunningServer
from datamill.dataio import read_all
from datamill.store import datasets as dataset_repo


def _upload(client: adaption.Adaption, path: Path, **options: Any) -> str:
    done = client.datasets.upload_file(path, **options)
    wait_for(client, done.dataset_id)
    return done.dataset_id


def _rows_of(server: RunningServer, dataset_id: str) -> list[dict[str, Any]]:
    """The rows of a dataset's stored file, read back from blob storage."""
    with server.context.store.session() as session:
        (file,) = dataset_repo.files_of(session, dataset_id)
    with server.context.blobs.local_path(file.blob_key) as path:
        return read_all(path, format=file.file_format).to_pylist()


def _codes(report: Any) -> list[tuple[str, str]]:
    return [(issue.code, issue.level) for issue in report.issues]


@pytest.fixture
def pair(client: adaption.Adaption, tmp_path: Path) -> tuple[str, str]:
    """Two compatible datasets: 3 rows of csv and 2 of jsonl."""
    first = _upload(client, write_rows(tmp_path / "a.csv", qa_rows(3)))
    rows = [{"question": "x0", "answer": "y0"}, {"question": "x1", "answer": "y1"}]
    return first, _upload(client, write_rows(tmp_path / "b.jsonl", rows))


def test_validate_a_compatible_pair(client: adaption.Adaption, pair: tuple[str, str]) -> None:
    report = client.datasets.combine.validate(dataset_ids=list(pair))
    assert report.compatible is True
    assert report.training_type == "instruction_dataset"
    assert report.total_estimated_rows == 5
    assert report.issues == []


def test_combine_makes_a_dataset_with_every_row_in_order(
    server: RunningServer, client: adaption.Adaption, pair: tuple[str, str]
) -> None:
    made = client.datasets.combine.create(dataset_ids=list(pair), name="merged", idempotency_key="k-1")
    status = wait_for(client, made.dataset_id)
    assert (status.status, status.row_count) == ("awaiting_input", 5)
    dataset = client.datasets.get(made.dataset_id)
    assert (dataset.kind, dataset.name) == ("combined", "merged")
    listed = [d.dataset_id for d in client.datasets.list(type="combined")]
    assert listed == [made.dataset_id]
    assert [r["question"] for r in _rows_of(server, made.dataset_id)] == ["q0", "q1", "q2", "x0", "x1"]


def test_a_replay_answers_the_same_dataset_and_writes_nothing(
    client: adaption.Adaption, pair: tuple[str, str]
) -> None:
    first = client.datasets.combine.create(dataset_ids=list(pair), name="merged", idempotency_key="same")
    again = client.datasets.combine.create(dataset_ids=list(pair), name="merged", idempotency_key="same")
    assert again.dataset_id == first.dataset_id
    assert len(list(client.datasets.list(type="combined"))) == 1
    with pytest.raises(adaption.UnprocessableEntityError) as caught:
        client.datasets.combine.create(dataset_ids=list(pair), name="other", idempotency_key="same")
    assert fields_of(caught.value) == ["Idempotency-Key"]


def test_without_a_key_each_call_combines_anew(client: adaption.Adaption, pair: tuple[str, str]) -> None:
    first = client.datasets.combine.create(dataset_ids=list(pair), name="m")
    second = client.datasets.combine.create(dataset_ids=list(pair), name="m")
    assert first.dataset_id != second.dataset_id


def test_raw_sources_with_one_mapping_give_a_trainable_dataset(
    client: adaption.Adaption, tmp_path: Path
) -> None:
    mapping = {"prompt": "question", "completion": "answer"}
    ids = [
        _upload(
            client,
            write_rows(tmp_path / f"r{i}.csv", qa_rows(2)),
            processing_mode="raw",
            column_mapping=mapping,
        )
        for i in range(2)
    ]
    made = client.datasets.combine.create(dataset_ids=ids, name="raw-merged")
    assert wait_for(client, made.dataset_id).status == "succeeded"
    combined = client.datasets.get(made.dataset_id)
    assert combined.configured_column_mapping is not None
    assert combined.configured_column_mapping.prompt == "question"


def test_numbers_and_text_are_reconciled_and_missing_columns_left_empty(
    server: RunningServer, client: adaption.Adaption, tmp_path: Path
) -> None:
    text = _upload(client, write_rows(tmp_path / "t.csv", [{"question": "q", "answer": "1"}]))
    typed = tmp_path / "n.parquet"
    pq.write_table(pa.table({"question": ["p"], "answer": [7], "topic": ["maths"]}), typed)
    numbers = _upload(client, typed)
    report = client.datasets.combine.validate(dataset_ids=[text, numbers])
    assert report.compatible is True
    assert _codes(report) == [("incompatible_column_types", "warning"), ("missing_columns", "warning")]
    column = report.issues[0].columns[0]
    assert (column.column, column.cast_to) == ("answer", "string")
    assert {t.dataset_id: t.type for t in column.types} == {text: "string", numbers: "int64"}
    made = client.datasets.combine.create(dataset_ids=[text, numbers], name="mixed")
    wait_for(client, made.dataset_id)
    assert _rows_of(server, made.dataset_id) == [
        {"question": "q", "answer": "1", "topic": None},
        {"question": "p", "answer": "7", "topic": "maths"},
    ]


def test_types_that_cannot_be_merged_refuse_the_merge(client: adaption.Adaption, tmp_path: Path) -> None:
    text = _upload(client, write_rows(tmp_path / "t.csv", qa_rows(1)))
    listed = tmp_path / "l.parquet"
    pq.write_table(pa.table({"question": ["p"], "answer": [["a", "b"]]}), listed)
    lists = _upload(client, listed)
    report = client.datasets.combine.validate(dataset_ids=[text, lists])
    assert report.compatible is False
    assert ("incompatible_column_types", "error") in _codes(report)
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.combine.create(dataset_ids=[text, lists], name="nope", idempotency_key="bad")
    assert "incompatible_column_types" in error_body(caught.value)["message"]
    assert list(client.datasets.list(type="combined")) == []


def test_validate_reports_each_problem_with_its_code(
    server: RunningServer, client: adaption.Adaption, pair: tuple[str, str]
) -> None:
    first, second = pair
    assert _codes(client.datasets.combine.validate(dataset_ids=[first])) == [("too_few_sources", "error")]
    repeated = client.datasets.combine.validate(dataset_ids=[first, first, second])
    assert _codes(repeated) == [("duplicate_source_ids", "error")]
    assert repeated.issues[0].dataset_ids == [first]
    pending = client.datasets.create(source={"name": "later.csv"}).dataset_id
    report = client.datasets.combine.validate(dataset_ids=[first, pending, "ds_missing"])
    assert report.compatible is False
    assert [(i.code, i.dataset_id) for i in report.issues] == [
        ("dataset_not_found", "ds_missing"),
        ("dataset_not_ready", pending),
    ]
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.combine.create(dataset_ids=[first, pending], name="x")
    assert fields_of(caught.value) == ["dataset_ids[1]"]


def test_another_tenants_dataset_is_not_found(
    server: RunningServer, client: adaption.Adaption, pair: tuple[str, str], tmp_path: Path
) -> None:
    other = server.client()
    theirs = _upload(other, write_rows(tmp_path / "theirs.csv", qa_rows(2)))
    with pytest.raises(adaption.NotFoundError):
        client.datasets.combine.create(dataset_ids=[pair[0], theirs], name="steal")
    report = client.datasets.combine.validate(dataset_ids=[pair[0], theirs])
    assert _codes(report) == [("dataset_not_found", "error")]
    assert list(client.datasets.list(type="combined")) == []
