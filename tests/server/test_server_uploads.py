"""Uploads through the official SDK against the real server: every flow, format and failure."""

from __future__ import annotations

import hashlib
from pathlib import Path

import adaption
import httpx
import pytest
from server_helpers import fields_of, qa_rows, wait_for, write_csv, write_rows

from conftest import RunningServer


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".parquet"])
def test_upload_file_reaches_awaiting_input_with_row_count(
    client: adaption.Adaption, tmp_path: Path, suffix: str
) -> None:
    path = write_rows(tmp_path / f"qa{suffix}", qa_rows(7))
    done = client.datasets.upload_file(path)
    assert done.status == "pending"
    status = wait_for(client, done.dataset_id)
    assert (status.status, status.row_count, status.error_data) == ("awaiting_input", 7, None)
    dataset = client.datasets.get(done.dataset_id)
    assert dataset.name == "qa"
    assert dataset.kind == "uploaded"
    assert dataset.row_count == 7
    assert dataset.configured_column_mapping is None
    assert dataset.progress is None


def test_raw_mode_with_a_mapping_succeeds_and_configures_it(
    client: adaption.Adaption, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "pairs.csv", 4)
    mapping = {"prompt": "question", "completion": "answer"}
    done = client.datasets.upload_file(path, name="my-set", processing_mode="raw", column_mapping=mapping)
    status = wait_for(client, done.dataset_id)
    assert (status.status, status.row_count) == ("succeeded", 4)
    dataset = client.datasets.get(done.dataset_id)
    assert dataset.name == "my-set"
    assert dataset.configured_column_mapping is not None
    assert dataset.configured_column_mapping.prompt == "question"
    assert dataset.configured_column_mapping.completion == "answer"


def test_raw_mode_naming_a_missing_column_fails_with_the_column(
    client: adaption.Adaption, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "pairs.csv", 2)
    mapping = {"prompt": "question", "completion": "nope"}
    done = client.datasets.upload_file(path, processing_mode="raw", column_mapping=mapping)
    status = wait_for(client, done.dataset_id)
    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0102"
    assert status.error_data.level == "error"
    assert "'nope'" in (status.error_data.message or "")
    assert "question, answer" in (status.error_data.message or "")


