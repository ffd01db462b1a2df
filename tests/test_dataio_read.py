"""Reading every supported format through `datamill.dataio.open_dataset` and its conveniences."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datamill.dataio as dataio
from datamill.core.errors import DataFormatError
from datamill.dataio import count_rows, detect_format, open_dataset, read_all


def write(path: Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def rows(path: Path, **kw: object) -> list[dict[str, object]]:
    result: list[dict[str, object]] = read_all(path, **kw).to_pylist()
    return result


def test_public_names_are_sorted_and_exported() -> None:
    # ruff's order (RUF022): CONSTANTS, then Classes, then functions, each alphabetical.
    assert dataio.__all__ == sorted(dataio.__all__, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in dataio.__all__:
        assert hasattr(dataio, name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.TSV", "tsv"),
        ("a.json", "json"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("dir/a.parquet", "parquet"),
        ("a.xlsx", "xlsx"),
        ("a.txt", "txt"),
    ],
)
def test_detect_format_from_extension(name: str, expected: str) -> None:
    assert detect_format(name) == expected


def test_detect_format_explicit_wins_over_extension() -> None:
    assert detect_format("data.dat", "JSONL") == "jsonl"
    assert detect_format(Path("data.csv"), ".tsv") == "tsv"


# --- csv and tsv -------------------------------------------------------------------------------------------


def test_csv_reads_every_column_as_string_with_nulls_for_empty_cells(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", 'id,score,text\n1,0.5,hello\n2,,""\n')
    with open_dataset(path) as reader:
        assert reader.format == "csv"
        assert reader.columns == ["id", "score", "text"]
        assert reader.schema == pa.schema(
            [("id", pa.string()), ("score", pa.string()), ("text", pa.string())]
        )
    assert rows(path) == [
        {"id": "1", "score": "0.5", "text": "hello"},
        {"id": "2", "score": None, "text": ""},
    ]


@pytest.mark.parametrize("delimiter", [";", "|", "\t"])
def test_csv_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    body = "\n".join(delimiter.join(cells) for cells in [["a", "b"], ["1, 2", "x"], ["3", "y, z"]]) + "\n"
    path = write(tmp_path / "a.csv", body)
    assert rows(path) == [{"a": "1, 2", "b": "x"}, {"a": "3", "b": "y, z"}]


def test_csv_explicit_delimiter_overrides_sniffing(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "a;b\n1;2\n")
    assert rows(path, delimiter=",") == [{"a;b": "1;2"}]


def test_tsv_uses_tabs(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv", "a\tb\n1,2;3\tx\n")
    assert rows(path) == [{"a": "1,2;3", "b": "x"}]


def test_csv_quoted_newlines_stay_inside_the_cell(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", 'id,text\n1,"line one\nline two"\n2,"a ""quote"", and\r\nmore"\n')
    assert rows(path) == [
        {"id": "1", "text": "line one\nline two"},
        {"id": "2", "text": 'a "quote", and\r\nmore'},
    ]


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_csv_in_a_legacy_encoding_is_detected(tmp_path: Path, encoding: str) -> None:
    words = "café, naïve façade, Zürich Straße, élève, crème brûlée, à bientôt"
    lines = ["name;note"] + [f"{i};{words} numéro {i}" for i in range(40)]
    path = write(tmp_path / "a.csv", "\n".join(lines) + "\n", encoding)
    table = read_all(path)
    assert table.num_rows == 40
    assert table.column("note")[3].as_py() == f"{words} numéro 3"


def test_csv_explicit_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "a,b\n1,café\n", "cp1252")
    assert rows(path, encoding="cp1252") == [{"a": "1", "b": "café"}]


def test_csv_utf8_bom_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "\ufeffid,text\n1,é\n")
    assert rows(path) == [{"id": "1", "text": "é"}]


def test_csv_utf16_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", 'id;text\n1;"ünï\ncode"\n2;ok\n', "utf-16")
    assert rows(path) == [{"id": "1", "text": "ünï\ncode"}, {"id": "2", "text": "ok"}]


def test_batches_hold_at_most_batch_size_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "n\n" + "".join(f"{i}\n" for i in range(2500)))
    with open_dataset(path, batch_size=1000) as reader:
        sizes = [batch.num_rows for batch in reader]
    assert max(sizes) <= 1000
    assert sum(sizes) == 2500
    assert count_rows(path) == 2500


def test_iterating_again_starts_a_fresh_pass(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    with open_dataset(path, batch_size=2) as reader:
        first = [row for batch in reader for row in batch.to_pylist()]
        second = [row for batch in reader for row in batch.to_pylist()]
    assert first == second == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_a_closed_reader_refuses_to_iterate(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "a\n1\n")
    reader = open_dataset(path)
    reader.close()
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        iter(reader)


def test_reading_streams_rather_than_loading_everything_at_open(tmp_path: Path) -> None:
    # A defect far down the file is found only when iteration reaches it: open reads just the first batch.
    lines = [json.dumps({"n": i}) for i in range(5000)] + ["not json"]
    path = write(tmp_path / "a.jsonl", "\n".join(lines) + "\n")
    reader = open_dataset(path, batch_size=100)
    assert reader.columns == ["n"]
    with pytest.raises(DataFormatError) as info:
        for _ in reader:
            pass
    assert info.value.line == 5001


# --- json and jsonl ----------------------------------------------------------------------------------------


def test_json_top_level_array(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", '[{"q": "hi", "n": 1}, {"q": "yo", "n": 2.5}]')
    assert rows(path) == [{"q": "hi", "n": 1.0}, {"q": "yo", "n": 2.5}]


def test_json_object_holding_the_records(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", '{"data": [{"q": "hi"}, {"q": "yo"}]}')
    assert rows(path) == [{"q": "hi"}, {"q": "yo"}]


def test_json_object_skips_keys_before_the_records_array(tmp_path: Path) -> None:
    doc = {"version": 2, "meta": {"tags": ["a", "b"]}, "rows": [{"q": "hi"}], "after": [1, 2]}
    path = write(tmp_path / "a.json", json.dumps(doc))
    assert rows(path) == [{"q": "hi"}]


def test_json_with_bom_and_utf16(tmp_path: Path) -> None:
    bom = write(tmp_path / "bom.json", '\ufeff[{"q": "é"}]')
    utf16 = write(tmp_path / "u16.json", '[{"q": "ü"}]', "utf-16")
    assert rows(bom) == [{"q": "é"}]
    assert rows(utf16) == [{"q": "ü"}]


def test_json_streams_in_batches(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", json.dumps({"data": [{"i": i} for i in range(25)]}))
    with open_dataset(path, batch_size=10) as reader:
        sizes = [batch.num_rows for batch in reader]
    assert sizes == [10, 10, 5]


def test_jsonl_skips_blank_lines_and_keeps_nested_values(tmp_path: Path) -> None:
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    text = "\n".join(
        [json.dumps({"id": 1, "chat": chat}), "", "   ", json.dumps({"id": 2, "chat": chat[:1]})]
    )
    path = write(tmp_path / "a.jsonl", "\ufeff" + text + "\n\n")
    table = read_all(path)
    assert table.schema.field("chat").type == pa.list_(
        pa.struct([("role", pa.string()), ("content", pa.string())])
    )
    assert table.to_pylist() == [{"id": 1, "chat": chat}, {"id": 2, "chat": chat[:1]}]


def test_jsonl_union_of_keys_missing_become_null(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"a": 1}\n{"b": "x"}\n')
    assert rows(path) == [{"a": 1, "b": None}, {"a": None, "b": "x"}]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_key_first_seen_in_a_later_batch_widens_the_schema(tmp_path: Path, fmt: str) -> None:
    records = [{"a": 1}, {"a": 2}, {"a": 3, "late": {"k": [1]}}, {"a": 4.5}]
    if fmt == "jsonl":
        path = write(tmp_path / "a.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    else:
        path = write(tmp_path / "a.json", json.dumps(records))
    with open_dataset(path, batch_size=2) as reader:
        assert reader.columns == ["a"]
        schemas = [batch.schema for batch in reader]
        assert reader.columns == ["a", "late"]
        assert reader.schema.field("a").type == pa.float64()
    assert schemas[0].names == ["a"]
    assert schemas[1].names == ["a", "late"]
    assert rows(path, batch_size=2) == [
        {"a": 1.0, "late": None},
        {"a": 2.0, "late": None},
        {"a": 3.0, "late": {"k": [1]}},
        {"a": 4.5, "late": None},
    ]


def test_nested_struct_gaining_fields_in_a_later_batch_widens(tmp_path: Path) -> None:
    lines = [{"m": [{"role": "user"}]}, {"m": [{"role": "user", "name": "ann"}]}]
    path = write(tmp_path / "a.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
    assert rows(path, batch_size=1) == [
        {"m": [{"role": "user", "name": None}]},
        {"m": [{"role": "user", "name": "ann"}]},
    ]


# --- parquet, xlsx, txt ------------------------------------------------------------------------------------


def test_parquet_keeps_types_and_streams(tmp_path: Path) -> None:
    table = pa.table({"i": list(range(30)), "s": [f"r{i}" for i in range(30)], "l": [[i] for i in range(30)]})
    path = tmp_path / "a.parquet"
    pq.write_table(table, path, row_group_size=7)
    with open_dataset(path, batch_size=5) as reader:
        assert reader.schema == table.schema
        sizes = [batch.num_rows for batch in reader]
    assert max(sizes) <= 5
    assert read_all(path).equals(table)
    assert count_rows(path) == 30


def make_workbook(path: Path, sheets: Mapping[str, Sequence[Sequence[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, sheet_rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in sheet_rows:
            sheet.append(row)
    book.save(path)
    return path


def test_xlsx_first_sheet_every_cell_as_text(tmp_path: Path) -> None:
    path = make_workbook(
        tmp_path / "a.xlsx",
        {
            "First": [
                ["name", "n", None, "name", "when"],
                ["ann", 3, "x", "dup", dt.datetime(2024, 5, 1)],
                [None, None, None, None, None],
                ["bob", 0.5, None, None, dt.datetime(2024, 5, 1, 13, 30), "beyond"],
                [True, "text", None, None, None],
            ],
            "Second": [["other"], ["z"]],
        },
    )
    with open_dataset(path) as reader:
        assert reader.format == "xlsx"
        # A value beyond the header's width (row 4) adds a column rather than being dropped.
        assert reader.columns == ["name", "n", "column_3", "name_2", "when", "column_6"]
    assert rows(path) == [
        {"name": "ann", "n": "3", "column_3": "x", "name_2": "dup", "when": "2024-05-01", "column_6": None},
        {
            "name": "bob",
            "n": "0.5",
            "column_3": None,
            "name_2": None,
            "when": "2024-05-01 13:30:00",
            "column_6": "beyond",
        },
        {"name": "TRUE", "n": "text", "column_3": None, "name_2": None, "when": None, "column_6": None},
    ]


def test_xlsx_named_sheet(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "a.xlsx", {"First": [["a"], ["1"]], "Second": [["other"], ["z"], ["y"]]})
    assert rows(path, sheet="Second") == [{"other": "z"}, {"other": "y"}]


def test_xlsx_batches(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "a.xlsx", {"S": [["n"]] + [[i] for i in range(7)]})
    with open_dataset(path, batch_size=3) as reader:
        assert [batch.num_rows for batch in reader] == [3, 3, 1]


def test_txt_one_row_per_non_blank_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "first line\r\n\n   \n  indented, kept\nlast")
    with open_dataset(path) as reader:
        assert reader.schema == pa.schema([("text", pa.string())])
    assert rows(path) == [{"text": "first line"}, {"text": "  indented, kept"}, {"text": "last"}]
    assert count_rows(path) == 3


def test_txt_in_utf16(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "ünï\ncode\n", "utf-16")
    assert rows(path) == [{"text": "ünï"}, {"text": "code"}]


def test_explicit_format_reads_a_file_with_any_name(tmp_path: Path) -> None:
    path = write(tmp_path / "export.dat", '{"a": 1}\n')
    assert rows(path, format="jsonl") == [{"a": 1}]


def test_counting_csv_rows_spans_blocks_and_quoted_newlines(tmp_path: Path) -> None:
    # Over 128 KB, so the count parses several blocks; every tenth cell holds a quoted newline.
    lines = ["id,text"] + [
        f'{i},"line {i}\n{"x" * 200}"' if i % 10 == 0 else f"{i},{'y' * 200}" for i in range(3000)
    ]
    path = write(tmp_path / "a.csv", "\n".join(lines) + "\n")
    assert path.stat().st_size > 3 * 128 * 1024
    assert count_rows(path) == 3000 == read_all(path).num_rows
    assert count_rows(write(tmp_path / "a.tsv", "a\tb\n1\t2\n3\t4\n")) == 2


def test_counting_csv_rows_with_a_cell_longer_than_a_counting_block(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", 'id,text\n1,"' + "x" * 300_000 + '"\n2,short\n')
    assert count_rows(path) == 2 == read_all(path).num_rows


def test_counting_csv_rows_reports_what_a_read_reports(tmp_path: Path) -> None:
    ragged = write(tmp_path / "ragged.csv", "a,b\n1,2\n" + "3,4\n" * 5000 + "5,6,7\n")
    with pytest.raises(DataFormatError, match="expected 2 columns, found 3"):
        count_rows(ragged)
    with pytest.raises(DataFormatError, match="header"):
        count_rows(write(tmp_path / "empty.csv", "a,b\n"))


def _duplicate_files(tmp_path: Path) -> dict[str, Path]:
    """The same table, header ``question,answer,answer,answer_2``, in every format that has a header."""
    header = ["question", "answer", "answer", "answer_2"]
    values = ["q1", "first", "second", "third"]
    csv_path = tmp_path / "dup.csv"
    csv_path.write_text(",".join(header) + "\n" + ",".join(values) + "\n")
    tsv_path = tmp_path / "dup.tsv"
    tsv_path.write_text("\t".join(header) + "\n" + "\t".join(values) + "\n")
    parquet_path = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays([pa.array([v]) for v in values], names=header)
    pq.write_table(table, parquet_path)
    xlsx_path = make_workbook(tmp_path / "dup.xlsx", {"Sheet": [header, values]})
    return {"csv": csv_path, "tsv": tsv_path, "parquet": parquet_path, "xlsx": xlsx_path}


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "xlsx"])
def test_repeated_column_names_are_renamed_in_every_reader_and_said(
    tmp_path: Path, fmt: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = _duplicate_files(tmp_path)[fmt]
    with caplog.at_level("WARNING", logger="datamill.dataio"), open_dataset(path) as reader:
        # No value is lost: the repeat gets the first free suffix (answer_2 is taken by the file itself).
        assert reader.columns == ["question", "answer", "answer_3", "answer_2"]
        assert reader.renamed_columns == {"answer_3": "answer"}
        assert "'answer_3'" in str(reader.rename_note)
    assert rows(path) == [{"question": "q1", "answer": "first", "answer_3": "second", "answer_2": "third"}]
    logged = [r.getMessage() for r in caplog.records]
    assert any("repeats in the header" in m and str(path) in m for m in logged)


def test_a_header_without_repeats_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("question,answer\nq,a\n")
    with open_dataset(path) as reader:
        assert reader.columns == ["question", "answer"]
        assert reader.renamed_columns == {}
        assert reader.rename_note is None
        assert reader.schema.metadata is None
