"""Writing record batches with `open_writer`/`write_table`: round trips, schema drift, atomic replacement."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datamill.core.errors import DataFormatError
from datamill.dataio import open_dataset, open_writer, read_all, write_table

TEXTS = ["plain", 'a "quoted", comma', "two\nlines", "ünïcødé ✓", "", None]
CHAT = [
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    [{"role": "user", "content": "2+2?"}],
    [],
    None,
    [{"role": "system", "content": "be brief"}],
    [{"role": "user", "content": "bye"}],
]


def sample_table() -> pa.Table:
    return pa.table({"id": [1, 2, 3, 4, 5, 6], "text": TEXTS, "chat": CHAT})


def write_batches(path: Path, *tables: pa.Table) -> None:
    with open_writer(path) as writer:
        for table in tables:
            writer.write_batch(table)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".partial-" in p.name)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_typed_formats_round_trip_exactly(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"out.{fmt}"
    write_table(path, sample_table())
    assert read_all(path).to_pylist() == sample_table().to_pylist()


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_text_formats_round_trip_as_strings_with_nested_values_as_json(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"out.{fmt}"
    write_table(path, sample_table())
    back = read_all(path).to_pylist()
    assert [row["id"] for row in back] == ["1", "2", "3", "4", "5", "6"]
    assert [row["text"] for row in back] == TEXTS  # quotes, newlines, "" and null all survive
    assert [None if row["chat"] is None else json.loads(row["chat"]) for row in back] == CHAT


def test_jsonl_to_jsonl_round_trip_keeps_a_chat_column(tmp_path: Path) -> None:
    records = [
        {"id": i, "chat": chat, "meta": {"src": "x", "tags": ["a"]}} for i, chat in enumerate(CHAT) if chat
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    target = tmp_path / "out.jsonl"
    with open_dataset(source, batch_size=2) as reader, open_writer(target) as writer:
        for batch in reader:
            writer.write_batch(batch)
    assert [json.loads(line) for line in target.read_text().splitlines()] == records


def test_writer_counts_rows_and_accepts_tables_and_batches(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with open_writer(path) as writer:
        writer.write_batch(pa.table({"a": [1, 2]}))
        writer.write_batch(pa.record_batch([pa.array([3])], names=["a"]))
        assert writer.rows_written == 3
    assert read_all(path).column("a").to_pylist() == [1, 2, 3]


def test_json_output_is_one_array(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    with open_writer(path) as writer:
        writer.write_batch(pa.table({"a": [1]}))
        writer.write_batch(pa.table({"a": [2], "b": ["x"]}))
    assert json.loads(path.read_text()) == [{"a": 1}, {"a": 2, "b": "x"}]


def test_json_values_beyond_plain_json(tmp_path: Path) -> None:
    table = pa.table(
        {
            "when": [dt.datetime(2024, 5, 1, 12, 30)],
            "day": [dt.date(2024, 5, 1)],
            "price": pa.array([decimal.Decimal("1.25")], pa.decimal128(5, 2)),
            "blob": [b"\x00\x01"],
        }
    )
    path = tmp_path / "out.jsonl"
    write_table(path, table)
    assert json.loads(path.read_text()) == {
        "when": "2024-05-01T12:30:00",
        "day": "2024-05-01",
        "price": "1.25",
        "blob": "AAE=",
    }


def test_empty_tables_still_make_readable_files(tmp_path: Path) -> None:
    empty = pa.table({"a": pa.array([], pa.int64())})
    for fmt in ["csv", "json", "jsonl", "parquet"]:
        write_table(tmp_path / f"e.{fmt}", empty)
    assert (tmp_path / "e.json").read_text() == "[]\n"
    assert (tmp_path / "e.jsonl").read_text() == ""
    assert (tmp_path / "e.csv").read_text().strip() == '"a"'
    assert pq.read_table(tmp_path / "e.parquet").schema == pa.schema([("a", pa.int64())])


def test_single_column_csv_keeps_rows_that_are_null(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_table(path, pa.table({"text": ["a", None, "b"]}))
    assert read_all(path).num_rows == 3


# --- schema drift between batches --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_null_typed_column_then_strings(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"out.{fmt}"
    with open_writer(path) as writer:
        writer.write_batch(pa.table({"a": [1], "note": pa.nulls(1)}))
        writer.write_batch(pa.table({"a": [2], "note": ["later"]}))
    assert read_all(path).column("note").to_pylist() == [None, "later"]


def test_parquet_widens_null_types_up_front(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    with open_writer(path) as writer:
        writer.write_batch(pa.table({"tags": pa.array([[]], pa.list_(pa.null())), "n": pa.nulls(1)}))
        writer.write_batch(pa.table({"tags": [["x"]], "n": ["1"]}))
    table = pq.read_table(path)
    assert table.schema == pa.schema([("tags", pa.list_(pa.string())), ("n", pa.string())])
    assert table.to_pylist() == [{"tags": [], "n": None}, {"tags": ["x"], "n": "1"}]


def test_parquet_casts_later_batches_to_the_first_schema(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    with open_writer(path) as writer:
        writer.write_batch(pa.table({"x": [0.5], "s": pa.array([{"a": 1, "b": "y"}])}))
        # Columns reordered, an int where floats are, a struct missing a field, a column missing entirely.
        writer.write_batch(pa.table({"s": pa.array([{"a": 2}]), "x": [2]}))
        writer.write_batch(pa.table({"x": [3.5]}))
    assert pq.read_table(path).to_pylist() == [
        {"x": 0.5, "s": {"a": 1, "b": "y"}},
        {"x": 2.0, "s": {"a": 2, "b": None}},
        {"x": 3.5, "s": None},
    ]


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (pa.table({"x": ["text"]}), "column 'x' is string there but int64 in the first batch"),
        (pa.table({"x": [1.5]}), "column 'x' is double there but int64 in the first batch"),
        (pa.table({"x": [1], "new": ["y"]}), "column(s) 'new' were not in the first batch"),
    ],
)
def test_parquet_refuses_a_batch_that_does_not_fit(tmp_path: Path, second: pa.Table, message: str) -> None:
    path = tmp_path / "out.parquet"
    with pytest.raises(DataFormatError) as info:
        write_batches(path, pa.table({"x": [1]}), second)
    assert message in str(info.value)
    assert "batch 2" in str(info.value)
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_parquet_refuses_a_struct_with_a_new_field(tmp_path: Path) -> None:
    # Arrow's cast would silently drop the field; the writer refuses instead.
    path = tmp_path / "out.parquet"
    with pytest.raises(DataFormatError, match="column 's'"):
        write_batches(
            path, pa.table({"s": pa.array([{"a": 1}])}), pa.table({"s": pa.array([{"a": 1, "x": "y"}])})
        )


def test_csv_refuses_a_column_the_header_lacks(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with pytest.raises(DataFormatError, match="'b' were not in the first batch"):
        write_batches(path, pa.table({"a": [1]}), pa.table({"a": [2], "b": [3]}))
    assert not path.exists()


# --- atomic replacement ------------------------------------------------------------------------------------


def test_nothing_appears_at_the_path_until_close(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    writer = open_writer(path)
    writer.write_batch(pa.table({"a": [1]}))
    assert not path.exists()
    assert len(leftovers(tmp_path)) == 1
    writer.close()
    writer.close()
    assert path.read_text() == '{"a":1}\n'
    assert leftovers(tmp_path) == []


def test_exception_inside_with_leaves_the_old_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    write_table(path, pa.table({"old": [1]}))
    before = path.read_bytes()

    def fail_half_way() -> None:
        with open_writer(path) as writer:
            writer.write_batch(pa.table({"new": list(range(1000))}))
            assert writer.rows_written == 1000
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_half_way()
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_abort_removes_the_temp_file_and_closes_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    writer = open_writer(path)
    writer.write_batch(pa.table({"a": ["x"]}))
    writer.abort()
    writer.abort()
    assert not path.exists()
    assert leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="aborted"):
        writer.write_batch(pa.table({"a": ["y"]}))
    with pytest.raises(ValueError, match="aborted"):
        writer.close()


def test_a_failed_write_aborts_even_outside_with(tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    writer = open_writer(path)
    writer.write_batch(pa.table({"x": [1]}))
    with pytest.raises(DataFormatError):
        writer.write_batch(pa.table({"x": ["text"]}))
    assert leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="aborted"):
        writer.close()
    assert not path.exists()


def test_write_format_comes_from_extension_or_option(tmp_path: Path) -> None:
    write_table(tmp_path / "out.data", pa.table({"a": [1]}), format="jsonl")
    assert (tmp_path / "out.data").read_text() == '{"a":1}\n'
    with pytest.raises(DataFormatError, match="supported formats: csv, json, jsonl, parquet, tsv"):
        open_writer(tmp_path / "out.xlsx")
    assert leftovers(tmp_path) == []
