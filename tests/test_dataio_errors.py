"""Every unreadable file is a DataFormatError that says what is wrong and where, on open or on iteration."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import ijson
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datamill.core.errors import DataFormatError, ValidationError
from datamill.dataio import count_rows, open_dataset, read_all

# Enough valid UTF-8 to fill the head sample, so that the file sniffs as UTF-8 and the bad byte comes later.
_HEAD_FILLER_LINES = 2000


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def read_error(path: Path, **kw: object) -> DataFormatError:
    """Open and fully read `path`, returning the DataFormatError that must come out."""
    with pytest.raises(DataFormatError) as info:
        read_all(path, **kw)
    return info.value


# --- empty files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.csv", "a.tsv", "a.json", "a.jsonl", "a.txt", "a.parquet", "a.xlsx"])
def test_zero_byte_file_is_empty(tmp_path: Path, name: str) -> None:
    error = read_error(write(tmp_path / name, b""))
    assert "file is empty" in str(error)
    assert error.path == str(tmp_path / name)


@pytest.mark.parametrize("name", ["a.csv", "a.json", "a.jsonl", "a.txt"])
def test_whitespace_only_file_is_empty(tmp_path: Path, name: str) -> None:
    error = read_error(write(tmp_path / name, " \n\n\t \r\n"))
    assert "file is empty" in str(error)
    assert "whitespace" in str(error)


def test_header_only_csv_says_it_has_no_rows(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "a.csv", "id,text\n"))
    assert "file is empty" in str(error)
    assert "no rows" in str(error)
    assert "id, text" in str(error)


def test_empty_json_array_is_empty(tmp_path: Path) -> None:
    assert "file is empty" in str(read_error(write(tmp_path / "a.json", "[ ]")))
    assert "file is empty" in str(read_error(write(tmp_path / "b.json", '{"data": []}')))


def test_zero_row_parquet_says_it_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.string())}), path)
    error = read_error(path)
    assert "file is empty" in str(error)
    assert "no rows" in str(error)
    with pytest.raises(DataFormatError, match="no rows"):
        count_rows(path)


def test_header_only_sheet_says_it_has_no_rows(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["a", "b"])
    book.save(tmp_path / "a.xlsx")
    error = read_error(tmp_path / "a.xlsx")
    assert "file is empty" in str(error)
    assert "no rows" in str(error)


# --- names, paths and options ------------------------------------------------------------------------------


def test_unknown_extension_lists_formats_and_the_explicit_option(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "a.foo", "x"))
    message = str(error)
    for fmt in ["csv", "tsv", "json", "jsonl", "parquet", "xlsx", "txt"]:
        assert fmt in message
    assert "'.foo'" in message
    assert "format=" in message


def test_unknown_explicit_format(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="unknown format 'yaml'"):
        open_dataset(write(tmp_path / "a.csv", "a\n1\n"), format="yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="file not found"):
        open_dataset(tmp_path / "nope.csv")


def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        open_dataset(write(tmp_path / "a.csv", "a\n1\n"), batch_size=0)
    assert info.value.issues[0].field == "batch_size"


def test_unknown_encoding_name(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="unknown text encoding 'klingon'"):
        open_dataset(write(tmp_path / "a.csv", "a\n1\n"), encoding="klingon")


def test_missing_sheet_lists_the_sheets(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "Data"
    book.active.append(["a"])
    book.active.append([1])
    book.save(tmp_path / "a.xlsx")
    with pytest.raises(DataFormatError, match="no sheet named 'Other'; its sheets are 'Data'"):
        open_dataset(tmp_path / "a.xlsx", sheet="Other")


# --- invalid UTF-8 -----------------------------------------------------------------------------------------


def _utf8_then_bad_byte(header: str, good_line: str, bad_line: bytes) -> tuple[bytes, int, int]:
    """Return (file bytes, line number of the bad line, byte offset of the bad byte)."""
    head = (header + "".join(good_line.format(i=i) for i in range(_HEAD_FILLER_LINES))).encode("utf-8")
    line = header.count("\n") + _HEAD_FILLER_LINES + 1
    return head + bad_line + b"\n", line, len(head) + bad_line.index(b"\xe9")


@pytest.mark.parametrize(
    ("name", "header", "good_line", "bad_line"),
    [
        ("a.csv", "id,text\n", "{i},caf\u00e9 number {i} with some padding text\n", b"99,caf\xe9"),
        (
            "a.jsonl",
            "",
            '{{"id": {i}, "text": "caf\u00e9 number {i} with padding"}}\n',
            b'{"id": 99, "t": "caf\xe9"}',
        ),
        ("a.txt", "", "caf\u00e9 line {i} with some padding text to fill the head\n", b"caf\xe9 bad"),
    ],
)
def test_invalid_utf8_names_line_offset_and_the_fix(
    tmp_path: Path, name: str, header: str, good_line: str, bad_line: bytes
) -> None:
    data, line, offset = _utf8_then_bad_byte(header, good_line, bad_line)
    assert len(data) > 64 * 1024  # the bad byte lies beyond the sniffed head
    error = read_error(write(tmp_path / name, data))
    message = str(error)
    assert "invalid UTF-8" in message
    assert error.line == line
    assert f"byte offset {offset}" in message
    assert "re-save the file as UTF-8" in message
    assert "encoding" in message


def test_invalid_utf8_with_explicit_utf8_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", b"a,b\n1,ok\n2,caf\xe9\n")
    error = read_error(path, encoding="utf-8")
    assert "invalid UTF-8" in str(error)
    assert error.line == 3


def test_invalid_utf8_in_json(tmp_path: Path) -> None:
    error = read_error(
        write(
            tmp_path / "a.json",
            b'[{"a": "ok"},\n {"a": "caf\xe9"}]',
        ),
        encoding="utf-8",
    )
    assert "invalid UTF-8" in str(error)
    assert error.line == 2


# --- csv structure -----------------------------------------------------------------------------------------


def test_ragged_csv_row_names_counts_and_line(tmp_path: Path) -> None:
    # The quoted newline in row 1 makes physical lines and records differ: the row at fault starts on line 5.
    path = write(tmp_path / "a.csv", 'a,b,c\n1,"two\nlines",3\n4,5,6\n7,8\n9,10,11\n')
    error = read_error(path)
    assert "expected 3 columns, found 2" in str(error)
    assert error.line == 5


def test_ragged_csv_row_far_into_the_file(tmp_path: Path) -> None:
    body = "a,b\n" + "".join(f"{i},{'x' * 50}\n" for i in range(30_000)) + "1,2,3\n"
    error = read_error(write(tmp_path / "a.csv", body))
    assert "expected 2 columns, found 3" in str(error)
    assert error.line == 30_002


# --- jsonl -------------------------------------------------------------------------------------------------


def test_jsonl_invalid_json_names_the_line(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "a.jsonl", '{"a": 1}\n\n{"a": 2,}\n'))
    assert "invalid JSON" in str(error)
    assert error.line == 3
    assert ", line 3:" in str(error)


@pytest.mark.parametrize(
    ("line", "kind"), [("[1, 2]", "an array"), ('"text"', "a string"), ("7", "a number")]
)
def test_jsonl_line_that_is_not_an_object(tmp_path: Path, line: str, kind: str) -> None:
    error = read_error(write(tmp_path / "a.jsonl", '{"a": 1}\n' + line + "\n"))
    assert f"expected a JSON object on each line, found {kind}" in str(error)
    assert error.line == 2


def test_jsonl_column_mixing_types_names_column_and_lines(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "a.jsonl", '{"id": 1}\n{"id": null}\n{"id": "x1"}\n'))
    message = str(error)
    assert "column 'id' mixes types: number at line 1 but string at line 3" in message
    assert error.line == 3


def test_jsonl_type_change_in_a_later_batch(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"id": 1}\n{"id": 2}\n{"id": "x3"}\n')
    reader = open_dataset(path, batch_size=2)
    with pytest.raises(DataFormatError) as info:
        list(reader)
    assert "column 'id' holds int64 values in earlier rows but string from line 3" in str(info.value)
    assert info.value.line == 3


# --- json --------------------------------------------------------------------------------------------------


def test_invalid_json_gives_line_and_column(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "a.json", '[\n  {"a": 1},\n  {"a": 2} {"a": 3}\n]'))
    assert "invalid JSON at line 3, column" in str(error)
    assert error.line == 3
    assert isinstance(error.__cause__, ijson.JSONError)


def test_truncated_json(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "a.json", '[{"a": 1}, {"a":'))
    assert "invalid JSON at line 1" in str(error)


@pytest.mark.parametrize(
    ("text", "found"), [("42", "a number"), ('"x"', "a string"), ("null", "null"), ("true", "a boolean")]
)
def test_json_top_level_scalar_says_what_was_found(tmp_path: Path, text: str, found: str) -> None:
    error = read_error(write(tmp_path / "a.json", text))
    assert f"the top level of the JSON is {found}" in str(error)
    assert "array of records" in str(error)


def test_json_object_without_records_names_its_keys(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "a.json", json.dumps({"name": "x", "count": 3})))
    assert "holds no array of records (keys: 'name', 'count')" in str(error)


def test_json_record_that_is_not_an_object(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "a.json", '{"data": [{"a": 1}, "oops"]}'))
    assert "record 2 of the array under key 'data' is a string, expected an object" in str(error)


def test_json_mixed_types_name_the_records(tmp_path: Path) -> None:
    error = read_error(write(tmp_path / "a.json", '[{"v": true}, {"v": 3}]'))
    assert "column 'v' mixes types: boolean at record 1 but number at record 2" in str(error)
    assert error.line is None


# --- binary formats ----------------------------------------------------------------------------------------


def test_text_file_renamed_to_parquet(tmp_path: Path) -> None:
    path = write(tmp_path / "a.parquet", "id,text\n1,hello\n")
    with pytest.raises(DataFormatError) as info:
        open_dataset(path)
    assert "not a valid Parquet file" in str(info.value)
    assert isinstance(info.value.__cause__, pa.ArrowException)


def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"a": list(range(100))}), path)
    path.write_bytes(path.read_bytes()[:-20])
    assert "not a valid Parquet file" in str(read_error(path))


def test_text_file_renamed_to_xlsx(tmp_path: Path) -> None:
    path = write(tmp_path / "a.xlsx", "id,text\n1,hello\n")
    with pytest.raises(DataFormatError) as info:
        open_dataset(path)
    assert "not a valid xlsx workbook" in str(info.value)
    assert info.value.__cause__ is not None


def test_errors_surface_as_data_format_errors_never_library_ones(tmp_path: Path) -> None:
    # The same garbage under every extension: whatever fails, it fails as a DataFormatError.
    garbage = b"\x00\x01PK\x03\x04{[\xff\xfe garbage"
    for ext in ["csv", "tsv", "json", "jsonl", "parquet", "xlsx", "txt"]:
        path = write(tmp_path / f"g.{ext}", garbage)
        with contextlib.suppress(DataFormatError):
            read_all(path)