def test_a_malformed_file_fails_with_the_reader_message(client: adaption.Adaption, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[{"question": "q1", "answer": ', encoding="utf-8")
    done = client.datasets.upload_file(path)
    status = wait_for(client, done.dataset_id)
    assert status.status == "failed"
    assert status.error_data is not None
    message = status.error_data.message or ""
    assert status.error_data.code == "E0100"
    assert message.startswith("cannot read broken.json")
    assert "blobs" not in message  # the server's storage path is not shown


def test_image_columns_are_detected(client: adaption.Adaption, tmp_path: Path) -> None:
    rows = [
        {"prompt": f"p{i}", "photo": f"https://img.example/{i}.png", "page": f"https://x.example/{i}"}
        for i in range(5)
    ]
    done = client.datasets.upload_file(write_rows(tmp_path / "images.jsonl", rows))
    wait_for(client, done.dataset_id)
    assert client.datasets.get(done.dataset_id).image_column_formats == {"photo": "url"}


def _create_and_put(client: adaption.Adaption, data: bytes) -> str:
    created = client.datasets.create(source={"name": "manual.csv"})
    assert created.upload_instructions is not None
    assert created.upload_instructions.method == "PUT"
    assert created.upload_instructions.s3_key.endswith("manual.csv")
    httpx.put(created.upload_instructions.url, content=data).raise_for_status()
    return created.dataset_id


def test_a_sha256_mismatch_is_400_and_leaves_the_dataset_pending(client: adaption.Adaption) -> None:
    data = b"question,answer\nq,a\n"
    dataset_id = _create_and_put(client, data)
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.upload.complete_by_id(dataset_id, file_size_bytes=len(data), sha256="0" * 64)
    assert fields_of(caught.value) == ["sha256"]
    assert client.datasets.get_status(dataset_id).status == "pending"
    right = hashlib.sha256(data).hexdigest()
    assert client.datasets.upload.complete_by_id(
        dataset_id, file_size_bytes=len(data), sha256=right
    ).dataset_id
    assert wait_for(client, dataset_id).status == "awaiting_input"


def test_a_size_mismatch_is_400_naming_file_size_bytes(client: adaption.Adaption) -> None:
    data = b"question,answer\nq,a\n"
    dataset_id = _create_and_put(client, data)
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.upload.complete_by_id(dataset_id, file_size_bytes=len(data) + 1)
    assert fields_of(caught.value) == ["file_size_bytes"]
    assert "received" in str(caught.value)
    with pytest.raises(adaption.BadRequestError):
        client.datasets.upload.complete_by_id(dataset_id, file_size_bytes=1.5)
    assert client.datasets.get_status(dataset_id).status == "pending"


def test_completing_before_the_bytes_arrive_is_400(client: adaption.Adaption) -> None:
    created = client.datasets.create(source={"name": "later.csv"})
    with pytest.raises(adaption.BadRequestError):
        client.datasets.upload.complete_by_id(created.dataset_id, file_size_bytes=10)


def test_initiate_then_complete_creates_a_dataset(client: adaption.Adaption) -> None:
    data = b"question,answer\nq1,a1\nq2,a2\n"
    started = client.datasets.upload.initiate(name="two-step", file_format="csv")
    s3_key = started.s3_key  # type: ignore[attr-defined]  # an extra field, as the contract asks
    httpx.put(started.upload_url, content=data).raise_for_status()
    done = client.datasets.upload.complete(
        s3_key=s3_key, name="two-step", file_format="csv", file_size_bytes=len(data)
    )
    status = wait_for(client, done.dataset_id)
    assert (status.status, status.row_count) == ("awaiting_input", 2)
    again = client.datasets.upload.complete(
        s3_key=s3_key, name="two-step", file_format="csv", file_size_bytes=len(data)
    )
    assert again.dataset_id == done.dataset_id
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.upload.complete(s3_key="uploads/nope", name="x", file_format="csv", file_size_bytes=1)
    assert fields_of(caught.value) == ["s3_key"]


def test_batch_upload_of_tabular_files(client: adaption.Adaption) -> None:
    parts = [b"question,answer\nq1,a1\n", b"question,answer\nq2,a2\nq3,a3\n"]
    files = [
        {"file_name": f"part{i}.csv", "file_format": "csv", "file_size_bytes": len(p)}
        for i, p in enumerate(parts)
    ]
    started = client.datasets.upload.initiate_batch(name="batch", files=files)
    assert [u.file_name for u in started.uploads] == ["part0.csv", "part1.csv"]
    for upload, data in zip(started.uploads, parts, strict=True):
        httpx.put(upload.upload_url, content=data).raise_for_status()
    done = client.datasets.upload.complete_batch(
        dataset_id=started.dataset_id,
        files=[{**f, "s3_key": u.s3_key} for f, u in zip(files, started.uploads, strict=True)],
    )
    assert done.dataset_id == started.dataset_id
    status = wait_for(client, done.dataset_id)
    assert (status.status, status.row_count) == ("awaiting_input", 3)


def test_batch_files_with_different_columns_fail(client: adaption.Adaption) -> None:
    parts = [b"question,answer\nq1,a1\n", b"prompt,reply\np,r\n"]
    files = [
        {"file_name": f"p{i}.csv", "file_format": "csv", "file_size_bytes": len(p)}
        for i, p in enumerate(parts)
    ]
    started = client.datasets.upload.initiate_batch(name="mixed-columns", files=files)
    for upload, data in zip(started.uploads, parts, strict=True):
        httpx.put(upload.upload_url, content=data).raise_for_status()
    client.datasets.upload.complete_batch(
        dataset_id=started.dataset_id,
        files=[{**f, "s3_key": u.s3_key} for f, u in zip(files, started.uploads, strict=True)],
    )
    status = wait_for(client, started.dataset_id)
    assert status.status == "failed"
    assert status.error_data is not None
    assert status.error_data.code == "E0103"


def test_batch_rules_mixed_documents_and_bad_keys(client: adaption.Adaption) -> None:
    csv = {"file_name": "a.csv", "file_format": "csv", "file_size_bytes": 10}
    pdf = {"file_name": "b.pdf", "file_format": "pdf", "file_size_bytes": 10}
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.upload.initiate_batch(name="mixed", files=[csv, pdf])
    assert "all tabular" in str(caught.value)
    documents = client.datasets.upload.initiate_batch(name="docs", files=[pdf])  # documents are read too
    assert len(documents.uploads) == 1
    started = client.datasets.upload.initiate_batch(name="ok", files=[csv])
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.upload.complete_batch(
            dataset_id=started.dataset_id, files=[{**csv, "s3_key": "uploads/other"}]
        )
    assert fields_of(caught.value) == ["files[0].s3_key"]


def test_unsupported_url_sources_are_refused_clearly(client: adaption.Adaption) -> None:
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.create(source={"url": "https://www.kaggle.com/datasets/x/y", "files": ["train.csv"]})
    assert fields_of(caught.value) == ["source.url"]
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "Kaggle are not supported" in str(caught.value)
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.create(source={"url": "https://huggingface.co/datasets/x/y"})
    assert fields_of(caught.value) == ["source.files"]
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.create(source={"url": "ftp://files.example/data.csv"})
    assert fields_of(caught.value) == ["source.url"]


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"name": "data.csv", "processing_mode": "raw"}, "source.column_mapping"),
        (
            {"name": "data.csv", "processing_mode": "raw", "column_mapping": {"completion": "a"}},
            "source.column_mapping.prompt",
        ),
        ({"name": "data"}, "source.file_format"),
        ({"name": "data", "file_format": "rtf"}, "source.file_format"),
        ({"name": "data.csv", "processing_mode": "fast"}, "source.processing_mode"),
        ({"file_format": "csv"}, "source.name"),
    ],
)
def test_bad_sources_are_400_naming_the_field(
    client: adaption.Adaption, source: dict[str, object], field: str
) -> None:
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.create(source=source)  # type: ignore[arg-type]
    assert field in fields_of(caught.value)


def test_an_uploaded_dataset_of_another_tenant_cannot_be_completed(server: RunningServer) -> None:
    owner, other = server.client(), server.client()
    created = owner.datasets.create(source={"name": "mine.csv"})
    with pytest.raises(adaption.NotFoundError):
        other.datasets.upload.complete_by_id(created.dataset_id, file_size_bytes=1)
