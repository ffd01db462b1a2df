"""Property-based fuzzing of the file readers: random and broken files give DataFormatError, nothing else.

Also checks the JSON depth guard against the real depth of random documents cut into random chunks.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamill.core.errors import DataFormatError, ValidationError
from datamill.dataio import read_all
from datamill.dataio._depth import JsonDepthGuard

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXTENSIONS = ("csv", "tsv", "json", "jsonl", "txt", "parquet", "xlsx")

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=25,
)
_CELL = st.text(alphabet=st.sampled_from("ab,;\t\"'\n\r\\ é\x00\ufeff"), max_size=12)


def read_or_refuse(data: bytes, extension: str) -> None:
    """Read ``data`` as a file of ``extension``; only a DataFormatError or ValidationError may come out."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz.{extension}"
        path.write_bytes(data)
        try:
            read_all(path, batch_size=3)
        except (DataFormatError, ValidationError) as exc:
            message = str(exc)
        else:
            message = "read"
        assert message


@FUZZ
@given(st.binary(max_size=600), st.sampled_from(EXTENSIONS))
def test_random_bytes(data: bytes, extension: str) -> None:
    read_or_refuse(data, extension)


@FUZZ
@given(
    st.lists(st.lists(_CELL, min_size=1, max_size=4), min_size=1, max_size=6), st.sampled_from([",", "\t"])
)
def test_broken_delimited_text(rows: list[list[str]], delimiter: str) -> None:
    data = "\n".join(delimiter.join(row) for row in rows).encode("utf-8", "surrogatepass")
    read_or_refuse(data, "csv" if delimiter == "," else "tsv")


@FUZZ
@given(st.lists(_JSON, max_size=6), st.integers(min_value=0, max_value=400), st.binary(max_size=4))
def test_json_cut_and_spliced(records: list[object], cut: int, splice: bytes) -> None:
    whole = json.dumps(records).encode()
    read_or_refuse(whole, "json")
    read_or_refuse(whole[:cut] + splice + whole[cut:], "json")
    read_or_refuse(whole[:cut], "json")


@FUZZ
@given(st.lists(_JSON, max_size=6), st.integers(min_value=0, max_value=400), st.binary(max_size=4))
def test_jsonl_cut_and_spliced(records: list[object], cut: int, splice: bytes) -> None:
    whole = b"\n".join(json.dumps(r).encode() for r in records)
    read_or_refuse(whole, "jsonl")
    read_or_refuse(whole[:cut] + splice + whole[cut:], "jsonl")


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_TRICKY_TEXT = st.text(alphabet=st.sampled_from('[]{}"\\ab'), max_size=8)
_NESTED = st.recursive(
    st.none() | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY_TEXT, inner, max_size=3),
    max_leaves=40,
)


@FUZZ
@given(_NESTED, st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=50))
def test_depth_guard_measures_the_real_depth(document: object, cuts: list[int]) -> None:
    data = json.dumps(document).encode()
    depth = _depth(document)
    for limit, refused in ((depth, False), (depth - 1, True)):
        guard = JsonDepthGuard("doc.json", limit=limit)
        chunks, start = [], 0
        for size in cuts * (len(data) // sum(cuts) + 1):
            chunks.append(data[start : start + size])
            start += size
        with pytest.raises(DataFormatError, match="levels deep") if refused else contextlib.nullcontext():
            _feed_all(guard, chunks)


def _feed_all(guard: JsonDepthGuard, chunks: list[bytes]) -> None:
    for chunk in chunks:
        guard.feed(chunk)
