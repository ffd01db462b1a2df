"""Read budgets of ingest: a file with more columns than the cap, or one that takes longer to read than the
time budget, fails its dataset with a reason naming the limit (and the setting that raises it), instead of
holding an ingest worker and its memory; files within the budgets are read as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import adaption
import pytest
from server_helpers import qa_rows, wait_for, write_rows

from conftest import RunningServer, running_server
from datamill.services.settings.server import ServerSettings

MAX_COLUMNS = 100


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = ServerSettings.for_data_dir(tmp_path_factory.mktemp("capped"), ingest_max_columns=MAX_COLUMNS)
    with running_server(settings) as running:
        yield running


@pytest.fixture(scope="module")
def hurried(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = ServerSettings.for_data_dir(tmp_path_factory.mktemp("hurried"), ingest_timeout_s=0.01)
    with running_server(settings) as running:
        yield running


def _wide(count: int) -> list[dict[str, object]]:
    return [{f"c{i}": i for i in range(count)} for _ in range(3)]


def _ingested(client: adaption.Adaption, path: Path) -> object:
    done = client.datasets.upload_file(path)
    return wait_for(client, done.dataset_id)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_a_file_wider_than_the_column_cap_fails_with_the_reason(
    capped: RunningServer, tmp_path: Path, suffix: str
) -> None:
    status = _ingested(capped.client(), write_rows(tmp_path / f"wide{suffix}", _wide(MAX_COLUMNS * 5)))
    assert status.status == "failed"
    message = status.error_data.message
    assert f"{MAX_COLUMNS * 5:,} columns" in message
    assert f"at most {MAX_COLUMNS:,}" in message
    assert "DATAMILL_INGEST_MAX_COLUMNS" in message


def test_a_file_within_the_cap_is_read(capped: RunningServer, tmp_path: Path) -> None:
    status = _ingested(capped.client(), write_rows(tmp_path / "ok.csv", _wide(MAX_COLUMNS)))
    assert (status.status, status.row_count) == ("awaiting_input", 3)


def test_a_file_slower_to_read_than_the_budget_fails_with_the_reason(
    hurried: RunningServer, tmp_path: Path
) -> None:
    status = _ingested(hurried.client(), write_rows(tmp_path / "long.csv", qa_rows(200_000)))
    assert status.status == "failed"
    assert "took longer than" in status.error_data.message
    assert "DATAMILL_INGEST_TIMEOUT_S" in status.error_data.message
