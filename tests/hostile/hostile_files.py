"""The hostile file corpus: small files checked in under ``files/``, large ones built on demand.

Each entry pairs a file with a fragment of the message its reader must give, so a test can check that the
error says what is wrong rather than merely that something failed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

FILES = Path(__file__).parent / "files"

#: Checked-in files no reader may accept, with what their error must say.
UNREADABLE: dict[str, str] = {
    "binary_junk.csv": "cannot detect the text encoding",
    "mixed_encoding.csv": "line 6: expected 2 columns",
    "unclosed_quote.csv": "expected 2 columns",
    "ragged.csv": "line 3: expected 2 columns, found 4",
    "utf16_no_bom.csv": "expected 2 columns",
    "truncated.json": "invalid JSON at line 1",
    "trailing_garbage.json": "Extra data",
    "scalar.json": "the top level of the JSON is a number",
    "nan_infinity.json": "invalid JSON",
    "lone_surrogate.jsonl": "line 1: invalid JSON",
    "broken_line.jsonl": "line 2: invalid JSON",
    "not_objects.jsonl": "expected a JSON object on each line",
    "invalid.parquet": "not a valid Parquet file",
    "truncated.parquet": "not a valid Parquet file",
    "parquet_named.csv": "this is a Parquet file, not text",
    "csv_named.parquet": "not a valid Parquet file",
    "png_named.jsonl": "this is a PNG image, not text",
    "csv_named.xlsx": "not a valid xlsx workbook",
    "zip_named.xlsx": "not a valid xlsx workbook",
    "zip_named.json": "this is a zip archive",
}

_DEPTH = 100_000


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return build


#: Files too large (or too silly) to check in: built into a folder on demand, with what the error must say.
GENERATED: dict[str, tuple[Callable[[Path], Path], str]] = {
    "deep_arrays.json": (
        _write("deep_arrays.json", b"[" * _DEPTH + b"]" * _DEPTH),
        "nests arrays and objects more than 512 levels deep",
    ),
    "deep_objects.json": (
        _write("deep_objects.json", b'[{"q": ' + b'{"a":' * _DEPTH + b"1" + b"}" * _DEPTH + b"}]"),
        "nests arrays and objects more than 512 levels deep",
    ),
    "deep_line.jsonl": (
        _write("deep_line.jsonl", b'{"q": ' + b"[" * _DEPTH + b"]" * _DEPTH + b"}\n"),
        "line 1: invalid JSON: depth limit exceeded",
    ),
    "huge_cell.csv": (
        _write("huge_cell.csv", b"q,a\n" + b"x" * (3 * 1024 * 1024) + b",y\n"),
        "a row is longer than 1 MiB",
    ),
    "huge_open_quote.csv": (
        _write("huge_open_quote.csv", b'q,a\n"' + b"never closed\n" * 200_000),
        "a row is longer than 1 MiB",
    ),
}


def unreadable_files(folder: Path) -> dict[Path, str]:
    """Every unreadable file of the corpus (checked in and generated into ``folder``) with its message."""
    found = {FILES / name: message for name, message in UNREADABLE.items()}
    for build, message in GENERATED.values():
        found[build(folder)] = message
    return found
