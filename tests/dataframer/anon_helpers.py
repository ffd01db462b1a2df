"""What the anonymization tests share: the test corpus as seed files, waiting for runs, fetching files.

The corpus comes from `bench.pii_corpus` (the benchmark's labelled generator): records of personal data
in five locales under column names, written as csv, jsonl, json and xlsx, and their free-text notes.
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import httpx
import openpyxl
from bench.pii_corpus import COLUMNS, structured_rows

import dataframer

DEADLINE_S = 120.0
ROWS = 10


def rows(seed: int = 0) -> list[dict[str, Any]]:
    return structured_rows(seed=seed, count=ROWS)


def pii_values(records: list[dict[str, Any]]) -> list[str]:
    """Every personal value of the records (the notes repeat names and phones)."""
    return [str(record[column]) for record in records for column in COLUMNS]


def as_csv(records: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue().encode()


def as_jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def as_json(records: list[dict[str, Any]]) -> bytes:
    return json.dumps(records, ensure_ascii=False).encode()


def as_xlsx(records: list[dict[str, Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(records[0]))
    for record in records:
        sheet.append(list(record.values()))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def xlsx_text(data: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return "\n".join(
        "\t".join("" if v is None else str(v) for v in row)
        for s in book.worksheets
        for row in s.iter_rows(values_only=True)
    )


def wait_anonymization(client: dataframer.Dataframer, run_id: str) -> Any:
    """The run once it ended."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        run = client.dataframer.anonymization_runs.retrieve(run_id)
        if run.status in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            return run
        time.sleep(0.1)


def anonymized_emails(client: dataframer.Dataframer, seed: int) -> str:
    """The id of a SUCCEEDED pii_m1 run masking the emails of a one-file csv dataset of `rows(seed)`."""
    dataset = client.dataframer.seed_datasets.create_with_files(
        name="people", dataset_type="SINGLE_FILE", files=[("people.csv", as_csv(rows(seed=seed)), "text/csv")]
    )
    created = client.dataframer.anonymization_runs.create(
        dataset_id=str(dataset.id), detection_method="pii_m1", pii_types=["email"]
    )
    run_id = str(created.id)
    assert wait_anonymization(client, run_id).status == "SUCCEEDED"
    return run_id


def fetch(client: dataframer.Dataframer, run_id: str, file_id: str) -> tuple[Any, bytes]:
    """A file's download answer and its bytes, fetched from the link without the API key."""
    link = client.dataframer.anonymization_runs.files.download(file_id, run_id=run_id)
    assert link.download_url is not None
    answer = httpx.get(link.download_url, timeout=30)
    assert answer.status_code == 200
    return link, answer.content


def fetched_texts(client: dataframer.Dataframer, run: Any) -> dict[str, str]:
    """Every anonymized file of a run, as text, by path."""
    texts = {}
    for file in run.anonymized_files:
        _, data = fetch(client, run.id, file.id)
        texts[file.path] = xlsx_text(data) if file.path.endswith(".xlsx") else data.decode()
    return texts
