"""augment and expand(rows=...) through the official SDK: a new dataset of the source's rows plus the most
relevant rows of the tenant's other datasets (never another tenant's, never a near-duplicate of the source),
quotes, the recommended fill, idempotent replays, credits and the errors of bad requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adaption
import pytest
from runs_helpers import MAPPING, runs_server, upload, wait_done
from server_helpers import error_body, fields_of

from conftest import RunningServer

SOURCE = [
    {"question": "How long should rye sourdough bread proof before baking?", "answer": "About 4 hours."},
    {"question": "What oven temperature bakes a crusty sourdough loaf?", "answer": "230 C."},
    {"question": "Why does my bread dough not rise with fresh yeast?", "answer": "Cold water."},
]
RELEVANT = [
    {"question": "How do I feed a rye sourdough starter before baking bread?", "answer": "Flour and water."},
    {"question": "Which flour makes the crustiest sourdough bread loaf?", "answer": "Bread flour."},
    {"question": "How much yeast does a bread dough need to rise overnight?", "answer": "A pinch."},
]
UNRELATED = [
    {"question": "Which planet has the largest moon in the solar system?", "answer": "Jupiter."},
    {"question": "How far away is the Andromeda galaxy?", "answer": "2.5 million light years."},
]
DUPLICATES = [
    {"question": "how long should RYE sourdough bread proof, before baking", "answer": "About 4 hours."},
    {"question": "How long should rye sourdough bread proof before baking today?", "answer": "4 h."},
]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with runs_server(tmp_path_factory.mktemp("augment")) as running:
        yield running


def _upload(client: adaption.Adaption, path: Path, rows: list[dict[str, Any]]) -> str:
    return upload(client, path, rows, processing_mode="raw", column_mapping=MAPPING)


@pytest.fixture
def tenant(srv: RunningServer, tmp_path: Path) -> tuple[adaption.Adaption, str, str]:
    """A tenant with the source dataset and a pool dataset; another tenant holds more bread questions."""
    client = srv.client()
    source = _upload(client, tmp_path / "source.jsonl", SOURCE)
    pool = _upload(client, tmp_path / "pool.jsonl", UNRELATED + DUPLICATES + RELEVANT)
    other = srv.client()
    _upload(
        other,
        tmp_path / "other.jsonl",
        [{"question": "How to bake sourdough rye bread loaf?", "answer": "x"}],
    )
    return client, source, pool


def _rows(client: adaption.Adaption, dataset_id: str) -> list[dict[str, Any]]:
    text = client.datasets.download(dataset_id, file_format="jsonl").text()
    return [json.loads(line) for line in text.splitlines()]


def _credits(srv: RunningServer, client: adaption.Adaption) -> float:
    found = srv.context.tenants.authenticate(client.api_key)
    assert found is not None
    return found.credits


def test_augment_adds_the_relevant_rows_of_the_tenants_other_datasets(
    srv: RunningServer, tenant: tuple[adaption.Adaption, str, str]
) -> None:
    client, source, pool = tenant
    before = _credits(srv, client)
    done = client.datasets.augment(source, domain_rows=3)
    assert (done.estimate, done.status, done.domain_rows, done.general_rows) == (False, "succeeded", 3, 0)
    assert done.dataset_id is not None
    assert done.dataset_id != source
    assert done.estimated_credits_consumed > 0
    assert before - _credits(srv, client) == pytest.approx(done.estimated_credits_consumed)
    assert wait_done(client, done.dataset_id).status == "succeeded"
    derived = client.datasets.get(done.dataset_id)
    assert (derived.kind, derived.source_dataset_id, derived.row_count) == ("augmented", source, 6)
    assert derived.configured_column_mapping is not None
    assert derived.configured_column_mapping.prompt == "question"
    rows = _rows(client, done.dataset_id)
    assert [r["question"] for r in rows[:3]] == [r["question"] for r in SOURCE]
    assert all(r["augmentation"] is None for r in rows[:3])
    added = rows[3:]
    assert sorted(r["question"] for r in added) == sorted(r["question"] for r in RELEVANT)
    assert {(r["augmentation"], r["augmentation_source"]) for r in added} == {("domain", pool)}
    source_status = client.datasets.get(source)
    assert (source_status.row_count, source_status.status) == (3, "succeeded")  # the source is unchanged


def test_fewer_relevant_rows_than_asked_adds_those_there_are(
    tenant: tuple[adaption.Adaption, str, str],
) -> None:
    client, source, _pool = tenant
    done = client.datasets.augment(source, domain_rows=50)
    assert done.domain_rows == 3  # the unrelated rows and the near-duplicates are never added
    assert done.dataset_id is not None
    assert wait_done(client, done.dataset_id).row_count == 6


def test_an_estimate_creates_nothing_and_says_how_the_fill_is_recommended(
    srv: RunningServer, tenant: tuple[adaption.Adaption, str, str]
) -> None:
    client, source, _pool = tenant
    before, listed = _credits(srv, client), len(list(client.datasets.list()))
    quote = client.datasets.augment(source, estimate=True)
    assert (quote.estimate, quote.dataset_id, quote.status, quote.domain_rows) == (True, None, None, 3)
    assert "topped up to 1000" in str(quote.model_extra["message"])
    assert "the pool holds 3 relevant rows" in str(quote.model_extra["message"])
    assert (_credits(srv, client), len(list(client.datasets.list()))) == (before, listed)
    with pytest.raises(adaption.BadRequestError) as caught:  # no counts, no estimate: the recommendation
        client.datasets.expand(source)
    assert fields_of(caught.value) == ["domain_rows"]
    assert "recommended fill: 3 domain_rows" in error_body(caught.value)["message"]
    filled = client.datasets.augment(source, fill_to_recommended=True)
    assert filled.domain_rows == 3


def test_expand_with_rows_routes_to_augment(tenant: tuple[adaption.Adaption, str, str]) -> None:
    client, source, _pool = tenant
    done = client.datasets.expand(source, rows=2)
    assert done.domain_rows == 2  # type: ignore[union-attr]
    assert done.dataset_id is not None
    assert wait_done(client, done.dataset_id).row_count == 5


def test_an_idempotency_key_replays_the_first_dataset(
    srv: RunningServer, tenant: tuple[adaption.Adaption, str, str]
) -> None:
    client, source, _pool = tenant
    first = client.datasets.augment(source, domain_rows=1, idempotency_key="aug-1")
    after_first = _credits(srv, client)
    again = client.datasets.augment(source, domain_rows=1, idempotency_key="aug-1")
    assert again.dataset_id == first.dataset_id
    assert (again.domain_rows, again.estimated_credits_consumed) == (0, 0)
    assert _credits(srv, client) == after_first
    with pytest.raises(adaption.UnprocessableEntityError) as caught:
        client.datasets.augment(source, domain_rows=2, idempotency_key="aug-1")
    assert fields_of(caught.value) == ["idempotency_key"]


def test_bad_requests_name_their_fields(srv: RunningServer, tmp_path: Path) -> None:
    client = srv.client()
    source = _upload(client, tmp_path / "source.jsonl", SOURCE)
    with pytest.raises(adaption.BadRequestError) as caught:
        client.datasets.augment(source, domain_rows=-1, general_rows=5, similar_rows=2)
    assert fields_of(caught.value) == ["domain_rows", "general_rows", "similar_rows"]
    with pytest.raises(adaption.BadRequestError) as empty_pool:  # this tenant has no other dataset
        client.datasets.augment(source, domain_rows=2)
    assert fields_of(empty_pool.value) == ["domain_rows"]
    with pytest.raises(adaption.NotFoundError):
        srv.client().datasets.augment(source, domain_rows=1)


def test_a_balance_that_does_not_cover_the_rows_answers_402(srv: RunningServer, tmp_path: Path) -> None:
    key = srv.context.tenants.create_key("augment-broke", credits=0).key
    client = srv.client(key=key)
    source = _upload(client, tmp_path / "source.jsonl", SOURCE)
    _upload(client, tmp_path / "pool.jsonl", RELEVANT)
    listed = len(list(client.datasets.list()))
    with pytest.raises(adaption.APIStatusError) as caught:
        client.datasets.augment(source, domain_rows=2)
    assert caught.value.status_code == 402
    assert "domain_rows" in error_body(caught.value)["message"]
    assert len(list(client.datasets.list())) == listed


def test_an_augmented_dataset_can_be_adapted_like_any_other(
    tenant: tuple[adaption.Adaption, str, str],
) -> None:
    client, source, _pool = tenant
    done = client.datasets.augment(source, domain_rows=2)
    assert done.dataset_id is not None
    client.datasets.adapt(done.dataset_id, column_mapping=MAPPING)
    adapted = wait_done(client, done.dataset_id)
    assert (adapted.status, adapted.row_count) == ("succeeded", 5)
    rows = _rows(client, done.dataset_id)
    assert [r["augmentation"] for r in rows] == [None, None, None, "domain", "domain"]
