"""Reading data files into Arrow record batches, streaming, and writing them back out.

Reading: `open_dataset` opens csv, tsv, json, jsonl, parquet, xlsx and txt files, and documents (pdf, docx,
pptx, html and zips of them, as rows of text), as a `DatasetReader`, an iterable of record batches with
bounded memory; `document_parts` gives one document's text by page; `read_all` and `count_rows` are
conveniences over it. Writing: `open_writer` returns a `DatasetWriter` for csv, tsv, json, jsonl and parquet
that replaces its target atomically; `write_table` writes one table. Every problem with a file's content is a
`DataFormatError` that says what is wrong and where.

Importing the package changes nothing in the process; `use_lean_memory_pool` (in `datamill.dataio.memory`)
switches pyarrow's default memory pool to one that hands freed memory back, for entry points that opt in.
"""

from datamill.dataio._document_text import Part, document_parts, parser_installed
from datamill.dataio._formats import READ_FORMATS, WRITE_FORMATS, detect_format
from datamill.dataio._reader import DatasetReader, count_rows, open_dataset, read_all
from datamill.dataio._writer import DatasetWriter, check_writable, open_writer, write_table

__all__ = [
    "READ_FORMATS",
    "WRITE_FORMATS",
    "DatasetReader",
    "DatasetWriter",
    "Part",
    "check_writable",
    "count_rows",
    "detect_format",
    "document_parts",
    "open_dataset",
    "open_writer",
    "parser_installed",
    "read_all",
    "write_table",
]
