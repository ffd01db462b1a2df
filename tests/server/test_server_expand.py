"""translate, localize and expand through the official SDK: derived datasets with the expected rows,
estimates, idempotent replays, and the errors of a source that cannot be expanded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import pytest
from runs_helpers import MAPPING, qa_rows, runs_server, upload, wait_done
from server_helpers import fields_of

from conftest import RunningServer
from datamill.steps.expansion import is_selected

ROWS = 12


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # The fake model's "translations" are strings made from a hash, which the multilingual meaning check
    # rightly rejects; it is left out here, as on an install without the embeddings extra
    # (tests/test_expansion_meaning.py shows the check itself).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("datamill.services.adaptation.step_services.e5_available", lambda: False)
        with runs_server(tmp_path_factory.mktemp("expand")) as running:
            yield running


def _rows_without_numbers(count: int) -> list[dict[str, Any]]:
    """`qa_rows` with no digits in the texts translated: the fake model's hash-string "translations" keep no
    number, which the translation detail check rightly rejects (tests/test_translation_detail.py)."""
    return [
        {**row, "question": row["question"].split(": ", 1)[1], "answer": "An answer."}
        for row in qa_rows(count)
    ]


@pytest.fixture
def source(srv: RunningServer, tmp_path: Path) -> tuple[adaption.Adaption, str]:
    """A tenant's dataset uploaded raw with a mapping: succeeded, with a configured mapping."""
    client = srv.client()
    dataset_id = upload(
        client,
        tmp_path / "qa.csv",
        _rows_without_numbers(ROWS),
        processing_mode="raw",
        column_mapping=MAPPING,
    )
    return client, dataset_id


def _expected_new_rows(sample_rate: float, targets: int) -> int:
    """Rows the expansion step adds: one per target for each row its seeded hash selects (seed 0)."""
    return sum(is_selected(0, row, sample_rate) for row in range(1, ROWS + 1)) * targets


def _rows(client: adaption.Adaption, dataset_id: str) -> list[dict[str, Any]]:
    text = client.datasets.download(dataset_id, file_format="jsonl").text()
    return [json.loads(line) for line in text.splitlines()]


def _datasets(client: adaption.Adaption) -> list[str]:
    return [d.dataset_id for d in client.datasets.list()]


def test_translate_makes_a_derived_dataset_with_the_new_rows(source: tuple[adaption.Adaption, str]) -> None:
    client, dataset_id = source
    launched = client.datasets.translate(dataset_id, sample_rate=0.5, languages=["es", "fr"])
    assert launched.estimate is False
    assert launched.dataset_id is not None
    assert launched.dataset_id != dataset_id
    assert launched.status == "running"
    assert launched.estimated_new_rows == round(ROWS * 0.5 * 2)
    assert wait_done(client, launched.dataset_id).status == "succeeded"
    derived = client.datasets.get(launched.dataset_id)
    new_rows = _expected_new_rows(0.5, 2)
    assert (derived.kind, derived.source_dataset_id, derived.row_count) == (
        "translated",
        dataset_id,
        ROWS + new_rows,
    )
    assert derived.configured_column_mapping is not None
    assert derived.configured_column_mapping.prompt == "original_prompt"
    rows = _rows(client, launched.dataset_id)
    assert len(rows) == ROWS + new_rows
    added = [r for r in rows if r["expansion"] == "translate"]
    assert len(added) == new_rows
    assert {r["language"] for r in added} == {"es", "fr"}
    assert all(r["source_row"] is not None for r in added)
    originals = [r for r in rows if r["expansion"] is None]
    assert sorted(int(r["id"]) for r in originals) == list(range(ROWS))
    source_status = client.datasets.get(dataset_id)
    assert (source_status.status, source_status.row_count) == ("succeeded", ROWS)  # the source is unchanged


