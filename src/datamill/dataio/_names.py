"""One rule for repeated column names in every reader: the repeats are renamed, never dropped, and it is said.

A header such as ``question,answer,answer`` would otherwise lose data: a row read as a dict keeps one value
per name, so all but one ``answer`` column would vanish without a word. Every reader (csv, tsv, parquet, xlsx)
therefore keeps the first column of a name as it is and gives each repeat the suffix ``_2``, ``_3``, ...
(skipping a suffixed name the file already has: ``a,a,a_2`` reads as ``a, a_3, a_2``), the rule spreadsheet
tools and pandas use. Nothing is dropped.

The renames travel with the batches in their schema metadata (`RENAMED_KEY`), so `DatasetReader` can report
them (``renamed_columns``), and they are logged once per file and header as a warning on the
``datamill.dataio`` logger, which a command line shows on stderr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import pyarrow as pa

#: Schema metadata key holding ``{new name: original name}`` for the columns a reader renamed.
RENAMED_KEY = b"datamill.renamed_columns"

log = logging.getLogger("datamill.dataio")
_logged: set[tuple[str, tuple[str, ...]]] = set()


def unique_names(names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The names with repeats suffixed, and ``{new name: original name}`` for each renamed column."""
    taken = set(names)
    seen: set[str] = set()
    out: list[str] = []
    renamed: dict[str, str] = {}
    for name in names:
        if name not in seen:
            seen.add(name)
            out.append(name)
            continue
        k = 2
        while f"{name}_{k}" in taken:
            k += 1
        new = f"{name}_{k}"
        taken.add(new)
        out.append(new)
        renamed[new] = name
    return out, renamed


def describe(renamed: dict[str, str]) -> str:
    """One sentence naming each renamed column, e.g. "column 'answer' repeats: read as 'answer_2'"."""
    by_original: dict[str, list[str]] = {}
    for new, original in renamed.items():
        by_original.setdefault(original, []).append(new)
    parts = [
        f"column {original!r} repeats in the header: the repeat{'s' if len(new) > 1 else ''} "
        f"read as {', '.join(repr(n) for n in new)}"
        for original, new in by_original.items()
    ]
    return "; ".join(parts)


def warn_renamed(path: str, names: Sequence[str], renamed: dict[str, str]) -> None:
    """Log the renames of ``path``'s header once per process."""
    key = (path, tuple(names))
    if renamed and key not in _logged:
        _logged.add(key)
        log.warning("%s: %s", path, describe(renamed))


def renamed_batch(batch: pa.RecordBatch, names: list[str], renamed: dict[str, str]) -> pa.RecordBatch:
    """``batch`` with its columns named ``names`` and the renames in its schema metadata."""
    metadata = dict(batch.schema.metadata or {})
    metadata[RENAMED_KEY] = json.dumps(renamed).encode()
    fields = [field.with_name(name) for field, name in zip(batch.schema, names, strict=True)]
    return pa.RecordBatch.from_arrays(batch.columns, schema=pa.schema(fields, metadata=metadata))


def renamed_columns(schema: pa.Schema) -> dict[str, str]:
    """The ``{new name: original name}`` a reader recorded in ``schema``; {} when nothing was renamed."""
    raw = (schema.metadata or {}).get(RENAMED_KEY)
    if not raw:
        return {}
    value = json.loads(raw)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
