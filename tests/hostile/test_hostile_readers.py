"""Every file of the hostile corpus gets a DataFormatError saying what is wrong, never another exception."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import hostile_zips
import openpyxl
import pytest
from hostile_files import FILES, GENERATED, UNREADABLE

from datamill.core.errors import DataFormatError, ValidationError
from datamill.dataio import count_rows, open_dataset, read_all
from datamill.dataio._xlsx import _rows as _xlsx_rows
from datamill.services.generation.seed_zip import read_zip

NAMES = sorted([*UNREADABLE, *GENERATED])


def corpus_file(name: str, folder: Path) -> tuple[Path, str]:
    if name in UNREADABLE:
        return FILES / name, UNREADABLE[name]
    build, message = GENERATED[name]
    return build(folder), message


@pytest.mark.parametrize("name", NAMES)
def test_each_hostile_file_is_a_clear_data_format_error(name: str, tmp_path: Path) -> None:
    path, message = corpus_file(name, tmp_path)
    with pytest.raises(DataFormatError) as caught:
        read_all(path)
    assert message in str(caught.value)
    assert caught.value.path == str(path)


@pytest.mark.parametrize("name", NAMES)
def test_counting_and_streaming_fail_the_same_way(name: str, tmp_path: Path) -> None:
    path, _ = corpus_file(name, tmp_path)
    with pytest.raises(DataFormatError):
        count_rows(path)
    with pytest.raises(DataFormatError), open_dataset(path, batch_size=2) as reader:
        for _ in reader:
            pass


def test_formulas_in_a_workbook_are_never_evaluated() -> None:
    # Cells hold formulas that would call a shell (DDE), a URL or a web service if evaluated. They are read
    # as their cached values (none were ever computed, so the cells are empty); only the plain row remains.
    table = read_all(FILES / "formulas.xlsx")
    assert table.to_pylist() == [{"q": "plain question", "a": "plain answer"}]


def test_nul_bytes_in_a_csv_are_kept_as_text() -> None:
    rows = read_all(FILES / "nul_bytes.csv").to_pylist()
    assert rows[0] == {"q": "hel\x00lo", "a": "wor\x00ld"}


# --- ZIP archives (seed datasets) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (hostile_zips.bomb, "a dataset allows at most 50 MB"),
        (hostile_zips.ratio_bomb, "compressed more than 100:1"),
        (hostile_zips.many_small_bombs, "a dataset allows at most 50 MB"),
        (hostile_zips.lying_sizes, "seeds.csv"),
        (hostile_zips.symlink, "'seeds.csv' is a symbolic link"),
        (hostile_zips.too_many_members, "6000 entries; at most 5000"),
        (hostile_zips.truncated, "not a valid ZIP file"),
        (hostile_zips.nested, "No valid files found in ZIP"),
        (lambda: b"PK\x03\x04" + b"\x00" * 64, "not a valid ZIP file"),
    ],
)
def test_hostile_zips_are_refused_naming_zip_file(archive, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        read_zip(io.BytesIO(archive()))
    assert [issue.field for issue in caught.value.issues] == ["zip_file"]
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    "name", ["../evil.csv", "/etc/evil.csv", "C:\\evil.csv", "a\\..\\b.csv", "a/../../b.csv"]
)
def test_zip_members_escaping_the_folder_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="contains unsafe paths"):
        read_zip(io.BytesIO(hostile_zips.path_traversal(name)))


def _patched_workbook(path: Path, rows: int, patch: dict[str, bytes] | None = None) -> Path:
    """A workbook of `rows` short rows whose parts named in `patch` are replaced (or added)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["question", "answer"])
    for number in range(rows):
        sheet.append([f"q{number}", f"a{number}"])
    plain = path.with_suffix(".plain.xlsx")
    book.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD1048576"/>', data)
            target.writestr(item, (patch or {}).pop(item.filename, data))
        for name, data in (patch or {}).items():
            target.writestr(name, data)
    return path


def test_a_sheet_declaring_the_largest_size_is_read_as_the_cells_it_has(tmp_path: Path) -> None:
    path = _patched_workbook(tmp_path / "wide.xlsx", rows=50)
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        widths = {len(row) for row in _xlsx_rows(str(path), book.worksheets[0])}
    finally:
        book.close()
    assert widths == {2}  # not padded to the 16,384 columns the sheet declares
    with open_dataset(path) as reader:
        assert reader.columns == ["question", "answer"]
        assert sum(batch.num_rows for batch in reader) == 50


def test_a_shared_strings_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    bomb = b"<sst>" + b"<si><t>" + b"x" * (64 << 20) + b"</t></si></sst>"
    path = _patched_workbook(tmp_path / "bomb.xlsx", rows=2, patch={"xl/sharedStrings.xml": bomb})
    assert path.stat().st_size < 1 << 20
    with pytest.raises(DataFormatError, match="decompression bomb"):
        open_dataset(path)
