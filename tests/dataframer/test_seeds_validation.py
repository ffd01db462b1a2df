"""Every rule of a seed upload, through the SDK: a 400 naming the field, and nothing stored."""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

import dataframer
from conftest import RunningServer

MB = 1024 * 1024


def csv_bytes(rows: int) -> bytes:
    return ("question,answer\n" + "".join(f"q{i},a{i}\n" for i in range(rows))).encode()


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "bad-type",
        {"dataset_type": "MANY_FILES", "files": [b"a"]},
        "dataset_type",
        "Valid dataset_type is required",
    ),
    (
        "two-singles",
        {"dataset_type": "SINGLE_FILE", "files": [("a.csv", csv_bytes(2)), ("b.csv", csv_bytes(2))]},
        "files",
        "SINGLE_FILE dataset requires exactly 1 file, got 2.",
    ),
    (
        "one-multi",
        {"dataset_type": "MULTI_FILE", "files": [("a.txt", b"x")]},
        "files",
        "MULTI_FILE dataset requires at least 2 files.",
    ),
    (
        "mixed",
        {"dataset_type": "MULTI_FILE", "files": [("a.txt", b"x"), ("b.md", b"y")]},
        "files",
        "All files in a multi-file dataset must have the same extension. Found: .md, .txt",
    ),
    (
        "no-folders",
        {"dataset_type": "MULTI_FOLDER", "files": [("a.txt", b"x"), ("b.txt", b"y")]},
        "folder_names",
        "folder_names array is required for MULTI_FOLDER dataset",
    ),
    (
        "short-folders",
        {"dataset_type": "MULTI_FOLDER", "files": [("a.txt", b"x"), ("b.txt", b"y")], "folder_names": ["f"]},
        "folder_names",
        "Files and folder_names arrays must be same length. Got 2 files and 1 folder names.",
    ),
    (
        "one-folder",
        {
            "dataset_type": "MULTI_FOLDER",
            "files": [("a.txt", b"x"), ("b.txt", b"y")],
            "folder_names": ["f", "f"],
        },
        "folder_names",
        "MULTI_FOLDER dataset requires at least 2 different folders.",
    ),
    (
        "crowded-folder",
        {
            "dataset_type": "MULTI_FOLDER",
            "files": [(f"{i}.txt", b"x") for i in range(22)],
            "folder_names": ["big"] * 21 + ["small"],
        },
        "folder_names",
        "Folder 'big' has 21 files; a MULTI_FOLDER dataset allows at most 20 files per folder.",
    ),
    (
        "nested-folder",
        {
            "dataset_type": "MULTI_FOLDER",
            "files": [("a.txt", b"x"), ("b.txt", b"y")],
            "folder_names": ["a/b", "c"],
        },
        "folder_names[0]",
        "is not a folder name",
    ),
    (
        "txt-single",
        {"dataset_type": "SINGLE_FILE", "files": [("notes.txt", b"a\nb\nc\n")]},
        "files[0]",
        "File type .txt not allowed for SINGLE_FILE. Allowed: .csv, .json, .jsonl",
    ),
    (
        "exe-multi",
        {"dataset_type": "MULTI_FILE", "files": [("a.exe", b"x"), ("b.exe", b"y")]},
        "files[0]",
        "File type .exe not allowed for MULTI_FILE.",
    ),
    (
        "one-row",
        {"dataset_type": "SINGLE_FILE", "files": [("a.csv", csv_bytes(1))]},
        "files[0]",
        "SINGLE_FILE dataset requires at least 2 rows, found 1.",
    ),
    (
        "broken-json",
        {"dataset_type": "SINGLE_FILE", "files": [("a.json", b'[{"a": 1}, {"a": ')]},
        "files[0]",
        "File a.json cannot be read",
    ),
    (
        "ragged-csv",  # named by the user's file name and line, never by the server's path
        {"dataset_type": "SINGLE_FILE", "files": [("a.csv", b"q,a\n1,2\n3,4,5,6\n")]},
        "files[0]",
        "File a.csv cannot be read: line 3: expected 2 columns, found 4",
    ),
    (
        "empty-file",
        {"dataset_type": "MULTI_FILE", "files": [("a.txt", b"x"), ("b.txt", b"")]},
        "files[1]",
        "File b.txt is empty.",
    ),
    (
        "big-file",
        {"dataset_type": "MULTI_FILE", "files": [("a.txt", b"x"), ("b.txt", b"y" * (MB + 1))]},
        "files[1]",
        "File b.txt is 1048577 bytes; a MULTI_FILE dataset allows at most 1 MB (1048576 bytes) per file.",
    ),
    (
        "no-files",
        {"dataset_type": "MULTI_FILE", "files": []},
        "files",
        "MULTI_FILE dataset requires at least 2",
    ),
]


