"""Read budgets of ingest: a file with more columns than the cap, one that takes longer to read than the
time budget, or a workbook whose reading needs more memory than its budget (a shared-strings bomb: 3.7 MB
that openpyxl reads into hundreds of MB) fails its dataset with a reason naming the file, the limit and the
setting that raises it, instead of holding an ingest worker and its memory; files within the budgets are
read as before."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import adaption
import httpx
import pytest
from server_helpers import qa_rows, wait_for, write_rows

from conftest import RunningServer, running_server
from datamill.services.settings.server import ServerSettings

MAX_COLUMNS = 100
MAX_MEMORY_MB = 32


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


@pytest.fixture(scope="module")
def frugal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = ServerSettings.for_data_dir(
        tmp_path_factory.mktemp("frugal"), ingest_max_memory_mb=MAX_MEMORY_MB
    )
    with running_server(settings) as running:
        yield running


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def _workbook(path: Path, strings: int) -> Path:
    """A two-column, one-row workbook whose shared-strings part lists `strings` more distinct strings."""
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPE}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_TYPE}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_TYPE}.sharedStrings+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{_RELS}"><Relationship Id="rId1" Type="{_DOC}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{_RELS}">'
            f'<Relationship Id="rId1" Type="{_DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_DOC}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{_MAIN}"><sheetData>'
            '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
            '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>'
            "</sheetData></worksheet>"
        ),
        "xl/sharedStrings.xml": (
            f'<sst xmlns="{_MAIN}">'
            + "".join(f"<si><t>{text}</t></si>" for text in ("question", "answer", "q1", "a1"))
            + "".join(f"<si><t>s{i:x}</t></si>" for i in range(strings))
            + "</sst>"
        ),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


def _upload_workbook(client: adaption.Adaption, path: Path) -> object:
    """Upload a workbook by the SDK's own steps (its upload_file helper takes no xlsx) and wait for ingest."""
    data = path.read_bytes()
    created = client.datasets.create(source={"file_format": "xlsx", "name": path.stem})  # type: ignore[typeddict-item]
    assert created.upload_instructions is not None
    httpx.put(created.upload_instructions.url, content=data).raise_for_status()
    client.datasets.upload.complete_by_id(
        created.dataset_id, file_size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    return wait_for(client, created.dataset_id)


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


def test_a_workbook_needing_more_memory_than_its_budget_fails_with_the_reason(
    frugal: RunningServer, tmp_path: Path
) -> None:
    bomb = _workbook(tmp_path / "strings.xlsx", 1_000_000)
    assert bomb.stat().st_size < 4 << 20  # a few MB on disk, hundreds of MB once its strings are read
    status = _upload_workbook(frugal.client(), bomb)
    assert status.status == "failed"
    assert status.error_data.code == "E0100"
    message = status.error_data.message
    assert message.startswith("cannot read strings.xlsx: ")
    assert f"memory budget of {MAX_MEMORY_MB} MB" in message
    assert "DATAMILL_INGEST_MAX_MEMORY_MB" in message
    assert status.row_count is None


def test_a_workbook_within_the_memory_budget_is_read(frugal: RunningServer, tmp_path: Path) -> None:
    status = _upload_workbook(frugal.client(), _workbook(tmp_path / "small.xlsx", 10))
    assert (status.status, status.row_count) == ("awaiting_input", 1)
