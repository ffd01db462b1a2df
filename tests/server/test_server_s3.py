"""Blobs on S3: the official SDK uploads, adapts, waits and downloads against a real server on loopback
whose blob storage is a moto S3 server (``DATAMILL_BLOB_URL=s3://bucket/prefix``, endpoint through the AWS
environment); the objects are really in the bucket, and the signed upload link still streams through
datamill."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from runs_helpers import MAPPING, qa_rows, runs_server, upload, upload_batch, wait_done
from s3_helpers import BUCKET, S3Server, moto_s3

from conftest import RunningServer
from datamill.services.settings.server import ServerSettings

LIMIT = 64 * 1024
PREFIX = "datamill"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        server.make_bucket()
        yield server


@pytest.fixture(scope="module")
def srv(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("s3-server")
    with runs_server(data_dir, blob_url=f"s3://{BUCKET}/{PREFIX}", max_upload_bytes=LIMIT) as running:
        yield running


def test_the_blob_url_is_read_from_the_environment() -> None:
    settings = ServerSettings.from_env({"DATAMILL_BLOB_URL": f"s3://{BUCKET}/{PREFIX}"}, data_dir=Path("/d"))
    assert settings.blob_url == f"s3://{BUCKET}/{PREFIX}"


def test_the_sdk_uploads_adapts_and_downloads_with_blobs_on_s3(
    srv: RunningServer, s3: S3Server, tmp_path: Path
) -> None:
    client = srv.client()
    rows = qa_rows(6)
    dataset_id = upload(client, tmp_path / "qa.jsonl", rows)
    sent = (tmp_path / "qa.jsonl").read_bytes()
    stored = {k: v for k, v in s3.bucket_objects(prefix=f"{PREFIX}/uploads/").items() if v == sent}
    assert len(stored) == 1  # the upload is an object in the bucket, byte for byte
    (key,) = stored
    assert key.endswith("/qa.jsonl")
    assert not (srv.settings.data_dir / "blobs").exists()  # nothing went to the local default

    client.datasets.adapt(dataset_id, column_mapping=MAPPING)
    assert wait_done(client, dataset_id).status == "succeeded"
    lines = client.datasets.download(dataset_id, file_format="jsonl").text().splitlines()
    got = [json.loads(line) for line in lines]
    assert len(got) == len(rows)
    assert sorted(row["original_prompt"] for row in got) == sorted(row["question"] for row in rows)
    assert all(row["enhanced_completion"].startswith("[fake] ") for row in got)

    copies = list((srv.settings.data_dir / "inputs" / "blobs").iterdir())
    assert [p.read_bytes() for p in copies if p.read_bytes() == sent]  # the run read a cached local copy


def test_the_signed_upload_link_streams_the_put_to_s3(srv: RunningServer, s3: S3Server) -> None:
    created = srv.client().datasets.create(source={"name": "links.csv"})
    assert created.upload_instructions is not None
    url = created.upload_instructions.url
    assert url.startswith(srv.base_url + "/_uploads/")  # the PUT still goes to datamill, not to the bucket
    body = b"question,answer\n" + b"".join(b"q%d,a%d\n" % (i, i) for i in range(2000))
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]

    answer = httpx.put(url, content=iter(chunks))  # chunked: no Content-Length, hashed while streaming

    assert answer.status_code == 200
    assert answer.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert answer.json()["size_bytes"] == len(body)
    assert body in s3.bucket_objects(prefix=f"{PREFIX}/uploads/").values()
    assert httpx.put(url, content=b"a,b\n").status_code == 403  # single use, as on local blobs


def test_an_upload_over_the_limit_leaves_nothing_in_the_bucket(srv: RunningServer, s3: S3Server) -> None:
    created = srv.client().datasets.create(source={"name": "big.csv"})
    assert created.upload_instructions is not None
    before = s3.bucket_objects(prefix=f"{PREFIX}/uploads/")
    chunks = [b"x" * 8192] * (LIMIT // 8192 + 2)

    answer = httpx.put(created.upload_instructions.url, content=iter(chunks))

    assert answer.status_code == 413
    assert s3.bucket_objects(prefix=f"{PREFIX}/uploads/") == before
    assert s3.open_multipart_uploads() == []


def test_a_batch_of_files_on_s3_runs_as_one_dataset(srv: RunningServer, s3: S3Server) -> None:
    client = srv.client()
    started = upload_batch(client)
    stored = s3.bucket_objects(prefix=f"{PREFIX}/uploads/")
    assert all(f"{PREFIX}/{u.s3_key}" in stored for u in started.uploads)  # the SDK's s3_key is the object's

    client.datasets.adapt(started.dataset_id, column_mapping=MAPPING)
    assert wait_done(client, started.dataset_id).status == "succeeded"
    text = client.datasets.download(started.dataset_id, file_format="jsonl").text()
    assert [json.loads(line)["original_prompt"] for line in text.splitlines()] == [
        "Why is the sky blue today?",
        "How do tides follow the moon?",
        "What makes bread rise?",
    ]
