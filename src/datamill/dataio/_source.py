"""What every format reader shares: the options it is opened with and the shape of a batch source.

A source is a factory: calling it starts one fresh pass over the file and returns an iterator of record
batches. Sniffing (encoding, delimiter, JSON layout) happens once when the source is built, so a second pass
repeats none of it. A pass that finds no rows raises "file is empty" itself, because only the format knows how
to say why (a header and no rows, an empty JSON array, a sheet with one row).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import pyarrow as pa

BatchStream = Generator[pa.RecordBatch, None, None]
SourceFactory = Callable[[], BatchStream]


@dataclass(frozen=True)
class ReadOptions:
    """Options of one `open_dataset` call; each format uses the ones that apply to it and ignores the rest.

    Attributes:
        batch_size: Rows per batch the record-based readers build (others are sliced to it by the reader).
        encoding: Text encoding of csv/tsv/json/jsonl/txt files; sniffed when None.
        delimiter: csv field delimiter; sniffed when None (tsv defaults to a tab).
        sheet: xlsx sheet name; the first sheet when None.
    """

    batch_size: int = 1024
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