def test_localize_makes_a_localized_dataset(source: tuple[adaption.Adaption, str]) -> None:
    client, dataset_id = source
    pairs = [{"country": "MX", "language": "es"}, {"country": "BR", "language": "pt"}]
    launched = client.datasets.localize(dataset_id, sample_rate=0.25, pairs=pairs)
    assert launched.dataset_id is not None
    assert wait_done(client, launched.dataset_id).status == "succeeded"
    derived = client.datasets.get(launched.dataset_id)
    assert derived.kind == "localized"
    assert derived.row_count == ROWS + _expected_new_rows(0.25, 2)
    added = [r for r in _rows(client, launched.dataset_id) if r["expansion"] == "localize"]
    assert {(r["country"], r["language"]) for r in added} == {("MX", "es"), ("BR", "pt")}


def test_expand_reads_the_row_count_then_translates_or_localizes(
    source: tuple[adaption.Adaption, str],
) -> None:
    client, dataset_id = source
    by_language = client.datasets.expand(dataset_id, rows=6, languages=["de", "it"])  # sample_rate 0.25
    by_pair = client.datasets.expand(dataset_id, rows=3, pairs=[{"country": "FR", "language": "fr"}])
    for launched, rate, kind in ((by_language, 0.25, "translated"), (by_pair, 0.25, "localized")):
        assert launched.dataset_id is not None
        assert wait_done(client, launched.dataset_id).status == "succeeded"
        derived = client.datasets.get(launched.dataset_id)
        targets = 2 if kind == "translated" else 1
        assert (derived.kind, derived.row_count) == (kind, ROWS + _expected_new_rows(rate, targets))


def test_an_estimate_creates_nothing(source: tuple[adaption.Adaption, str]) -> None:
    client, dataset_id = source
    before = _datasets(client)
    quote = client.datasets.translate(dataset_id, sample_rate=1, languages=["es"], estimate=True)
    assert (quote.dataset_id, quote.status, quote.estimate) == (None, None, True)
    assert quote.estimated_new_rows == ROWS
    assert quote.estimated_credits_consumed > 0
    assert _datasets(client) == before


def test_an_idempotent_replay_returns_the_first_dataset_for_nothing(
    source: tuple[adaption.Adaption, str],
) -> None:
    client, dataset_id = source
    first = client.datasets.translate(dataset_id, sample_rate=0.5, languages=["es"], idempotency_key="t-1")
    again = client.datasets.translate(dataset_id, sample_rate=0.5, languages=["es"], idempotency_key="t-1")
    assert again.dataset_id == first.dataset_id
    assert (again.estimated_credits_consumed, again.estimated_new_rows, again.estimate) == (0, 0, False)
    assert first.estimated_credits_consumed > 0
    assert first.dataset_id is not None
    wait_done(client, first.dataset_id)
    late = client.datasets.translate(dataset_id, sample_rate=0.5, languages=["es"], idempotency_key="t-1")
    assert (late.dataset_id, late.status) == (first.dataset_id, "succeeded")
    assert len(_datasets(client)) == 2  # the source and one derived dataset


def test_a_derived_dataset_can_be_adapted(source: tuple[adaption.Adaption, str]) -> None:
    client, dataset_id = source
    launched = client.datasets.translate(dataset_id, sample_rate=0.25, languages=["es"])
    assert launched.dataset_id is not None
    wait_done(client, launched.dataset_id)
    quote = client.datasets.adapt(launched.dataset_id, estimate=True)  # its configured mapping is used
    assert quote.estimate is True
    client.datasets.adapt(launched.dataset_id, column_mapping={"prompt": "original_prompt"})
    assert wait_done(client, launched.dataset_id).status == "succeeded"
    rows = _rows(client, launched.dataset_id)
    assert all(r["enhanced_completion"].startswith("[fake] ") for r in rows)


def test_sources_that_cannot_be_expanded(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    unmapped = upload(client, tmp_path / "qa.csv", qa_rows(3))
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.translate(unmapped, sample_rate=0.5, languages=["es"])
    assert fields_of(caught.value) == ["column_mapping"]
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.translate(unmapped, sample_rate=2, languages=["xx"])
    assert sorted(fields_of(caught.value)) == ["languages[0]", "sample_rate"]
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.localize(unmapped, sample_rate=0.5, pairs=[{"country": "ZZ", "language": "es"}])
    assert fields_of(caught.value) == ["pairs[0].country"]
    with pytest.raises(adaption.NotFoundError):
        srv.client().datasets.translate(unmapped, sample_rate=0.5, languages=["es"])
