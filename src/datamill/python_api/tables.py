"""The kinds of data the Python API takes, and turning a run's output back into the kind that came in.

A run reads and writes files, so in-memory data is written to a Parquet file first (column types kept) and
the output file is read back into the caller's kind:

============================  ===============================================  =====================
kind                          in                                               out
============================  ===============================================  =====================
list of dicts                 one dict per row                                 list of dicts
``pyarrow.Table``             as is                                            ``pyarrow.Table``
``pandas.DataFrame``          ``pyarrow.Table.from_pandas`` (index dropped)    ``pandas.DataFrame``
``datasets.Dataset``          its Arrow table                                  ``datasets.Dataset``
a path (``str``/``Path``)     the file itself                                  the output file's path
============================  ===============================================  =====================

pandas and Hugging Face ``datasets`` are recognised without being imported: they are optional, and a
DataFrame or a Dataset can only exist if its package is installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datamill.core.errors import ValidationError

LIST, ARROW, PANDAS, DATASETS, PATH = "list", "arrow", "pandas", "datasets", "path"


@dataclass(frozen=True)
class Input:
    """The caller's data as the run reads it: a kind (module docstring) and, in memory, an Arrow table."""

    kind: str
    table: pa.Table | None = None
    path: Path | None = None


def read_input(data: object) -> Input:
    """Recognise `data`'s kind and take its rows; raise a `ValidationError` for anything else."""
    if isinstance(data, str | Path):
        return Input(PATH, path=Path(data))
    if isinstance(data, pa.Table):
        return Input(ARROW, table=data)
    if isinstance(data, list):
        return Input(LIST, table=_from_rows(data))
    module = type(data).__module__.split(".", 1)[0]
    name = type(data).__name__
    if module == "pandas" and name == "DataFrame":
        return Input(PANDAS, table=pa.Table.from_pandas(data, preserve_index=False))
    if module == "datasets" and name == "Dataset":
        dataset: Any = data
        flat = dataset.flatten_indices() if getattr(dataset, "_indices", None) is not None else dataset
        return Input(DATASETS, table=flat.data.table)
    raise ValidationError.of(
        "data",
        f"cannot adapt a {module}.{name}: give a list of dicts, a pyarrow Table, a pandas DataFrame, "
        "a Hugging Face datasets.Dataset or a file path",
    )


def _from_rows(rows: list[Any]) -> pa.Table:
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValidationError.of(f"data[{index}]", f"every row must be a dict, not {type(row).__name__}")
    if not rows:
        raise ValidationError.of("data", "there are no rows to adapt")
    try:
        return pa.Table.from_pylist([dict(row) for row in rows])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationError.of("data", f"the rows do not form a table: {exc}") from exc


def write_input(table: pa.Table, path: Path) -> Path:
    """Write an in-memory table where the run reads it."""
    pq.write_table(table, path)
    return path


def convert_output(kind: str, path: Path) -> Any:
    """The output file at `path` as the kind the caller gave (the path itself for a path)."""
    if kind == PATH:
        return path
    table = pq.read_table(path)
    if kind == ARROW:
        return table
    if kind == LIST:
        return table.to_pylist()
    if kind == PANDAS:
        return table.to_pandas()
    import datasets  # present: the caller's data was a datasets.Dataset

    return datasets.Dataset(table)
