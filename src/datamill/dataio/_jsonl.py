"""Reading jsonl (one JSON object per line) and txt (one row per non-empty line) files, line by line.

jsonl: blank lines are skipped; every other line must hold one JSON object, parsed with orjson. Keys and types
follow the widening policy of `_records` (a key first seen late becomes a new column). Nested values (a chat
column holding a list of messages) become Arrow lists and structs.

txt: each line that is not blank becomes one row of a single string column `text`, without its line ending
(other whitespace is kept, since indentation can matter).
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from datamill.core.errors import DataFormatError
from datamill.dataio._records import RecordBatcher, kind_phrase
from datamill.dataio._source import BatchStream, ReadOptions, SourceFactory
from datamill.dataio._text import (
    TextSample,
    check_not_blank,
    invalid_utf8,
    is_utf8,
    numbered_lines,
    read_sample,
)


def _decode_error(
    path: str, sample: TextSample, number: int, offset: int, line: bytes
) -> DataFormatError | None:
    """The invalid-UTF-8 error for `line` if that is what is wrong with it, else None."""
    if not is_utf8(sample.encoding):
        return None
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return invalid_utf8(path, number, offset + exc.start)
    return None


def _parse_object(path: str, sample: TextSample, number: int, offset: int, line: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        bad = _decode_error(path, sample, number, offset, line)
        if bad is not None:
            raise bad from exc
        raise DataFormatError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=number) from exc
    if not isinstance(value, dict):
        raise DataFormatError(
            path, f"expected a JSON object on each line, found {kind_phrase(value)}", line=number
        )
    return value


def _jsonl_stream(path: str, sample: TextSample, batch_size: int) -> BatchStream:
    batcher = RecordBatcher(path, "line")
    records: list[dict[str, Any]] = []
    positions: list[int] = []
    rows = 0
    with open(path, "rb") as f:
        for number, offset, line in numbered_lines(path, f, sample.encoding):
            if not line.strip():
                continue
            records.append(_parse_object(path, sample, number, offset, line))
            positions.append(number)
            if len(records) == batch_size:
                rows += len(records)
                yield batcher.to_batch(records, positions)
                records, positions = [], []
    if records:
        rows += len(records)
        yield batcher.to_batch(records, positions)
    if rows == 0:
        raise DataFormatError(path, "file is empty: it holds no JSON objects")


def _txt_stream(path: str, sample: TextSample, batch_size: int) -> BatchStream:
    texts: list[str] = []
    rows = 0
    with open(path, "rb") as f:
        for number, offset, line in numbered_lines(path, f, sample.encoding):
            if not line.strip():
                continue
            try:
                texts.append(line.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise invalid_utf8(path, number, offset + exc.start) from exc
            if len(texts) == batch_size:
                rows += len(texts)
                yield pa.record_batch([pa.array(texts, pa.string())], names=["text"])
                texts = []
    if texts:
        rows += len(texts)
        yield pa.record_batch([pa.array(texts, pa.string())], names=["text"])
    if rows == 0:
        raise DataFormatError(path, "file is empty: it has no non-blank lines")


def jsonl_source(path: str, options: ReadOptions) -> SourceFactory:
    """Sniff a jsonl file's encoding and return its batch source."""
    sample = read_sample(path, options.encoding)
    check_not_blank(path, sample)
    return lambda: _jsonl_stream(path, sample, options.batch_size)


def txt_source(path: str, options: ReadOptions) -> SourceFactory:
    """Sniff a txt file's encoding and return its batch source (one column, `text`)."""
    sample = read_sample(path, options.encoding)
    check_not_blank(path, sample)
    return lambda: _txt_stream(path, sample, options.batch_size)
