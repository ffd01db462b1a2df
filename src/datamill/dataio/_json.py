"""Reading .json files: a top-level array of records, or an object holding one (such as {"data": [...]}).

The file is streamed with ijson, so a large array never sits in memory whole. For a top-level object, the
records are the first key whose value is an array; other keys (metadata, say) are skipped. Every record must
be an object; keys and types follow the widening policy of `_records`. Positions in messages are record
numbers (1-based), since a streaming JSON parser does not track lines; a syntax error is located exactly (line
and column) for files up to 32 MiB by re-parsing with the standard library, and by byte range beyond that.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson

from datamill.core.errors import DataFormatError
from datamill.dataio._depth import JsonDepthGuard
from datamill.dataio._records import RecordBatcher, kind_phrase
from datamill.dataio._source import BatchStream, ReadOptions, SourceFactory
from datamill.dataio._text import (
    TextSample,
    Utf8Reader,
    check_not_blank,
    find_invalid_utf8,
    invalid_utf8,
    read_sample,
)

_EXACT_POSITION_BYTES = 32 * 1024 * 1024
_TOP_LEVEL_HINT = 'expected an array of records or an object holding one (such as {"data": [...]})'
_SCALAR_EVENTS = {"string": "a string", "number": "a number", "boolean": "a boolean", "null": "null"}


class _CountingReader:
    """Counts the bytes ijson has pulled (to say roughly where a syntax error is) and guards their depth."""

    def __init__(self, f: Any, path: str) -> None:
        self._f = f
        self._depth = JsonDepthGuard(path)
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._f.read(size)
        self.consumed += len(data)
        self._depth.feed(data)
        return data


def _utf8_stream(f: BinaryIO, encoding: str) -> Any:
    if encoding == "utf-8-sig":
        f.seek(len(codecs.BOM_UTF8) if f.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8 else 0)
        return f
    return f if encoding == "utf-8" else Utf8Reader(f, encoding)


def _skip_to_records(path: str, events: Iterator[tuple[str, str, Any]]) -> tuple[str, str]:
    """Consume a top-level object's events up to its first array value; return (item prefix, description)."""
    keys: list[str] = []
    for prefix, event, value in events:
        if prefix == "" and event == "map_key":
            keys.append(value)
        elif prefix == "" and event == "end_map":
            break
        elif keys and prefix == keys[-1] and event == "start_array":
            return f"{keys[-1]}.item", f"the array under key {keys[-1]!r}"
    shown = ", ".join(repr(k) for k in keys) if keys else "none"
    raise DataFormatError(
        path, f"the top-level JSON object holds no array of records (keys: {shown}); {_TOP_LEVEL_HINT}"
    )


def _records(path: str, stream: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    events = ijson.parse(stream, use_float=True)
    _, event, _ = next(events)
    if event == "start_array":
        item_prefix, where = "item", "the top-level array"
    elif event == "start_map":
        item_prefix, where = _skip_to_records(path, events)
    else:
        found = _SCALAR_EVENTS.get(event, event)
        raise DataFormatError(path, f"the top level of the JSON is {found}; {_TOP_LEVEL_HINT}")
    for number, record in enumerate(ijson.items(events, item_prefix), start=1):
        if not isinstance(record, dict):
            raise DataFormatError(
                path, f"record {number} of {where} is {kind_phrase(record)}, expected an object"
            )
        yield number, record


def _syntax_error(path: str, sample: TextSample, counter: _CountingReader, exc: Exception) -> DataFormatError:
    if sample.is_utf8:
        found = find_invalid_utf8(path)
        if found is not None:
            return invalid_utf8(path, *found)
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size <= _EXACT_POSITION_BYTES:
            f.seek(0)
            try:
                json.loads(f.read().decode(sample.encoding))
            except json.JSONDecodeError as exact:
                return DataFormatError(
                    path,
                    f"invalid JSON at line {exact.lineno}, column {exact.colno}: {exact.msg}",
                    line=exact.lineno,
                )
            except (UnicodeDecodeError, RecursionError):
                pass
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataFormatError(path, f"invalid JSON in the bytes up to offset {counter.consumed}: {detail}")


def _json_stream(path: str, sample: TextSample, batch_size: int) -> BatchStream:
    batcher = RecordBatcher(path, "record")
    records: list[dict[str, Any]] = []
    positions: list[int] = []
    with open(path, "rb") as f:
        counter = _CountingReader(_utf8_stream(f, sample.encoding), path)
        try:
            for number, record in _records(path, counter):
                records.append(record)
                positions.append(number)
                if len(records) == batch_size:
                    yield batcher.to_batch(records, positions)
                    records, positions = [], []
        except ijson.JSONError as exc:
            raise _syntax_error(path, sample, counter, exc) from exc
    if records:
        yield batcher.to_batch(records, positions)
    elif batcher.schema is None:
        raise DataFormatError(path, "file is empty: the JSON array holds no records")


def json_source(path: str, options: ReadOptions) -> SourceFactory:
    """Sniff a .json file's encoding and return its batch source."""
    sample = read_sample(path, options.encoding)
    check_not_blank(path, sample)
    return lambda: _json_stream(path, sample, options.batch_size)
