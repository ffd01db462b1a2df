"""Anonymization runs through the official SDK against the loopback server: ``pii_m1`` on every seed format.

The seed files are the test corpus of `anon_helpers` (records of personal data in five locales, with
free-text notes that repeat them). After a run at the default threshold no personal value of the corpus
is left in any anonymized file, the same entity reads the same placeholder throughout a file, and the
results, downloads, ZIP, list and soft delete answer in the contract's shapes.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import zipfile
from typing import Any

import httpx
import pytest
from anon_helpers import (
    as_csv,
    as_json,
    as_jsonl,
    as_xlsx,
    fetch,
    fetched_texts,
    pii_values,
    rows,
    wait_anonymization,
)
from bench.pii_corpus import COLUMNS

import dataframer

ALL_TYPES = sorted(set(COLUMNS.values()) | {"ssn", "passport", "ip_address"})


def _dataset(client: dataframer.Dataframer, name: str, files: list[tuple[str, bytes, str]]) -> Any:
    kind = "SINGLE_FILE" if len(files) == 1 else "MULTI_FILE"
    return client.dataframer.seed_datasets.create_with_files(name=name, dataset_type=kind, files=files)


def _run(client: dataframer.Dataframer, dataset_id: str, **options: Any) -> Any:
    options.setdefault("pii_types", ALL_TYPES)
    created = client.dataframer.anonymization_runs.create(
        dataset_id=dataset_id, detection_method=options.pop("detection_method", "pii_m1"), **options
    )
    assert created.status == "PENDING"
    return wait_anonymization(client, created.id)


@pytest.fixture(scope="module")
def csv_run(df_server: Any) -> Any:
    """One pii_m1 run over the corpus as a csv file, and its client."""
    client = dataframer.Dataframer(
        base_url=df_server.base_url, api_key=df_server.new_key("anon-csv"), max_retries=0
    )
    dataset = _dataset(client, "people", [("people.csv", as_csv(rows()), "text/csv")])
    run = _run(client, dataset.id)
    yield client, dataset, run
    client.close()


def test_a_pii_m1_run_succeeds_with_results_in_the_contract_shape(csv_run: Any) -> None:
    _, dataset, run = csv_run
    assert run.status == "SUCCEEDED", run.results
    assert (run.dataset_id, run.dataset_name, run.detection_method) == (dataset.id, "people", "pii_m1")
    assert run.llm_model_name is None
    assert run.pii_types == ALL_TYPES
    assert run.completed_at is not None
    assert run.duration_seconds is not None
    results = run.results
    assert results.error is None
    assert results.samples_processed == 10
    assert results.entity_summary["email"] == 10
    assert results.entity_summary["iban"] == 10
    assert sum(results.entity_summary.values()) == len(results.entities_found)
    first = results.entities_found[0]
    assert first.end > first.start >= 0
    assert first.label in ALL_TYPES
    assert 0.35 <= first.score <= 1
    (file,) = run.anonymized_files
    assert (file.path, file.content_type) == ("people.csv", "text/csv")
    assert file.size_in_bytes > 0


def test_no_personal_value_is_left_in_the_anonymized_csv(csv_run: Any) -> None:
    client, _, run = csv_run
    link, data = fetch(client, run.id, run.anonymized_files[0].id)
    assert (link.file_name, link.content_type) == ("people.csv", "text/csv")
    text = data.decode()
    leaks = [value for value in pii_values(rows()) if value in text]
    assert leaks == []
    assert text.splitlines()[0] == ",".join([*COLUMNS, "note", "plan"])  # the header is kept
    assert "premium" in text or "basic" in text or "family" in text  # the harmless column is kept


def test_the_same_entity_reads_the_same_placeholder_throughout_a_file(csv_run: Any) -> None:
    client, _, run = csv_run
    _, data = fetch(client, run.id, run.anonymized_files[0].id)
    records = list(csv.DictReader(io.StringIO(data.decode())))
    for record in records:
        assert re.fullmatch(r"<PERSON_\d+>", record["name"])
        assert re.fullmatch(r"<PHONE_NUMBER_\d+>", record["phone"])
        # the note repeats the row's name and phone: it reads their placeholders
        assert record["note"] == f"Call {record['name']} back at {record['phone']} about the order."
    assert len({r["name"] for r in records}) == len(records)  # ten people, ten placeholders


@pytest.mark.parametrize(
    ("name", "build", "content_type"),
    [
        ("people.jsonl", as_jsonl, "application/jsonl"),
        ("people.json", as_json, "application/json"),
        ("people.xlsx", as_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ],
)
def test_every_structured_seed_format_is_anonymized(
    client: dataframer.Dataframer, name: str, build: Any, content_type: str
) -> None:
    records = rows(seed=1)
    files = [(name, build(records), content_type), (f"more-{name}", build(rows(seed=2)), content_type)]
    dataset = _dataset(client, f"people-{name}", files)
    run = _run(client, dataset.id)
    assert run.status == "SUCCEEDED", run.results
    texts = fetched_texts(client, run)
    assert sorted(texts) == sorted([name, f"more-{name}"])
    assert [f.content_type for f in run.anonymized_files] == [content_type, content_type]
    leaks = [v for v in pii_values(records) + pii_values(rows(seed=2)) if any(v in t for t in texts.values())]
    assert leaks == []
    assert run.results.samples_processed == 20


def test_mask_config_replaces_and_numbers_entities(client: dataframer.Dataframer) -> None:
    records = rows(seed=3)
    dataset = _dataset(client, "masked", [("people.jsonl", as_jsonl(records), "application/jsonl")])
    run = _run(
        client,
        dataset.id,
        pii_types=["email", "person"],
        mask_config={"email": "[redacted email]", "person": "[name {n}]"},
    )
    assert run.status == "SUCCEEDED", run.results
    assert set(run.results.entity_summary) == {"email", "person"}
    assert run.mask_config == {"email": "[redacted email]", "person": "[name {n}]"}
    (text,) = fetched_texts(client, run).values()
    assert text.count("[redacted email]") == len(records)
    assert {f"[name {n}]" for n in range(1, 11)} <= set(re.findall(r"\[name \d+\]", text))
    assert records[0]["iban"] in text  # not asked: kept


def test_the_threshold_is_honoured(client: dataframer.Dataframer) -> None:
    records = rows(seed=4)
    dataset = _dataset(client, "threshold", [("people.csv", as_csv(records), "text/csv")])
    strict = _run(client, dataset.id, threshold=0.99)
    assert strict.status == "SUCCEEDED", strict.results
    assert all(e.score >= 0.99 for e in strict.results.entities_found)
    lenient = _run(client, dataset.id)
    assert len(strict.results.entities_found) < len(lenient.results.entities_found)


def test_a_text_dataset_is_anonymized_with_first_and_last_names(client: dataframer.Dataframer) -> None:
    texts = [
        "Dear Mr. Jonathan Whitaker, your parcel for 221B Baker Street, London NW1 6XE is on its way. "
        "Questions? Write to jonathan.whitaker@example.org.",
        "Jonathan Whitaker called from +44 20 7946 0958; Whitaker asked for a refund.",
    ]
    files = [(f"letter{i}.txt", t.encode(), "text/plain") for i, t in enumerate(texts)]
    dataset = _dataset(client, "letters", files)
    run = _run(
        client, dataset.id, pii_types=["first_name", "last_name", "email", "street_address", "phone_number"]
    )
    assert run.status == "SUCCEEDED", run.results
    out = fetched_texts(client, run)
    for value in ("Jonathan", "Whitaker", "Baker Street", "jonathan.whitaker@example.org", "7946 0958"):
        assert all(value not in t for t in out.values()), value
    assert out["letter1.txt"].startswith("<FIRST_NAME_1> <LAST_NAME_1> called from <PHONE_NUMBER_1>;")
    assert "<LAST_NAME_1> asked for a refund" in out["letter1.txt"]  # found once, masked everywhere


def test_the_zip_is_202_generating_then_200_ready(csv_run: Any) -> None:
    client, _, run = csv_run
    statuses, answer = [], None
    for _ in range(600):
        raw = client.dataframer.anonymization_runs.files.with_raw_response.download_all(run.id)
        statuses.append(raw.status_code)
        answer = raw.parse()
        if answer.download_url:
            break
        assert answer.status == "generating"
    assert statuses[0] == 202
    assert statuses[-1] == 200
    assert answer is not None
    assert answer.status == "ready"
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(answer.download_url, timeout=30).content))
    assert sorted(archive.namelist()) == ["anonymization_summary.json", "people.csv"]
    _, single = fetch(client, run.id, run.anonymized_files[0].id)
    assert archive.read("people.csv") == single


def test_list_is_a_bare_array_and_delete_is_soft(client: dataframer.Dataframer) -> None:
    dataset = _dataset(client, "to-delete", [("people.csv", as_csv(rows(seed=5)), "text/csv")])
    first = _run(client, dataset.id, pii_types=["email"])
    second = _run(client, dataset.id, pii_types=["iban"])
    listed = client.dataframer.anonymization_runs.list()
    assert [r.id for r in listed] == [second.id, first.id]  # newest first
    assert listed[0].pii_types == ["iban"]
    raw = client.dataframer.anonymization_runs.with_raw_response.list()
    assert isinstance(raw.http_response.json(), list)
    client.dataframer.anonymization_runs.delete(first.id)
    assert [r.id for r in client.dataframer.anonymization_runs.list()] == [second.id]
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.anonymization_runs.retrieve(first.id)
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.anonymization_runs.files.download(first.anonymized_files[0].id, run_id=first.id)
    with pytest.raises(dataframer.NotFoundError):
        client.dataframer.anonymization_runs.delete(first.id)


def _refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(dataframer.APIStatusError) as caught:
        call()
    assert 400 <= caught.value.status_code < 500
    body = caught.value.body
    assert isinstance(body, dict)
    return {"status": caught.value.status_code, **body}


def test_bad_input_is_a_4xx_naming_the_field(client: dataframer.Dataframer) -> None:
    dataset = _dataset(client, "bad-input", [("people.csv", as_csv(rows(seed=6)), "text/csv")])
    create = client.dataframer.anonymization_runs.create
    cases = {
        "llm_model_name": lambda: create(dataset_id=dataset.id, detection_method="llm", pii_types=["email"]),
        "pii_types[0]": lambda: create(dataset_id=dataset.id, detection_method="pii_m1", pii_types=["EMAIL"]),
        "pii_types[1]": lambda: create(
            dataset_id=dataset.id, detection_method="pii_m1", pii_types=["email", "shoe_size"]
        ),
        "threshold": lambda: create(
            dataset_id=dataset.id, detection_method="pii_m1", pii_types=["email"], threshold=1.5
        ),
        "mask_config.iban": lambda: create(
            dataset_id=dataset.id, detection_method="pii_m1", pii_types=["email"], mask_config={"iban": "x"}
        ),
        "detection_method": lambda: create(
            dataset_id=dataset.id, detection_method="regex", pii_types=["email"]
        ),  # type: ignore[arg-type]
    }
    for field, call in cases.items():
        body = _refusal(call)
        assert body["status"] == 400, field
        assert body["code"] == "validation_error", body
        assert field in [d["field"] for d in body["details"]], body
    unknown_model = _refusal(
        lambda: create(
            dataset_id=dataset.id, detection_method="all", pii_types=["email"], llm_model_name="no/such"
        )
    )
    assert [d["field"] for d in unknown_model["details"]] == ["llm_model_name"]
    missing = _refusal(lambda: create(dataset_id="seed_nope", detection_method="pii_m1", pii_types=["email"]))
    assert (missing["status"], missing["code"]) == (404, "not_found")
    assert client.dataframer.anonymization_runs.list() == []  # nothing was created


def anonymization_walkthrough(client: dataframer.Dataframer) -> None:
    """Every anonymization call of the SDK once: create, retrieve, list, one file, the ZIP, delete."""
    records = rows(seed=7)
    original = as_csv(records)
    dataset = _dataset(client, "walkthrough", [("people.csv", original, "text/csv")])
    run = _run(client, dataset.id)
    assert run.status == "SUCCEEDED", run.results
    assert [r.id for r in client.dataframer.anonymization_runs.list()] == [run.id]
    link, data = fetch(client, run.id, run.anonymized_files[0].id)
    assert link.file_name == "people.csv"
    assert [v for v in pii_values(records) if v in data.decode()] == []
    # offsets point into the original text of each cell
    cells = list(csv.DictReader(io.StringIO(original.decode())))
    for entity in run.results.entities_found:
        extra = entity.model_extra or {}
        value = cells[extra["sample"]][extra["field"]]
        assert 0 <= entity.start < entity.end <= len(value)
        if entity.label == "email":
            assert "@" in value[entity.start : entity.end]
    answer = client.dataframer.anonymization_runs.files.download_all(run.id)
    for _ in range(600):
        if answer.download_url:
            break
        answer = client.dataframer.anonymization_runs.files.download_all(run.id)
    assert answer.status == "ready"
    assert httpx.get(str(answer.download_url), timeout=30).status_code == 200
    client.dataframer.anonymization_runs.delete(run.id)
    assert client.dataframer.anonymization_runs.list() == []


def test_the_anonymization_walkthrough(client: dataframer.Dataframer) -> None:
    anonymization_walkthrough(client)


def test_a_run_reserves_credits_and_is_charged_what_it_processed(df_server: Any) -> None:
    issued = df_server.context.tenants.create_key(f"anon-credits-{secrets.token_hex(3)}", credits=2.0)
    tenant_id = issued.tenant.id

    def balance() -> float:
        return float(next(t.credits for t in df_server.context.tenants.list_tenants() if t.id == tenant_id))

    with dataframer.Dataframer(base_url=df_server.base_url, api_key=issued.key, max_retries=0) as client:
        records = rows(seed=8)
        single = _dataset(client, "ten-rows", [("people.csv", as_csv(records), "text/csv")])
        run = _run(client, single.id, pii_types=["email"])
        assert run.status == "SUCCEEDED", run.results
        assert balance() == pytest.approx(1.0)  # ten samples: the minimum charge, 1 credit
        big = _dataset(client, "many-rows", [("people.csv", as_csv(rows(seed=9) * 20), "text/csv")])
        with pytest.raises(dataframer.APIStatusError) as caught:  # 200 samples: 2 credits, more than left
            client.dataframer.anonymization_runs.create(
                dataset_id=big.id, detection_method="pii_m1", pii_types=["email"]
            )
        assert (caught.value.status_code, caught.value.body["code"]) == (402, "insufficient_credits")
        assert [r.id for r in client.dataframer.anonymization_runs.list()] == [run.id]
        assert balance() == pytest.approx(1.0)