@pytest.mark.parametrize(("case", "args", "field", "reason"), CASES, ids=[c[0] for c in CASES])
def test_rule(
    df_server: RunningServer,
    df_endpoint: tuple[str, str],
    client: dataframer.Dataframer,
    case: str,
    args: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.seed_datasets.create_with_files(name=case, **args)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "validation_error"
    assert [d["field"] for d in body["details"]] == [field]
    assert reason in body["details"][0]["reason"]
    assert reason in body["error"]
    assert str(df_server.settings.data_dir) not in body["error"]
    assert client.dataframer.seed_datasets.list() == []
    tenant = df_server.context.tenants.authenticate(df_endpoint[1])
    assert tenant is not None
    stored = Path(df_server.settings.blob_url) / "seeds" / tenant.id
    assert [path for path in stored.rglob("*") if path.is_file()] == []


def test_name_is_required_and_unique(client: dataframer.Dataframer) -> None:
    seeds = client.dataframer.seed_datasets
    with pytest.raises(dataframer.BadRequestError) as caught:
        seeds.create_with_files(name="  ", dataset_type="MULTI_FILE", files=[b"a", b"b"])
    assert caught.value.body["details"] == [{"field": "name", "reason": "name is required"}]
    seeds.create_with_files(name="taken", dataset_type="MULTI_FILE", files=[b"a", b"b"])
    with pytest.raises(dataframer.BadRequestError) as caught:
        seeds.create_with_files(name="taken", dataset_type="MULTI_FILE", files=[b"c", b"d"])
    assert caught.value.body["code"] == "name_taken"
    assert caught.value.body["details"][0]["field"] == "name"
    with pytest.raises(dataframer.BadRequestError) as caught:
        seeds.create_from_zip(name="taken", zip_file=("z.zip", b"PK"))
    assert caught.value.body["code"] == "name_taken"
    assert len(seeds.list()) == 1


def test_more_than_50_mb_in_all(client: dataframer.Dataframer) -> None:
    files = [(f"{i}.txt", bytes([65 + i % 26]) * MB) for i in range(51)]
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.seed_datasets.create_with_files(name="huge", dataset_type="MULTI_FILE", files=files)
    assert "a dataset allows at most 50 MB" in caught.value.body["error"]


def test_more_than_1000_files(client: dataframer.Dataframer) -> None:
    files = [(f"{i}.txt", b"x") for i in range(1001)]
    with pytest.raises(dataframer.BadRequestError) as caught:
        client.dataframer.seed_datasets.create_with_files(name="many", dataset_type="MULTI_FILE", files=files)
    assert caught.value.body["error"] == "files: MULTI_FILE dataset allows at most 1000 files, got 1001."


def test_oversized_body_is_refused_before_it_is_read(df_endpoint: tuple[str, str]) -> None:
    base_url, key = df_endpoint
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    conn.putrequest("POST", "/api/dataframer/seed-datasets/create/")
    conn.putheader("Authorization", f"Bearer {key}")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(60 * MB))
    conn.endheaders()
    answer = conn.getresponse()
    assert answer.status == 413
    assert b'"code":"payload_too_large"' in answer.read()
    conn.close()


def test_malformed_requests(df_endpoint: tuple[str, str]) -> None:
    base_url, key = df_endpoint
    url = f"{base_url}/api/dataframer/seed-datasets/create/"
    headers = {"Authorization": f"Bearer {key}"}
    fields = {"name": "t", "dataset_type": "MULTI_FILE"}
    as_text = httpx.post(url, headers=headers, data=fields, files=[("files[]", (None, b"not a file"))])
    assert as_text.status_code == 400
    assert as_text.json()["details"][0]["field"] == "files[0]"
    as_json = httpx.post(url, headers=headers, json={"name": "j"})
    assert as_json.status_code == 400
    assert as_json.json()["details"][0]["field"] == "body"
    chunked = httpx.post(
        url, headers=headers | {"Content-Type": "multipart/form-data"}, content=iter([b"--"])
    )
    assert chunked.status_code == 411
    assert chunked.json()["code"] == "length_required"
    plain_files = httpx.post(
        url,
        headers=headers,
        data={"name": "plain", "dataset_type": "MULTI_FILE"},
        files=[("files", ("a.txt", b"x")), ("files", ("b.txt", b"y"))],
    )
    assert plain_files.status_code == 201
    assert plain_files.json()["file_count"] == 2
    no_key = httpx.post(url, files=[("files[]", ("a.txt", b"x"))])
    assert no_key.status_code == 401
